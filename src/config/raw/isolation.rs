//! The isolation keys as written (issue 3): `[slices.NAME]`, the service
//! keys `slice`, `limits`, `nice`, `ionice`, `oom_score_adjust`, `rlimits`,
//! `user`, `supplementary_groups`, and the `isolation = { ... }` table.
//! Values that are one string (`"1.5"`, `"best-effort:4"`, `"www-data:adm"`)
//! are parsed here, so a mistake is reported at the value; checks that
//! span keys are in `build`.

use super::super::isolation::{
    parse_rlimit_value, CpuMax, IdMap, IdSpec, IoPriority, SeccompAction, SeccompProfile, UserSpec,
};
use super::super::values;
use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// A value given as text (numbers written bare are taken as their digits),
/// parsed by `parse`.
struct Text<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
    /// Whether bare whole numbers are taken.
    ints: bool,
    /// Whether bare decimal numbers are taken.
    floats: bool,
}

impl<T> Visitor<'_> for Text<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.parse)(s).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        if !self.ints {
            return Err(E::invalid_type(de::Unexpected::Signed(n), &self));
        }
        (self.parse)(&n.to_string()).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        if !self.ints {
            return Err(E::invalid_type(de::Unexpected::Unsigned(n), &self));
        }
        (self.parse)(&n.to_string()).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
        if !self.floats {
            return Err(E::invalid_type(de::Unexpected::Float(n), &self));
        }
        (self.parse)(&n.to_string()).map_err(E::custom)
    }
}

/// Deserialize through [`Text`].
fn text<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
    ints: bool,
) -> Result<T, D::Error> {
    d.deserialize_any(Text {
        expecting,
        parse,
        ints,
        floats: false,
    })
}

/// A whole number from `LO` to `HI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranged<const LO: i64, const HI: i64>(pub i64);

impl<'de, const LO: i64, const HI: i64> Deserialize<'de> for Ranged<LO, HI> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const LO: i64, const HI: i64>;
        impl<const LO: i64, const HI: i64> Visitor<'_> for V<LO, HI> {
            type Value = Ranged<LO, HI>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a whole number from {LO} to {HI}")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                if (LO..=HI).contains(&n) {
                    Ok(Ranged(n))
                } else {
                    Err(E::custom(format_args!(
                        "{n} is out of range; use a whole number from {LO} to {HI}"
                    )))
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                match i64::try_from(n) {
                    Ok(n) => self.visit_i64(n),
                    Err(_) => Err(E::custom(format_args!(
                        "{n} is out of range; use a whole number from {LO} to {HI}"
                    ))),
                }
            }
        }
        d.deserialize_any(V::<LO, HI>)
    }
}

/// `ionice = "best-effort:4"`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ionice(pub IoPriority);

impl<'de> Deserialize<'de> for Ionice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "an I/O priority like \"best-effort:4\", \"realtime:0\" or \"idle\"",
            |s| IoPriority::parse(s).map(Ionice),
            false,
        )
    }
}

/// `user = "www-data"`, `1000`, `"www-data:adm"`, `"1000:1000"`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub UserSpec);

impl<'de> Deserialize<'de> for User {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "a user like \"www-data\", \"www-data:adm\", \"1000:1000\" or 1000",
            |s| UserSpec::parse(s).map(User),
            true,
        )
    }
}

/// A group in `supplementary_groups`: a name or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id(pub IdSpec);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "a group name like \"adm\" or a number",
            |s| IdSpec::parse(s).map(Id),
            true,
        )
    }
}

/// `cpu_max = "1.5"`, `1.5`, `"50ms/100ms"`, `"max"` (None).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuLimit(pub Option<CpuMax>);

impl<'de> Deserialize<'de> for CpuLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Text {
            expecting:
                "a number of CPUs like \"1.5\", a quota/period like \"50ms/100ms\", or \"max\"",
            parse: |s| CpuMax::parse(s).map(CpuLimit),
            ints: true,
            floats: true,
        })
    }
}

/// A byte limit: a size, or `"max"` (None).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxSize(pub Option<u64>);

impl<'de> Deserialize<'de> for MaxSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "a size like \"512M\" or \"2G\", a whole number of bytes, or \"max\"",
            |s| {
                if s.trim().eq_ignore_ascii_case("max") {
                    Ok(MaxSize(None))
                } else {
                    values::parse_size(s).map(|n| MaxSize(Some(n)))
                }
            },
            true,
        )
    }
}

/// A count limit: a whole number, or `"max"` (None).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxCount(pub Option<u64>);

impl<'de> Deserialize<'de> for MaxCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "a whole number, 0 or more, or \"max\"",
            |s| {
                let t = s.trim();
                if t.eq_ignore_ascii_case("max") {
                    return Ok(MaxCount(None));
                }
                t.parse::<u64>().map(|n| MaxCount(Some(n))).map_err(|_| {
                    format!("invalid count \"{s}\"; use a whole number, 0 or more, or \"max\"")
                })
            },
            true,
        )
    }
}

/// The limit keys of `limits = { ... }` and `[slices.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawLimits {
    pub memory_max: Option<MaxSize>,
    pub memory_high: Option<MaxSize>,
    pub memory_swap_max: Option<MaxSize>,
    pub cpu_max: Option<CpuLimit>,
    pub cpu_weight: Option<Ranged<1, 10000>>,
    pub pids_max: Option<MaxCount>,
    pub io_weight: Option<Ranged<1, 10000>>,
    pub io_max: Option<Vec<RawIoMax>>,
}

/// `[slices.NAME]`: `parent` and the limit keys, side by side.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawSlice {
    pub parent: Option<String>,
    pub memory_max: Option<MaxSize>,
    pub memory_high: Option<MaxSize>,
    pub memory_swap_max: Option<MaxSize>,
    pub cpu_max: Option<CpuLimit>,
    pub cpu_weight: Option<Ranged<1, 10000>>,
    pub pids_max: Option<MaxCount>,
    pub io_weight: Option<Ranged<1, 10000>>,
    pub io_max: Option<Vec<RawIoMax>>,
}

impl RawSlice {
    /// `(parent, limits)`
    pub fn split(self) -> (Option<String>, RawLimits) {
        (
            self.parent,
            RawLimits {
                memory_max: self.memory_max,
                memory_high: self.memory_high,
                memory_swap_max: self.memory_swap_max,
                cpu_max: self.cpu_max,
                cpu_weight: self.cpu_weight,
                pids_max: self.pids_max,
                io_weight: self.io_weight,
                io_max: self.io_max,
            },
        )
    }
}

/// `io_max = [{ device = "/dev/vda", rbps = "10M", wiops = 1000 }]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawIoMax {
    pub device: String,
    pub rbps: Option<MaxSize>,
    pub wbps: Option<MaxSize>,
    pub riops: Option<MaxCount>,
    pub wiops: Option<MaxCount>,
}

/// One rlimit that counts bytes: `(soft, hard)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlimSize(pub u64, pub u64);

impl<'de> Deserialize<'de> for RlimSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "a limit like 1024, \"64M\", \"soft:hard\" or \"unlimited\"",
            |s| parse_rlimit_value(s, true).map(|(a, b)| RlimSize(a, b)),
            true,
        )
    }
}

/// One rlimit that counts things: `(soft, hard)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlimCount(pub u64, pub u64);

impl<'de> Deserialize<'de> for RlimCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "a limit like 1024, \"soft:hard\" or \"unlimited\"",
            |s| parse_rlimit_value(s, false).map(|(a, b)| RlimCount(a, b)),
            true,
        )
    }
}

/// `rlimits = { nofile = 1024, core = 0, ... }`: every `RLIMIT_*`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawRlimits {
    pub r#as: Option<RlimSize>,
    pub core: Option<RlimSize>,
    pub cpu: Option<RlimCount>,
    pub data: Option<RlimSize>,
    pub fsize: Option<RlimSize>,
    pub locks: Option<RlimCount>,
    pub memlock: Option<RlimSize>,
    pub msgqueue: Option<RlimSize>,
    pub nice: Option<RlimCount>,
    pub nofile: Option<RlimCount>,
    pub nproc: Option<RlimCount>,
    pub rss: Option<RlimSize>,
    pub rtprio: Option<RlimCount>,
    pub rttime: Option<RlimCount>,
    pub sigpending: Option<RlimCount>,
    pub stack: Option<RlimSize>,
}

impl RawRlimits {
    /// `(name, soft, hard)` of each rlimit given, by name.
    pub fn entries(&self) -> Vec<(&'static str, u64, u64)> {
        let sizes = [
            ("as", self.r#as),
            ("core", self.core),
            ("data", self.data),
            ("fsize", self.fsize),
            ("memlock", self.memlock),
            ("msgqueue", self.msgqueue),
            ("rss", self.rss),
            ("stack", self.stack),
        ];
        let counts = [
            ("cpu", self.cpu),
            ("locks", self.locks),
            ("nice", self.nice),
            ("nofile", self.nofile),
            ("nproc", self.nproc),
            ("rtprio", self.rtprio),
            ("rttime", self.rttime),
            ("sigpending", self.sigpending),
        ];
        let mut all: Vec<(&'static str, u64, u64)> = sizes
            .iter()
            .filter_map(|(n, v)| v.map(|v| (*n, v.0, v.1)))
            .chain(counts.iter().filter_map(|(n, v)| v.map(|v| (*n, v.0, v.1))))
            .collect();
        all.sort_by_key(|e| e.0);
        all
    }
}

/// `uid_map = ["0 100000 65536"]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapText(pub IdMap);

impl<'de> Deserialize<'de> for IdMapText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "an id map like \"0 100000 65536\" (inside, outside, count)",
            |s| IdMap::parse(s).map(IdMapText),
            false,
        )
    }
}

/// `isolation = { ... }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawIsolation {
    pub namespaces: Option<Vec<String>>,
    pub hostname: Option<String>,
    pub uid_map: Option<Vec<IdMapText>>,
    pub gid_map: Option<Vec<IdMapText>>,
    pub read_only_paths: Option<Vec<String>>,
    pub inaccessible_paths: Option<Vec<String>>,
    pub tmpfs: Option<Vec<String>>,
    pub root: Option<String>,
    pub capabilities: Option<Vec<String>>,
    pub no_new_privs: Option<bool>,
    pub seccomp: Option<RawSeccomp>,
}

/// `"errno:EPERM"`, `"kill"`, `"log"`, `"allow"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action(pub SeccompAction);

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "an action like \"errno:EPERM\", \"kill\", \"log\" or \"allow\"",
            |s| SeccompAction::parse(s).map(Action),
            false,
        )
    }
}

/// `profile = "default" | "strict"`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile(pub SeccompProfile);

impl<'de> Deserialize<'de> for Profile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "\"default\" or \"strict\"",
            |s| SeccompProfile::parse(s).map(Profile),
            false,
        )
    }
}

/// `seccomp = "default"`, or a table.
#[derive(Debug)]
pub enum RawSeccomp {
    Profile(SeccompProfile),
    Table(RawSeccompTable),
}

impl<'de> Deserialize<'de> for RawSeccomp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSeccomp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "\"default\", \"strict\", or a table like { profile = \"default\", deny = [\"mount\"] }",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawSeccomp, E> {
                SeccompProfile::parse(s)
                    .map(RawSeccomp::Profile)
                    .map_err(|e| E::custom(format_args!("{e}, or a table of rules")))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawSeccomp, A::Error> {
                RawSeccompTable::deserialize(MapAccessDeserializer::new(map)).map(RawSeccomp::Table)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawSeccompTable {
    pub profile: Option<Profile>,
    pub action: Option<Action>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<RawDeny>>,
}

/// An item of `deny`: a syscall name, or a rule table.
#[derive(Debug)]
pub enum RawDeny {
    Name(String),
    Rule(RawSeccompRule),
}

impl<'de> Deserialize<'de> for RawDeny {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDeny;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a syscall name like \"mount\", or a rule like { syscall = \"socket\", args = [...] }",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawDeny, E> {
                Ok(RawDeny::Name(s.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawDeny, A::Error> {
                RawSeccompRule::deserialize(MapAccessDeserializer::new(map)).map(RawDeny::Rule)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawSeccompRule {
    pub syscall: String,
    pub action: Option<Action>,
    pub args: Option<Vec<RawArg>>,
}

/// `{ index = 0, op = "eq", value = 16 }`; `mask` with `masked_eq` only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawArg {
    pub index: Ranged<0, 5>,
    pub op: Option<RawOp>,
    pub value: u64,
    pub mask: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq,
}
