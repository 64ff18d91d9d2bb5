//! A format-neutral document tree with positions, and a serde
//! `Deserializer` over it.
//!
//! TOML and YAML are both read into a [`Node`] first, so the raw serde model
//! is deserialized the same way from either, with the same messages, and
//! every error knows its key path and position.

use serde::de::{
    self, DeserializeSeed, Error as _, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use std::fmt;

/// 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// The position of byte `offset` in `text`.
    pub fn of_offset(text: &str, offset: usize) -> Pos {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Option<Pos>,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// YAML's `~`/`null`/empty value (TOML has none).
    #[cfg_attr(not(feature = "yaml"), allow(dead_code))]
    Null,
    List(Vec<Node>),
    Map(Vec<Entry>),
    /// A value sentinel has no use for (a TOML date, a huge integer), as
    /// messages name it: "a date or time".
    Other(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Option<Pos>,
    pub value: Node,
}

impl Node {
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The entry at a key path, e.g. `["services", "web", "backoff"]`.
    pub fn entry(&self, path: &[&str]) -> Option<&Entry> {
        let (first, rest) = path.split_first()?;
        let entry = self.entries()?.iter().find(|e| e.key == *first)?;
        if rest.is_empty() {
            Some(entry)
        } else {
            entry.value.entry(rest)
        }
    }

    /// Remove the entry at a key path (list indices in `path` are ignored:
    /// the whole list goes). Returns whether something was removed.
    pub fn remove(&mut self, path: &[Seg]) -> bool {
        let Some((Seg::Key(first), rest)) = path.split_first() else {
            return false;
        };
        let Kind::Map(entries) = &mut self.kind else {
            return false;
        };
        let Some(i) = entries.iter().position(|e| e.key == *first) else {
            return false;
        };
        if matches!(rest.first(), Some(Seg::Key(_))) {
            entries[i].value.remove(rest)
        } else {
            entries.remove(i);
            true
        }
    }

    /// How the value is called in messages: "a string", "a table".
    fn describe(&self) -> String {
        match &self.kind {
            Kind::Str(s) => format!("the string \"{s}\""),
            Kind::Int(i) => format!("the integer {i}"),
            Kind::Float(f) => format!("the number {f}"),
            Kind::Bool(b) => format!("`{b}`"),
            Kind::Null => "an empty value".to_string(),
            Kind::List(_) => "an array".to_string(),
            Kind::Map(_) => "a table".to_string(),
            Kind::Other(what) => (*what).to_string(),
        }
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Render `services.web.command[1]`; keys that are not plain words are quoted.
pub fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let plain = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if plain {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("{k:?}"));
                }
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A deserialization error with its key path and position.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    /// Innermost segment first while the error bubbles up; see [`DeError::path`].
    rev_path: Vec<Seg>,
    pub pos: Option<Pos>,
    pub message: String,
}

impl DeError {
    pub fn path(&self) -> Vec<Seg> {
        self.rev_path.iter().rev().cloned().collect()
    }

    fn at(mut self, pos: Option<Pos>) -> Self {
        if self.pos.is_none() {
            self.pos = pos;
        }
        self
    }

    fn under(mut self, seg: Seg) -> Self {
        self.rev_path.push(seg);
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

/// Serde's names for what a visitor expected, in config words.
fn expected_words(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a boolean" => "true or false".to_string(),
        "a sequence" => "an array".to_string(),
        "a map" => "a table".to_string(),
        t if t.starts_with("struct ") => "a table".to_string(),
        _ => text,
    }
}

fn unexpected_words(unexp: de::Unexpected) -> String {
    use de::Unexpected as U;
    match unexp {
        U::Bool(b) => format!("`{b}`"),
        U::Signed(i) => format!("the integer {i}"),
        U::Unsigned(i) => format!("the integer {i}"),
        U::Float(f) => format!("the number {f}"),
        U::Str(s) => format!("the string \"{s}\""),
        U::Char(c) => format!("the string \"{c}\""),
        U::Unit | U::Option => "an empty value".to_string(),
        U::Seq => "an array".to_string(),
        U::Map => "a table".to_string(),
        other => other.to_string(),
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(&word.to_lowercase(), c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, with an adjacent swap counting as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            rev_path: Vec::new(),
            pos: None,
            message: msg.to_string(),
        }
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, found {}",
            expected_words(exp),
            unexpected_words(unexp)
        ))
    }

    fn invalid_value(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Self::invalid_type(unexp, exp)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format_args!(
            "unknown value \"{variant}\"; expected one of: {}",
            expected.join(", ")
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        // The key itself is put in the path by the map access.
        Self::custom(format_args!(
            "unknown key; {}",
            known_keys_hint(field, expected)
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format_args!("missing key `{field}`"))
    }
}

/// "did you mean "command"?" or the list of keys this table accepts.
pub fn known_keys_hint(key: &str, expected: &[&str]) -> String {
    match suggest(key, expected) {
        Some(s) => format!("did you mean \"{s}\"?"),
        None if expected.is_empty() => "this table takes no keys".to_string(),
        None => format!("expected one of: {}", expected.join(", ")),
    }
}

/// Deserialize `T` from `node`; the error carries the key path below `node`.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &Node) -> Result<T, DeError> {
    T::deserialize(NodeDe(node))
}

struct NodeDe<'a>(&'a Node);

impl NodeDe<'_> {
    fn wrong_type(&self, expected: &str) -> DeError {
        DeError::custom(format_args!(
            "expected {expected}, found {}",
            self.0.describe()
        ))
        .at(self.0.pos)
    }
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match &node.kind {
            Kind::Str(s) => visitor.visit_str(s),
            Kind::Int(i) => visitor.visit_i64(*i),
            Kind::Float(f) => visitor.visit_f64(*f),
            Kind::Bool(b) => visitor.visit_bool(*b),
            Kind::Null => visitor.visit_unit(),
            Kind::List(items) => visitor.visit_seq(Seq {
                items: items.iter().enumerate(),
            }),
            Kind::Map(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
            }),
            Kind::Other(what) => Err(DeError::custom(format_args!(
                "sentinel has no use for {what} here"
            ))),
        };
        result.map_err(|e| e.at(node.pos))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.kind {
            Kind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.kind {
            Kind::Map(_) => self.deserialize_any(visitor),
            _ => Err(self.wrong_type("a table")),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.kind {
            Kind::List(_) => self.deserialize_any(visitor),
            _ => Err(self.wrong_type("an array")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.0.kind {
            Kind::Str(s) => visitor
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: DeError| e.at(self.0.pos)),
            _ => Err(self.wrong_type("a string")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

struct Seq<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some((i, node)) => seed
                .deserialize(NodeDe(node))
                .map(Some)
                .map_err(|e| e.at(node.pos).under(Seg::Index(i))),
            None => Ok(None),
        }
    }
}

struct Map<'a> {
    entries: std::slice::Iter<'a, Entry>,
    value: Option<&'a Entry>,
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        let key: de::value::StrDeserializer<'_, DeError> = entry.key.as_str().into_deserializer();
        seed.deserialize(key)
            .map(Some)
            .map_err(|e| e.at(entry.key_pos).under(Seg::Key(entry.key.clone())))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let entry = self
            .value
            .take()
            .ok_or_else(|| DeError::custom("value asked before its key"))?;
        seed.deserialize(NodeDe(&entry.value))
            .map_err(|e| e.at(entry.value.pos).under(Seg::Key(entry.key.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn pos(line: usize, column: usize) -> Option<Pos> {
        Some(Pos { line, column })
    }

    fn n(kind: Kind, p: Option<Pos>) -> Node {
        Node { pos: p, kind }
    }

    fn entry(key: &str, key_pos: Option<Pos>, value: Node) -> Entry {
        Entry {
            key: key.to_string(),
            key_pos,
            value,
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        count: Option<u32>,
        names: Option<Vec<String>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        inner: Option<Inner>,
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "ab\ncdé\nf";
        assert_eq!(Pos::of_offset(text, 0), Pos { line: 1, column: 1 });
        assert_eq!(Pos::of_offset(text, 3), Pos { line: 2, column: 1 });
        assert_eq!(Pos::of_offset(text, 7), Pos { line: 2, column: 4 });
        assert_eq!(Pos::of_offset(text, 8), Pos { line: 3, column: 1 });
    }

    #[test]
    fn errors_carry_path_and_position() {
        let doc = n(
            Kind::Map(vec![entry(
                "inner",
                pos(1, 1),
                n(
                    Kind::Map(vec![entry(
                        "names",
                        pos(2, 1),
                        n(
                            Kind::List(vec![
                                n(Kind::Str("a".into()), pos(2, 10)),
                                n(Kind::Int(5), pos(2, 15)),
                            ]),
                            pos(2, 9),
                        ),
                    )]),
                    pos(2, 1),
                ),
            )]),
            pos(1, 1),
        );
        let err = from_node::<Outer>(&doc).unwrap_err();
        assert_eq!(path_string(&err.path()), "inner.names[1]");
        assert_eq!(err.pos, pos(2, 15));
        assert_eq!(err.message, "expected a string, found the integer 5");
    }

    #[test]
    fn unknown_keys_point_at_the_key_and_suggest() {
        let doc = n(
            Kind::Map(vec![entry(
                "inner",
                pos(1, 1),
                n(
                    Kind::Map(vec![entry("cuont", pos(3, 5), n(Kind::Int(1), pos(3, 13)))]),
                    pos(3, 5),
                ),
            )]),
            pos(1, 1),
        );
        let err = from_node::<Outer>(&doc).unwrap_err();
        assert_eq!(path_string(&err.path()), "inner.cuont");
        assert_eq!(err.pos, pos(3, 5));
        assert_eq!(err.message, "unknown key; did you mean \"count\"?");
    }

    #[test]
    fn type_errors_use_config_words() {
        let doc = n(
            Kind::Map(vec![entry(
                "inner",
                pos(1, 1),
                n(Kind::Str("x".into()), pos(1, 9)),
            )]),
            None,
        );
        let err = from_node::<Outer>(&doc).unwrap_err();
        assert_eq!(err.message, "expected a table, found the string \"x\"");
        assert_eq!(err.pos, pos(1, 9));

        let doc = n(
            Kind::Map(vec![entry("count", None, n(Kind::Int(-3), pos(4, 2)))]),
            None,
        );
        let err = from_node::<Inner>(&doc).unwrap_err();
        assert_eq!(
            err.message,
            "expected a whole number, 0 or more, found the integer -3"
        );
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        let keys = ["command", "workdir", "env", "env_file", "restart"];
        assert_eq!(suggest("comand", &keys), Some("command"));
        assert_eq!(suggest("cmomand", &keys), Some("command"));
        assert_eq!(suggest("envfile", &keys), Some("env_file"));
        assert_eq!(suggest("Restart", &keys), Some("restart"));
        assert_eq!(suggest("user", &keys), None);
        assert_eq!(suggest("x", &keys), None);
    }

    #[test]
    fn remove_drops_the_entry_or_the_whole_list() {
        let mut doc = n(
            Kind::Map(vec![
                entry(
                    "a",
                    None,
                    n(
                        Kind::Map(vec![
                            entry("b", None, n(Kind::Int(1), None)),
                            entry("l", None, n(Kind::List(vec![n(Kind::Int(1), None)]), None)),
                        ]),
                        None,
                    ),
                ),
                entry("c", None, n(Kind::Int(2), None)),
            ]),
            None,
        );
        let key = |k: &str| Seg::Key(k.to_string());
        assert!(doc.remove(&[key("a"), key("l"), Seg::Index(0)]));
        assert!(doc.entry(&["a", "l"]).is_none());
        assert!(doc.remove(&[key("a"), key("b")]));
        assert!(doc.entry(&["a"]).is_some());
        assert!(!doc.remove(&[key("zz")]));
        assert!(!doc.remove(&[]));
    }
}
