//! The lifecycle keys as written (issue 4): `type`, `every`, `ready`,
//! `start_timeout`, `health = { ... }`, `watchdog`, `depends_on`,
//! `propagate`, `required`. Probe addresses, URLs and status ranges are
//! parsed here, so a mistake is reported at the value; checks that span
//! keys (and services) are in `build`.

use super::super::lifecycle::{parse_status_range, Probe};
use super::{Command, Dur};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// `type = "simple" | "oneshot"`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawKind {
    Simple,
    Oneshot,
}

/// `ready = "started" | "notify" | "fd" | "healthy"`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawReady {
    Started,
    Notify,
    Fd,
    Healthy,
}

/// A condition of `depends_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawCondition {
    Started,
    Ready,
    Healthy,
    Completed,
}

/// `on_unhealthy = "restart" | "none"`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawOnUnhealthy {
    Restart,
    None,
}

/// `health = { ... }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawHealth {
    pub tcp: Option<TcpProbe>,
    pub http: Option<HttpProbe>,
    pub exec: Option<Command>,
    pub interval: Option<Dur>,
    pub timeout: Option<Dur>,
    pub retries: Option<u32>,
    pub start_period: Option<Dur>,
    pub on_unhealthy: Option<RawOnUnhealthy>,
    pub status: Option<Status>,
    pub body: Option<String>,
}

/// A string value parsed by `parse`.
struct Parsed<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> Visitor<'_> for Parsed<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.parse)(s).map_err(E::custom)
    }
}

/// `tcp = "127.0.0.1:8080"`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpProbe(pub Probe);

impl<'de> Deserialize<'de> for TcpProbe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Parsed {
            expecting: "an address and port like \"127.0.0.1:8080\"",
            parse: |s| Probe::parse_tcp(s).map(TcpProbe),
        })
    }
}

/// `http = "http://127.0.0.1:8080/healthz"`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe(pub Probe);

impl<'de> Deserialize<'de> for HttpProbe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Parsed {
            expecting: "a URL like \"http://127.0.0.1:8080/healthz\"",
            parse: |s| Probe::parse_http(s).map(HttpProbe),
        })
    }
}

/// `status = "200-399"` or `status = 204`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub (u16, u16));

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Status;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code like 200 or a range like \"200-399\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Status, E> {
                parse_status_range(s).map(Status).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Status, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Status, E> {
                self.visit_str(&n.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// `depends_on = { db = "healthy", migrate = "completed" }`, or a list of
/// names, each waited for until `ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependsOn {
    /// In file order, as written (duplicates included).
    pub items: Vec<(String, RawCondition)>,
    /// Written as a list (positions are then list items, not keys).
    pub list: bool,
}

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DependsOn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a table like { db = \"healthy\" } or a list of service names like [\"db\"]",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DependsOn, A::Error> {
                let mut items = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, RawCondition>()? {
                    items.push((k, v));
                }
                Ok(DependsOn { items, list: false })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DependsOn, A::Error> {
                let mut items = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    items.push((name, RawCondition::Ready));
                }
                Ok(DependsOn { items, list: true })
            }
        }
        d.deserialize_any(V)
    }
}
