//! YAML text to a [`Node`] tree (cargo feature `yaml`), through
//! `serde-saphyr`: a pure-Rust parser (`#![forbid(unsafe_code)]`) that gives
//! every node its line and column and refuses duplicate keys.

use super::node::{Entry, Kind, Node, Pos};
use super::Problem;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};
use std::fmt;

/// Parse YAML text. An empty document is an empty table.
pub fn parse(text: &str) -> Result<Node, Vec<Problem>> {
    match serde_saphyr::from_str::<YNode>(text) {
        Ok(YNode(node)) => Ok(node),
        Err(e) => {
            let pos = e.location().and_then(pos_of);
            let message = UserMessageFormatter.format_message(e.without_snippet());
            Err(vec![Problem {
                key: String::new(),
                line: pos.map(|p| p.line),
                column: pos.map(|p| p.column),
                message: format!("invalid YAML: {message}"),
            }])
        }
    }
}

fn pos_of(loc: Location) -> Option<Pos> {
    let line = usize::try_from(loc.line()).ok()?;
    let column = usize::try_from(loc.column()).ok()?;
    (line > 0).then_some(Pos { line, column })
}

/// A node and where it was written.
struct YNode(Node);

impl<'de> Deserialize<'de> for YNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<YKind>::deserialize(d)?;
        Ok(YNode(Node {
            pos: pos_of(spanned.referenced),
            kind: spanned.value.0,
        }))
    }
}

struct YKind(Kind);

impl<'de> Deserialize<'de> for YKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = YKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<YKind, E> {
        Ok(YKind(Kind::Str(s.to_string())))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<YKind, E> {
        Ok(YKind(Kind::Int(n)))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<YKind, E> {
        Ok(YKind(match i64::try_from(n) {
            Ok(n) => Kind::Int(n),
            Err(_) => Kind::Other("an integer too large"),
        }))
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<YKind, E> {
        Ok(YKind(Kind::Float(x)))
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<YKind, E> {
        Ok(YKind(Kind::Bool(b)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<YKind, E> {
        Ok(YKind(Kind::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<YKind, E> {
        Ok(YKind(Kind::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<YKind, D::Error> {
        YKind::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YKind, A::Error> {
        let mut items = Vec::new();
        while let Some(YNode(n)) = seq.next_element()? {
            items.push(n);
        }
        Ok(YKind(Kind::List(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YKind, A::Error> {
        let mut entries = Vec::new();
        while let Some((YNode(k), YNode(value))) = map.next_entry()? {
            let key = match k.kind {
                Kind::Str(s) => s,
                Kind::Int(n) => n.to_string(),
                Kind::Bool(b) => b.to_string(),
                _ => {
                    return Err(de::Error::custom(format_args!(
                        "a key must be a plain word (at line {})",
                        k.pos.map_or(0, |p| p.line)
                    )))
                }
            };
            entries.push(Entry {
                key,
                key_pos: k.pos,
                value,
            });
        }
        Ok(YKind(Kind::Map(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: usize, column: usize) -> Option<Pos> {
        Some(Pos { line, column })
    }

    #[test]
    fn keeps_order_types_and_positions() {
        let text = "services:\n  zeta:\n    command: [sleep, 5, \"x y\"]\n  alpha:\n    autostart: false\n    factor: 1.5\n";
        let node = parse(text).unwrap();
        let names: Vec<&str> = node
            .entry(&["services"])
            .unwrap()
            .value
            .entries()
            .unwrap()
            .iter()
            .map(|e| e.key.as_str())
            .collect();
        assert_eq!(names, ["zeta", "alpha"]);
        let cmd = node.entry(&["services", "zeta", "command"]).unwrap();
        assert_eq!(cmd.key_pos, p(3, 5));
        let Kind::List(items) = &cmd.value.kind else {
            panic!("{cmd:?}")
        };
        assert_eq!(items[1].kind, Kind::Int(5));
        assert_eq!(items[2].kind, Kind::Str("x y".into()));
        assert_eq!(items[2].pos, p(3, 25));
        let alpha = |k: &str| {
            node.entry(&["services", "alpha", k])
                .unwrap()
                .value
                .kind
                .clone()
        };
        assert_eq!(alpha("autostart"), Kind::Bool(false));
        assert_eq!(alpha("factor"), Kind::Float(1.5));
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_have_positions() {
        let problems = parse("services:\n  web: {}\n  web: {}\n").unwrap_err();
        assert_eq!(problems[0].line, Some(3), "{problems:?}");
        assert!(problems[0].message.contains("duplicate"), "{problems:?}");

        let problems = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(problems[0].line, Some(2), "{problems:?}");
        assert!(problems[0].message.starts_with("invalid YAML"));
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").unwrap().kind, Kind::Null);
        assert_eq!(parse("# only a comment\n").unwrap().kind, Kind::Null);
    }
}
