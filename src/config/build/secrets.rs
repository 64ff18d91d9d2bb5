//! The secrets half of `build`: the `[secrets]` sources (one per secret,
//! secret files present, regular and private), each service's `secrets`
//! and `secret_env`, and the names they use, checked against `[secrets]`.
//!
//! Only metadata is looked at here: a secret's value is never read while
//! loading the config, so no message can contain it.

use super::super::node::suggest;
use super::super::raw::{Ordered, RawSecretSource, RawService};
use super::super::secrets::{insecure_mode, SecretSource, SecretsConfig, ServiceSecrets};
use super::{check_name, io_reason, Ctx, KeyPath};
use crate::config::ServiceConfig;
use std::os::unix::fs::PermissionsExt;

/// The variable sentinel sets to a service's secrets folder.
pub const CREDENTIALS_VAR: &str = "CREDENTIALS_DIRECTORY";

const SOURCE_EXAMPLES: &str = "{ file = \"/etc/sentinel/secrets/NAME\" }, { env = \"VARIABLE\" } \
                               or { credential = \"NAME\" }";

fn check_var(var: &str) -> Result<(), String> {
    if var.is_empty() || var.contains('=') || var.contains('\0') {
        Err(format!(
            "{var:?} is not a valid variable name; it must be non-empty, without '=' or NUL"
        ))
    } else {
        Ok(())
    }
}

/// `[secrets]`, with `allow_insecure_permissions` from `[supervisor]`.
pub(super) fn config(
    raw: Option<Ordered<RawSecretSource>>,
    allow_insecure_permissions: bool,
    ctx: &mut Ctx<'_>,
) -> SecretsConfig {
    let mut sources = Vec::new();
    for (name, raw) in raw.map(|r| r.0).unwrap_or_default() {
        let path = KeyPath::new(&["secrets", &name]);
        if let Err(why) = check_name(&name) {
            // The name is the file's name in $CREDENTIALS_DIRECTORY.
            ctx.at_key_of(&path, format!("invalid secret name: {why}"));
        }
        let given: Vec<(&str, String)> = [
            ("file", raw.file),
            ("env", raw.env),
            ("credential", raw.credential),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        if let [(first, _), (second, _), ..] = given.as_slice() {
            ctx.at_key_of(
                &path.k(second),
                format!(
                    "a secret has one source, and `{first}` is already given; \
                     remove `{second}` or `{first}`"
                ),
            );
        }
        let Some((kind, value)) = given.into_iter().next() else {
            if !ctx.pruned_at(&path) {
                ctx.at_key_of(
                    &path,
                    format!("no source for this secret; give one of {SOURCE_EXAMPLES}"),
                );
            }
            continue;
        };
        let at = path.k(kind);
        let source = match kind {
            "file" => {
                if value.is_empty() {
                    ctx.at(
                        &at,
                        "empty path; give the file holding the secret".to_string(),
                    );
                    continue;
                }
                let file = ctx.resolve(&value);
                check_file(&file, allow_insecure_permissions, &at, ctx);
                SecretSource::File(file)
            }
            "env" => {
                if let Err(why) = check_var(&value) {
                    ctx.at(&at, why);
                }
                SecretSource::Env(value)
            }
            _ => {
                if let Err(why) = check_name(&value) {
                    ctx.at(&at, format!("invalid credential name: {why}"));
                }
                SecretSource::Credential(value)
            }
        };
        sources.push((name, source));
    }
    SecretsConfig {
        sources,
        allow_insecure_permissions,
    }
}

/// A secret file must exist, be a regular file (not a device or a pipe,
/// which could block or never end) and, unless allowed, be private.
fn check_file(file: &std::path::Path, allow_insecure: bool, at: &KeyPath, ctx: &mut Ctx<'_>) {
    match std::fs::metadata(file) {
        Err(e) => ctx.at(
            at,
            format!(
                "cannot read secret file \"{}\": {}; create it (mode 0600) or fix the path",
                file.display(),
                io_reason(&e)
            ),
        ),
        Ok(m) if !m.is_file() => ctx.at(
            at,
            format!(
                "\"{}\" is not a regular file; a secret is read from a file",
                file.display()
            ),
        ),
        Ok(m) => {
            if !allow_insecure {
                if let Some(why) = insecure_mode(file, m.permissions().mode()) {
                    ctx.at(at, format!("secret file {} {why}", file.display()));
                }
            }
        }
    }
}

/// A service's `secrets` and `secret_env`; `env` is its final environment
/// additions (`env_file` and `env`), which must not set the same variables.
pub(super) fn service(
    name: &str,
    raw: &RawService,
    env: &[(String, String)],
    ctx: &mut Ctx<'_>,
) -> ServiceSecrets {
    let svc = KeyPath::new(&["services", name]);
    let mut files: Vec<String> = Vec::new();
    for (i, s) in raw.secrets.iter().flatten().enumerate() {
        if files.contains(s) {
            ctx.at(
                &svc.k("secrets").i(i),
                format!("\"{s}\" is listed twice; remove one"),
            );
            continue;
        }
        files.push(s.clone());
    }
    if !files.is_empty() && env.iter().any(|(k, _)| k == CREDENTIALS_VAR) {
        ctx.at_key_of(
            &svc.k("secrets"),
            format!(
                "{CREDENTIALS_VAR} is set by env or env_file, and sentinel sets it to the folder \
                 holding this service's secrets; remove it there"
            ),
        );
    }
    let mut vars: Vec<(String, String)> = Vec::new();
    for (var, secret) in raw.secret_env.iter().flat_map(|t| t.0.iter()) {
        let at = svc.k("secret_env").k(var);
        if let Err(why) = check_var(var) {
            ctx.at_key_of(&at, why);
        } else if var == CREDENTIALS_VAR {
            ctx.at_key_of(
                &at,
                format!(
                    "sentinel sets {CREDENTIALS_VAR} itself (to the folder of the files listed \
                     in `secrets`); choose another name"
                ),
            );
        } else if env.iter().any(|(k, _)| k == var) {
            ctx.at_key_of(
                &at,
                format!(
                    "{var} is also set by env or env_file; a variable has one value: remove it \
                     there, or here"
                ),
            );
        }
        vars.push((var.clone(), secret.clone()));
    }
    ServiceSecrets { files, env: vars }
}

/// Every secret a service names is defined in `[secrets]`.
pub(super) fn names(
    services: &[(String, ServiceConfig)],
    secrets: &SecretsConfig,
    ctx: &mut Ctx<'_>,
) {
    let known: Vec<&str> = secrets.sources.iter().map(|(n, _)| n.as_str()).collect();
    let problem = |ctx: &Ctx<'_>, secret: &str| -> Option<String> {
        if secrets.source(secret).is_some() || ctx.pruned(&["secrets", secret]) {
            return None;
        }
        Some(match suggest(secret, &known) {
            Some(s) => format!("unknown secret \"{secret}\"; did you mean \"{s}\"?"),
            None if ctx.yaml => format!(
                "unknown secret \"{secret}\"; define it under secrets: {{{secret}: {{file: \
                 /etc/sentinel/secrets/{secret}}}}}"
            ),
            None => format!(
                "unknown secret \"{secret}\"; define it in [secrets], e.g. \
                 {secret} = {{ file = \"/etc/sentinel/secrets/{secret}\" }}"
            ),
        })
    };
    for (name, svc) in services {
        let path = KeyPath::new(&["services", name]);
        for (i, s) in svc.secrets.files.iter().enumerate() {
            if let Some(message) = problem(ctx, s) {
                // The item's index in the list as written (repeats skipped).
                let list: Vec<&str> = match ctx
                    .tree
                    .entry(&["services", name, "secrets"])
                    .map(|e| &e.value.kind)
                {
                    Some(super::Kind::List(items)) => items
                        .iter()
                        .map(|n| match &n.kind {
                            super::Kind::Str(s) => s.as_str(),
                            _ => "",
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let at = list.iter().position(|x| x == s).unwrap_or(i);
                ctx.at(&path.k("secrets").i(at), message);
            }
        }
        for (var, s) in &svc.secrets.env {
            if let Some(message) = problem(ctx, s) {
                ctx.at(&path.k("secret_env").k(var), message);
            }
        }
    }
}
