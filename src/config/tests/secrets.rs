//! The secrets keys (issue 9): each source, each rule, where each problem
//! is reported, and that a problem never needs (or shows) a value.

use super::*;
use std::os::unix::fs::PermissionsExt;

/// A folder with secret file `db` (mode 0600) for the `file` sources.
fn secrets_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(&format!("secrets-{tag}"));
    let p = dir.write("db", "hunter2");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

/// `[secrets]` with `db` from the folder's file, then `rest`.
fn with_db(dir: &TempDir, rest: &str) -> String {
    format!(
        "[secrets]\ndb = {{ file = {:?} }}\n{rest}",
        dir.0.join("db")
    )
}

#[test]
fn sources_and_service_keys() {
    let dir = secrets_dir("every");
    let c = toml_ok(&with_db(
        &dir,
        r#"token = { env = "API_TOKEN" }
tls = { credential = "tls.key" }

[services.web]
command = ["x"]
secrets = ["db", "tls"]
secret_env = { DB_PASSWORD = "db", TOKEN = "token" }

[services.plain]
command = ["x"]
"#,
    ));
    assert_eq!(
        c.secrets.sources,
        [
            ("db".to_string(), SecretSource::File(dir.0.join("db"))),
            ("token".to_string(), SecretSource::Env("API_TOKEN".into())),
            (
                "tls".to_string(),
                SecretSource::Credential("tls.key".into())
            ),
        ]
    );
    assert!(!c.secrets.allow_insecure_permissions);
    let web = &service(&c, "web").secrets;
    assert_eq!(web.files, ["db", "tls"]);
    assert_eq!(
        web.env,
        [
            ("DB_PASSWORD".to_string(), "db".to_string()),
            ("TOKEN".to_string(), "token".to_string())
        ]
    );
    assert!(service(&c, "plain").secrets.is_empty());
    // No secret value anywhere in the config.
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn a_relative_file_is_taken_from_the_config_folder() {
    let dir = secrets_dir("relative");
    let c = from_str(
        "[secrets]\ndb = { file = \"db\" }\n[services.a]\ncommand = [\"x\"]\n",
        false,
        &dir.0,
    )
    .unwrap();
    assert_eq!(c.secrets.sources[0].1, SecretSource::File(dir.0.join("db")));
}

#[test]
fn one_source_per_secret() {
    let p = one_problem(
        "[secrets]\ndb = {}\n[services.a]\ncommand = [\"x\"]\n",
        "secrets.db",
        "no source for this secret; give one of { file = ",
    );
    assert_eq!((p.line, p.column), (Some(2), Some(1)));
    let p = one_problem(
        "[secrets]\ndb = { env = \"A\", credential = \"b\" }\n[services.a]\ncommand = [\"x\"]\n",
        "secrets.db.credential",
        "a secret has one source, and `env` is already given; remove `credential` or `env`",
    );
    assert_eq!((p.line, p.column), (Some(2), Some(19)));
    // A misspelt source: one problem, at the key.
    one_problem(
        "[secrets]\ndb = { path = \"/x\" }\n[services.a]\ncommand = [\"x\"]\n",
        "secrets.db.path",
        "unknown key; expected one of: file, env, credential",
    );
    one_problem(
        "[secrets]\ndb = { fiel = \"/x\" }\n[services.a]\ncommand = [\"x\"]\n",
        "secrets.db.fiel",
        "did you mean \"file\"?",
    );
    one_problem(
        "[secrets]\ndb = \"/etc/x\"\n[services.a]\ncommand = [\"x\"]\n",
        "secrets.db",
        "expected a table, found the string \"/etc/x\"",
    );
}

#[test]
fn names_and_variables_are_checked() {
    one_problem(
        "[secrets]\n\"a/b\" = { env = \"X\" }\n[services.a]\ncommand = [\"x\"]\n",
        "secrets.\"a/b\"",
        "invalid secret name: '/' is not allowed",
    );
    one_problem(
        "[secrets]\ndb = { env = \"A=B\" }\n[services.a]\ncommand = [\"x\"]\n",
        "secrets.db.env",
        "\"A=B\" is not a valid variable name",
    );
    one_problem(
        "[secrets]\ndb = { credential = \"../x\" }\n[services.a]\ncommand = [\"x\"]\n",
        "secrets.db.credential",
        "invalid credential name",
    );
    one_problem(
        "[secrets]\ndb = { file = \"\" }\n[services.a]\ncommand = [\"x\"]\n",
        "secrets.db.file",
        "empty path",
    );
}

#[test]
fn a_secret_file_must_exist_be_regular_and_private() {
    let dir = secrets_dir("files");
    let svc = "[services.a]\ncommand = [\"x\"]\n";
    let p = one_problem(
        &format!(
            "[secrets]\ndb = {{ file = {:?} }}\n{svc}",
            dir.0.join("missing")
        ),
        "secrets.db.file",
        "cannot read secret file",
    );
    assert!(
        p.message
            .ends_with("No such file or directory; create it (mode 0600) or fix the path"),
        "{}",
        p.message
    );
    one_problem(
        &format!("[secrets]\ndb = {{ file = {:?} }}\n{svc}", dir.0),
        "secrets.db.file",
        "is not a regular file",
    );
    one_problem(
        &format!("[secrets]\ndb = {{ file = \"/dev/zero\" }}\n{svc}"),
        "secrets.db.file",
        "\"/dev/zero\" is not a regular file",
    );
    let db = dir.0.join("db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let p = one_problem(
        &with_db(&dir, svc),
        "secrets.db.file",
        "open to group or others",
    );
    assert_eq!(
        p.message,
        format!(
            "secret file {} is mode 0644, open to group or others; run chmod 600 {} \
             (or set allow_insecure_permissions = true in [supervisor])",
            db.display(),
            db.display()
        )
    );
    assert_eq!(p.line, Some(2));
    // Group-writable is open too.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o620)).unwrap();
    one_problem(&with_db(&dir, svc), "secrets.db.file", "is mode 0620");
    // Allowed: accepted, and said so in the model.
    let c = toml_ok(&format!(
        "[supervisor]\nallow_insecure_permissions = true\n{}",
        with_db(&dir, svc)
    ));
    assert!(c.secrets.allow_insecure_permissions);
}

#[test]
fn unknown_secret_names_suggest_the_right_one() {
    let dir = secrets_dir("unknown");
    let p = one_problem(
        &with_db(
            &dir,
            "[services.web]\ncommand = [\"x\"]\nsecrets = [\"db\", \"bd\"]\n",
        ),
        "services.web.secrets[1]",
        "unknown secret \"bd\"; did you mean \"db\"?",
    );
    assert_eq!((p.line, p.column), (Some(5), Some(18)));
    let p = one_problem(
        &with_db(
            &dir,
            "[services.web]\ncommand = [\"x\"]\nsecret_env = { PASSWORD = \"api_token\" }\n",
        ),
        "services.web.secret_env.PASSWORD",
        "unknown secret \"api_token\"; define it in [secrets], e.g. \
         api_token = { file = \"/etc/sentinel/secrets/api_token\" }",
    );
    assert_eq!(p.line, Some(5));
    // Without any [secrets] table.
    one_problem(
        "[services.web]\ncommand = [\"x\"]\nsecrets = [\"db\"]\n",
        "services.web.secrets[0]",
        "unknown secret \"db\"; define it in [secrets]",
    );
    // A secret whose own entry is broken is not called unknown as well.
    one_problem(
        "[secrets]\ndb = { fiel = \"/x\" }\n[services.web]\ncommand = [\"x\"]\nsecrets = [\"db\"]\n",
        "secrets.db.fiel",
        "did you mean \"file\"?",
    );
}

#[test]
fn service_keys_do_not_clash() {
    let dir = secrets_dir("clash");
    one_problem(
        &with_db(
            &dir,
            "[services.web]\ncommand = [\"x\"]\nsecrets = [\"db\", \"db\"]\n",
        ),
        "services.web.secrets[1]",
        "\"db\" is listed twice; remove one",
    );
    one_problem(
        &with_db(
            &dir,
            "[services.web]\ncommand = [\"x\"]\nenv = { DB = \"x\" }\nsecret_env = { DB = \"db\" }\n",
        ),
        "services.web.secret_env.DB",
        "DB is also set by env or env_file; a variable has one value",
    );
    one_problem(
        &with_db(
            &dir,
            "[services.web]\ncommand = [\"x\"]\nsecret_env = { CREDENTIALS_DIRECTORY = \"db\" }\n",
        ),
        "services.web.secret_env.CREDENTIALS_DIRECTORY",
        "sentinel sets CREDENTIALS_DIRECTORY itself",
    );
    one_problem(
        &with_db(
            &dir,
            "[services.web]\ncommand = [\"x\"]\nenv = { CREDENTIALS_DIRECTORY = \"/x\" }\nsecrets = [\"db\"]\n",
        ),
        "services.web.secrets",
        "CREDENTIALS_DIRECTORY is set by env or env_file",
    );
    one_problem(
        &with_db(
            &dir,
            "[services.web]\ncommand = [\"x\"]\nsecret_env = { \"A=B\" = \"db\" }\n",
        ),
        "services.web.secret_env.\"A=B\"",
        "not a valid variable name",
    );
}

#[test]
fn a_config_declaring_secrets_must_be_private() {
    let dir = secrets_dir("config");
    let text = with_db(
        &dir,
        "[services.web]\ncommand = [\"x\"]\nsecrets = [\"db\"]\n",
    );
    let path = dir.write("sentinel.toml", &text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = load(&path).unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: secrets: this file declares secrets and is mode 0644, open to group or others; \
             run chmod 600 {} (or set allow_insecure_permissions = true in [supervisor])",
            path.display(),
            path.display()
        )
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(load(&path).is_ok());
    // Allowed.
    std::fs::write(
        &path,
        format!("[supervisor]\nallow_insecure_permissions = true\n{text}"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(load(&path).is_ok());
    // Without secrets, the rule does not apply.
    std::fs::write(&path, "[services.web]\ncommand = [\"x\"]\n").unwrap();
    assert!(load(&path).is_ok());
}

#[cfg(feature = "yaml")]
#[test]
fn yaml_form() {
    let dir = secrets_dir("yaml");
    let text = format!(
        "secrets:\n  db: {{file: {:?}}}\n  token: {{env: API_TOKEN}}\n\
         services:\n  web:\n    command: [x]\n    secrets: [db]\n    secret_env: {{TOKEN: token}}\n",
        dir.0.join("db")
    );
    let c = from_str(&text, true, Path::new("/base")).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(service(&c, "web").secrets.files, ["db"]);
    let text = "services:\n  web:\n    command: [x]\n    secrets: [nope]\n";
    let p = from_str(text, true, Path::new("/base")).unwrap_err();
    assert_eq!(p.len(), 1);
    assert!(
        p[0].message.contains("define it under secrets: {nope:"),
        "{}",
        p[0].message
    );
}
