//! The file as written: every key optional, humane values parsed, unknown
//! keys refused. Defaults and cross-key checks come later, in `build`.

use super::values;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawFile {
    pub version: Option<Version>,
    pub supervisor: Option<RawSupervisor>,
    pub http: Option<RawHttp>,
    pub slices: Option<Ordered<RawSlice>>,
    pub services: Option<Ordered<RawService>>,
    pub hooks: Option<RawHooks>,
    /// `[secrets]`: where each secret's value comes from.
    pub secrets: Option<Ordered<RawSecretSource>>,
}

/// `[http]`: the HTTP endpoint (metrics, API, dashboard).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawHttp {
    pub listen: Option<String>,
    pub allow_public: Option<bool>,
    pub control: Option<bool>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub max_connections: Option<u32>,
    pub idle_timeout: Option<Dur>,
    pub request_timeout: Option<Dur>,
    pub history: Option<bool>,
    pub metrics_file: Option<String>,
    pub metrics_interval: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawSupervisor {
    pub log_dir: Option<String>,
    pub socket: Option<String>,
    pub socket_allow_uids: Option<Vec<u32>>,
    pub shutdown_timeout: Option<Dur>,
    pub echo_logs: Option<bool>,
    pub forward_signals: Option<Vec<Sig>>,
    pub log: Option<RawLog>,
    pub cgroup_root: Option<String>,
    pub allow_insecure_permissions: Option<bool>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawLog {
    pub max_size: Option<Size>,
    pub keep: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawService {
    pub command: Option<Command>,
    pub workdir: Option<String>,
    pub env: Option<Ordered<EnvValue>>,
    pub env_file: Option<OneOrMany>,
    pub clear_env: Option<bool>,
    pub restart: Option<RawRestart>,
    pub backoff: Option<RawBackoff>,
    pub stop_signal: Option<Sig>,
    pub stop_timeout: Option<Dur>,
    pub group: Option<OneOrMany>,
    pub autostart: Option<bool>,
    pub log: Option<RawLog>,
    pub forward_signals: Option<Vec<Sig>>,
    // Isolation (issue 3): the cgroup, priorities, rlimits, identity ...
    pub slice: Option<String>,
    pub limits: Option<RawLimits>,
    pub limits_optional: Option<bool>,
    pub nice: Option<Ranged<-20, 19>>,
    pub ionice: Option<Ionice>,
    pub oom_score_adjust: Option<Ranged<-1000, 1000>>,
    pub rlimits: Option<RawRlimits>,
    pub user: Option<User>,
    pub supplementary_groups: Option<Vec<Id>>,
    // ... and namespaces, mounts, capabilities, seccomp.
    pub isolation: Option<RawIsolation>,
    // Lifecycle (issue 4): type, readiness, health, dependencies.
    pub r#type: Option<RawKind>,
    pub every: Option<Dur>,
    pub ready: Option<RawReady>,
    pub start_timeout: Option<Dur>,
    pub health: Option<RawHealth>,
    pub watchdog: Option<Dur>,
    pub depends_on: Option<DependsOn>,
    pub propagate: Option<bool>,
    pub required: Option<bool>,
    // Scaling (issue 8): instances, shared sockets, autoscaling, the start
    // limit, `critical`, watch mode.
    pub instances: Option<Instances>,
    pub port_base: Option<Ranged<1, 65535>>,
    pub listen: Option<OneOrMany>,
    pub autoscale: Option<RawAutoscale>,
    pub start_limit: Option<RawStartLimit>,
    pub critical: Option<bool>,
    pub watch: Option<RawWatch>,
    // OCI bundle (issue 9): config.json + rootfs as defaults.
    pub bundle: Option<String>,
    // Secrets (issue 9): files in $CREDENTIALS_DIRECTORY, variables.
    pub secrets: Option<Vec<String>>,
    pub secret_env: Option<Ordered<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawRestart {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawBackoff {
    pub initial: Option<Dur>,
    pub max: Option<Dur>,
    pub factor: Option<f64>,
    pub reset_after: Option<Dur>,
}

/// `version = 1`: the config format the file is written for (checked in
/// `build`, so that a newer file gets a message about versions, not about
/// types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version(pub i64);

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the config format version as a whole number: version = 1")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Version, E> {
                Ok(Version(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Version, E> {
                Ok(Version(i64::try_from(n).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration: `"1m30s"`, or a whole number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a duration like \"500ms\", \"10s\", \"1m30s\", or a whole number of seconds",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                values::parse_duration(s).map(Dur).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(n), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A size in bytes: `"64M"` (powers of 1024), or a whole number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size like \"10M\", \"512K\", \"1G\", or a whole number of bytes")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Size, E> {
                values::parse_size(s).map(Size).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Size, E> {
                Ok(Size(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Size, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(n), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A signal: `"SIGTERM"`, `"TERM"`, `"term"` or a number from 1 to 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sig(pub i32);

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Sig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a signal like \"SIGTERM\" or \"TERM\", or a number from 1 to 64")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Sig, E> {
                values::parse_signal(s).map(Sig).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Sig, E> {
                values::parse_signal(&n.to_string())
                    .map(Sig)
                    .map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Sig, E> {
                values::parse_signal(&n.to_string())
                    .map(Sig)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// `command`: an array of arguments, or one string split like a shell
/// would split it (without running one). Whole numbers in the array are
/// taken as their digits (`["sleep", 5]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command(pub Vec<String>);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of strings like [\"/usr/bin/app\", \"--flag\"], or a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Command, E> {
                values::split_command(s).map(Command).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Command, A::Error> {
                let mut argv = Vec::new();
                while let Some(Arg(a)) = seq.next_element()? {
                    argv.push(a);
                }
                Ok(Command(argv))
            }
        }
        d.deserialize_any(V)
    }
}

/// One argument of a command array: a string or a whole number.
struct Arg(String);

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Arg;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Arg, E> {
                Ok(Arg(s.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Arg, E> {
                Ok(Arg(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Arg, E> {
                Ok(Arg(n.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value of the `env` table: a string, or a whole number or boolean
/// written bare (`PORT = 8080`), taken as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValue(pub String);

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<EnvValue, E> {
                Ok(EnvValue(s.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<EnvValue, E> {
                Ok(EnvValue(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<EnvValue, E> {
                Ok(EnvValue(n.to_string()))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<EnvValue, E> {
                Ok(EnvValue(b.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or an array of strings (`group`, `env_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    all.push(s);
                }
                Ok(OneOrMany(all))
            }
        }
        d.deserialize_any(V)
    }
}

/// A table with free keys, in file order (`services`, `env`).
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<T>, A::Error> {
                let mut all = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    all.push((k, v));
                }
                Ok(Ordered(all))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

mod isolation;
mod lifecycle;
mod scaling;
mod secrets;
pub use isolation::*;
pub use lifecycle::*;
pub use scaling::*;
pub use secrets::*;
