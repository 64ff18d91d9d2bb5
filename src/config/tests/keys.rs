//! docs/config.md names every key of the config file, and only those.
//!
//! The keys are read from the serde model itself (`raw::RawFile`), not
//! from a list kept by hand, so a key added to a `Raw*` struct fails this
//! test until it is documented. [`Probe`] is a `Deserializer` that walks
//! the derived `Deserialize` impls down one path at a time:
//!
//! - a struct hands its field names to `deserialize_struct`: they are
//!   recorded as keys, and each becomes a path to walk next;
//! - a table with free keys (`services`, `env`: `deserialize_map`) is
//!   walked through one entry named `NAME`; a list (`deserialize_seq`)
//!   through one item, written `[]`;
//! - an `Option` is walked into, an enum's values (`deserialize_enum`) are
//!   recorded for the key's row to mention;
//! - a hand-written `Deserialize` that takes several shapes
//!   (`deserialize_any`: `seccomp = "default"` or a table, `[[hooks]]`) is
//!   offered a one-entry map with a key no struct has: a struct refuses it
//!   with `unknown_field(key, FIELDS)` (every raw struct has
//!   `deny_unknown_fields`), which hands its field names to our error
//!   type; and it is offered a one-item list on a later walk.
//!
//! A `#[serde(untagged)]` enum of structs would hide their fields (serde
//! buffers the input and drops the variants' errors); the raw model has
//! none, and should keep writing such types by hand, as `RawSeccomp` does.
//!
//! Every walk ends in an error (there are no values), which is ignored:
//! what counts is what was recorded on the way. Reading the structs' source
//! instead would need to follow type names through aliases, newtypes and
//! hand-written impls; serde's own description of the model does not.

use super::super::raw::RawFile;
use serde::de::{self, value::StringDeserializer, DeserializeSeed, Deserializer, Visitor};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::rc::Rc;

/// A free key (a service's name, a variable of `env`).
const NAME: &str = "NAME";
/// An item of a list.
const ITEM: &str = "[]";
/// A key no struct has.
const NO_SUCH_KEY: &str = "\u{0}no such key";
/// Deeper than any config path; a guard against a model that recurses.
const MAX_DEPTH: usize = 12;

#[derive(Debug)]
enum Error {
    /// A struct refused a key and named the ones it has.
    Fields(&'static [&'static str]),
    /// Anything else: the walk ends here.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Fields(fields) => write!(f, "fields {fields:?}"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Other(msg.to_string())
    }
    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        Error::Fields(expected)
    }
}

fn end() -> Error {
    Error::Other("end of the walk".to_string())
}

/// What the walks found.
#[derive(Debug, Default)]
struct Found {
    /// Every key, as a path (`services.NAME.health.interval`).
    keys: BTreeSet<String>,
    /// The values of keys whose value is an enum (`services.NAME.restart`).
    variants: BTreeMap<String, Vec<&'static str>>,
    /// Paths still to walk.
    todo: Vec<Vec<String>>,
}

/// `["services", "NAME", "limits", "io_max", "[]", "device"]` →
/// `services.NAME.limits.io_max[].device`
fn render(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg != ITEM && !out.is_empty() {
            out.push('.');
        }
        out.push_str(seg);
    }
    out
}

struct Probe {
    /// Where this value is.
    at: Vec<String>,
    /// Where the walk goes from here; empty: record what is here.
    rest: Vec<String>,
    found: Rc<RefCell<Found>>,
}

impl Probe {
    fn child(&self) -> Probe {
        let mut at = self.at.clone();
        at.push(self.rest[0].clone());
        Probe {
            at,
            rest: self.rest[1..].to_vec(),
            found: self.found.clone(),
        }
    }

    fn below(&self, seg: &str) -> Vec<String> {
        let mut p = self.at.clone();
        p.push(seg.to_string());
        p
    }

    fn record_fields(&self, fields: &'static [&'static str]) {
        let mut found = self.found.borrow_mut();
        for f in fields {
            let path = self.below(f);
            found.keys.insert(render(&path));
            found.todo.push(path);
        }
    }

    fn walk_next(&self, seg: &str) {
        let path = self.below(seg);
        self.found.borrow_mut().todo.push(path);
    }

    /// Go on into a map (or struct) through the entry `rest[0]`.
    fn into_map<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let key = self.rest[0].clone();
        v.visit_map(OneEntry {
            key: Some(key),
            value: Some(self.child()),
        })
    }
}

/// A map of one entry whose value is walked.
struct OneEntry {
    key: Option<String>,
    value: Option<Probe>,
}

impl<'de> de::MapAccess<'de> for OneEntry {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.key.take() {
            Some(k) => seed
                .deserialize(StringDeserializer::<Error>::new(k))
                .map(Some),
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(p) => seed.deserialize(p),
            None => Err(end()),
        }
    }
}

/// A list of one item, walked.
struct OneItem(Option<Probe>);

impl<'de> de::SeqAccess<'de> for OneItem {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.take() {
            Some(p) => seed.deserialize(p).map(Some),
            None => Ok(None),
        }
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        if self.at.len() > MAX_DEPTH {
            // A visitor that takes anything (serde's buffering of untagged
            // enums) would follow the probe entry forever.
            return Err(end());
        }
        if self.rest.is_empty() {
            // A table? Its struct names its keys when refusing ours; a
            // table with free keys walks its one entry.
            let map = OneEntry {
                key: Some(NO_SUCH_KEY.to_string()),
                value: Some(Probe {
                    at: self.below(NAME),
                    rest: Vec::new(),
                    found: self.found.clone(),
                }),
            };
            if let Err(Error::Fields(fields)) = v.visit_map(map) {
                self.record_fields(fields);
            }
            // A list? Walked next time.
            self.walk_next(ITEM);
            return Err(end());
        }
        if self.rest[0] == ITEM {
            let item = self.child();
            v.visit_seq(OneItem(Some(item)))
        } else {
            self.into_map(v)
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        if self.rest.is_empty() {
            self.record_fields(fields);
            return Err(end());
        }
        if !fields.contains(&self.rest[0].as_str()) {
            return Err(end());
        }
        self.into_map(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        if self.rest.is_empty() {
            self.walk_next(NAME);
            return Err(end());
        }
        self.into_map(v)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        if self.rest.is_empty() {
            self.walk_next(ITEM);
            return Err(end());
        }
        if self.rest[0] != ITEM {
            return Err(end());
        }
        let item = self.child();
        v.visit_seq(OneItem(Some(item)))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, Error> {
        if self.rest.is_empty() {
            self.found
                .borrow_mut()
                .variants
                .insert(render(&self.at), variants.to_vec());
        }
        Err(end())
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }

    // Everything else is a plain value: the walk ends.
    fn deserialize_bool<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_i8<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_i16<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_i32<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_i64<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_u8<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_u16<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_u32<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_u64<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_f32<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_f64<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_char<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_str<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_string<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_unit<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _v: V,
    ) -> Result<V::Value, Error> {
        Err(end())
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(end())
    }
}

/// Every key of the config file, and the values of enum keys.
fn config_keys() -> Found {
    walk::<RawFile>()
}

/// Every key of `T`, and the values of enum keys.
fn walk<T: for<'de> Deserialize<'de>>() -> Found {
    let found = Rc::new(RefCell::new(Found::default()));
    let mut queue: VecDeque<Vec<String>> = VecDeque::from([Vec::new()]);
    let mut walked = BTreeSet::new();
    while let Some(path) = queue.pop_front() {
        if path.len() > MAX_DEPTH || !walked.insert(path.clone()) {
            continue;
        }
        let probe = Probe {
            at: Vec::new(),
            rest: path,
            found: found.clone(),
        };
        let _ = T::deserialize(probe);
        let todo = std::mem::take(&mut found.borrow_mut().todo);
        queue.extend(todo);
    }
    let found = found.borrow();
    Found {
        keys: found.keys.clone(),
        variants: found.variants.clone(),
        todo: Vec::new(),
    }
}

/// The key a path with trailing `NAME`/`[]` belongs to
/// (`services.NAME.depends_on.NAME` → `services.NAME.depends_on`).
fn owner(path: &str) -> &str {
    let mut p = path;
    loop {
        if let Some(s) = p.strip_suffix(ITEM) {
            p = s;
        } else if let Some(s) = p.strip_suffix(".NAME") {
            p = s;
        } else {
            return p;
        }
    }
}

/// The documented keys: `(path, row)` for every table row of
/// docs/config.md whose first cell is a key path in backticks.
fn documented(doc: &str) -> Vec<(String, String)> {
    let roots: Vec<String> = {
        let found = config_keys();
        found
            .keys
            .iter()
            .filter(|k| !k.contains(['.', '[']))
            .cloned()
            .collect()
    };
    let mut rows = Vec::new();
    for line in doc.lines() {
        let Some(row) = line.trim().strip_prefix('|') else {
            continue;
        };
        let first = row.split('|').next().unwrap_or("").trim();
        let Some(key) = first.strip_prefix('`').and_then(|k| k.strip_suffix('`')) else {
            continue;
        };
        let root = key.split(['.', '[']).next().unwrap_or("");
        if roots.iter().any(|r| r == root) {
            rows.push((key.to_string(), line.to_string()));
        }
    }
    rows
}

#[test]
fn the_walk_on_serde_shapes() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct A {
        x: Option<u32>,
        b: Option<B>,
        m: Option<std::collections::HashMap<String, B>>,
        l: Vec<B>,
        u: Option<U>,
        e: Option<E>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct B {
        y: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    #[allow(dead_code)]
    enum U {
        S(String),
        T(B),
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum E {
        One,
        TwoWords,
    }
    let found = walk::<A>();
    let keys: Vec<&str> = found.keys.iter().map(|k| k.as_str()).collect();
    // An untagged enum's fields stay hidden (see the module doc); the walk
    // still ends.
    assert_eq!(
        keys,
        ["b", "b.y", "e", "l", "l[].y", "m", "m.NAME.y", "u", "x"]
    );
    assert_eq!(found.variants.get("e"), Some(&vec!["one", "two-words"]));
}

#[test]
fn the_walk_finds_keys_of_every_kind() {
    let found = config_keys();
    for key in [
        // top level, plain struct fields
        "version",
        "supervisor.log.max_size",
        // free keys, `r#type`
        "services.NAME.type",
        "slices.NAME.parent",
        // a list of tables, and a hand-written list (`[[hooks]]`)
        "services.NAME.limits.io_max[].device",
        "hooks[].events",
        // a string or a table, and within it a list of strings or tables
        "services.NAME.isolation.seccomp.profile",
        "services.NAME.isolation.seccomp.deny[].args[].mask",
    ] {
        assert!(
            found.keys.contains(key),
            "{key} not found in {:#?}",
            found.keys
        );
    }
    assert_eq!(
        found.variants.get("services.NAME.restart"),
        Some(&vec!["always", "on-failure", "never"])
    );
    assert_eq!(
        found.variants.get("services.NAME.depends_on.NAME"),
        Some(&vec!["started", "ready", "healthy", "completed"])
    );
    assert_eq!(
        owner("services.NAME.depends_on.NAME"),
        "services.NAME.depends_on"
    );
    // Values are not keys.
    assert!(!found.keys.iter().any(|k| k.contains("env.NAME")));
    assert!(!found.keys.iter().any(|k| k.ends_with("command[]")));
}

/// What is wrong with `doc` as the reference of `found`; empty: nothing.
fn report(doc: &str, found: &Found) -> String {
    let rows = documented(doc);
    let doc_keys: BTreeSet<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();

    let missing: Vec<&str> = found
        .keys
        .iter()
        .map(|k| k.as_str())
        .filter(|k| !doc_keys.contains(k))
        .collect();
    let stale: Vec<&str> = doc_keys
        .iter()
        .copied()
        .filter(|k| !found.keys.contains(*k))
        .collect();
    let mut values = Vec::new();
    for (path, variants) in &found.variants {
        let key = owner(path);
        let Some((_, row)) = rows.iter().find(|(k, _)| k == key) else {
            continue; // reported as missing
        };
        for v in variants {
            if !row.contains(&format!("`{v}`")) && !row.contains(&format!("\"{v}\"")) {
                values.push(format!("{key}: `{v}`"));
            }
        }
    }
    let mut report = String::new();
    if !missing.is_empty() {
        report.push_str(&format!(
            "keys of the config model missing from docs/config.md (add a row \
             | `KEY` | type | default | example | meaning | for each):\n  {}\n",
            missing.join("\n  ")
        ));
    }
    if !stale.is_empty() {
        report.push_str(&format!(
            "rows of docs/config.md for keys the config model does not have (renamed or \
             removed? fix or delete the row):\n  {}\n",
            stale.join("\n  ")
        ));
    }
    if !values.is_empty() {
        report.push_str(&format!(
            "values of enum keys missing from their row in docs/config.md:\n  {}\n",
            values.join("\n  ")
        ));
    }
    report
}

fn config_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_config_key_is_in_docs_config_md() {
    let report = report(&config_md(), &config_keys());
    assert!(report.is_empty(), "{report}");
}

#[test]
fn the_check_names_a_missing_key_a_stale_row_and_a_missing_value() {
    let doc = config_md();
    let found = config_keys();
    let cut: String = doc
        .lines()
        .filter(|l| !l.starts_with("| `services.NAME.health.interval` |"))
        .map(|l| {
            if l.starts_with("| `services.NAME.restart` |") {
                l.replace("on-failure", "on failure")
            } else {
                l.to_string()
            }
        })
        .chain(["| `services.NAME.comand` | | | | |".to_string()])
        .collect::<Vec<_>>()
        .join("\n");
    let r = report(&cut, &found);
    assert!(
        r.contains("missing from docs/config.md")
            && r.contains("\n  services.NAME.health.interval\n"),
        "{r}"
    );
    assert!(r.contains("\n  services.NAME.comand\n"), "{r}");
    assert!(r.contains("services.NAME.restart: `on-failure`"), "{r}");
}
