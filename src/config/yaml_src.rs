//! YAML text to a [`Node`] tree (cargo feature `yaml`).
//!
//! Built on `granit-parser`, the pure-Rust (`#![forbid(unsafe_code)]`)
//! YAML 1.2 event parser under `serde-saphyr`: every event comes with its
//! line and column, so every key and value keeps its position. Plain
//! scalars are typed by the YAML 1.2 core schema (`yes` is a string, not a
//! boolean); quoted and block scalars are strings. Anchors and aliases
//! work; duplicate keys and several documents in one file are errors.

use super::node::{Entry, Kind, Node, Pos};
use super::Problem;
use granit_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// Parse YAML text. An empty document is [`Kind::Null`].
pub fn parse(text: &str) -> Result<Node, Vec<Problem>> {
    build(text).map_err(|(pos, message)| {
        vec![Problem {
            key: String::new(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            message: format!("invalid YAML: {message}"),
        }]
    })
}

type Failure = (Option<Pos>, String);

fn pos_of(span: &Span) -> Option<Pos> {
    let m = span.start;
    (m.line() > 0).then(|| Pos {
        line: m.line(),
        column: m.col() + 1,
    })
}

/// A collection being read.
enum Open {
    Seq(Node, usize),
    /// The map node, its anchor, and a key waiting for its value.
    Map(Node, usize, Option<(String, Option<Pos>)>),
}

fn build(text: &str) -> Result<Node, Failure> {
    let mut stack: Vec<Open> = Vec::new();
    // Each anchored node with its size: aliases copy it, within a budget.
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let mut copied = 0usize;
    let mut root: Option<Node> = None;
    let mut documents = 0;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            (
                Some(Pos {
                    line: m.line().max(1),
                    column: m.col() + 1,
                }),
                e.info(),
            )
        })?;
        let pos = pos_of(&span);
        let (node, anchor) = match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err((pos, "one document per file; remove the second `---`".into()));
                }
                continue;
            }
            Event::Scalar(value, style, anchor, tag) => {
                let literal = style != ScalarStyle::Plain
                    || tag
                        .as_ref()
                        .is_some_and(|t| t.is_yaml_core_schema_tag("str"));
                let kind = if literal {
                    Kind::Str(value.into_owned())
                } else {
                    plain(&value)
                };
                (Node { pos, kind }, anchor)
            }
            Event::SequenceStart(_, anchor, _) => {
                stack.push(Open::Seq(
                    Node {
                        pos,
                        kind: Kind::List(Vec::new()),
                    },
                    anchor,
                ));
                continue;
            }
            Event::MappingStart(_, anchor, _) => {
                stack.push(Open::Map(
                    Node {
                        pos,
                        kind: Kind::Map(Vec::new()),
                    },
                    anchor,
                    None,
                ));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq(node, anchor) | Open::Map(node, anchor, _)) => (node, anchor),
                None => return Err((pos, "unbalanced collection".into())),
            },
            Event::Alias(id) => match anchors.get(&id) {
                Some((n, size)) => {
                    copied += size;
                    if copied > MAX_ALIAS_NODES {
                        return Err((
                            pos,
                            format!("aliases expand to more than {MAX_ALIAS_NODES} values"),
                        ));
                    }
                    (
                        Node {
                            pos,
                            kind: n.kind.clone(),
                        },
                        0,
                    )
                }
                None => return Err((pos, "alias to an unknown anchor".into())),
            },
            Event::UnresolvedAlias(name) => {
                return Err((pos, format!("unknown anchor \"{name}\"")));
            }
            _ => continue,
        };
        if anchor != 0 {
            anchors.insert(anchor, (node.clone(), size(&node)));
        }
        add(&mut stack, &mut root, node)?;
    }
    Ok(root.unwrap_or(Node {
        pos: None,
        kind: Kind::Null,
    }))
}

/// Values that aliases may copy in all, so that a few lines of nested
/// aliases ("billion laughs") cannot take all memory.
const MAX_ALIAS_NODES: usize = 100_000;

/// How many values a node holds, itself included.
fn size(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::List(items) => items.iter().map(size).sum(),
        Kind::Map(entries) => entries.iter().map(|e| 1 + size(&e.value)).sum(),
        _ => 0,
    }
}

/// Put a finished node in its parent: an item, a key, or a key's value.
fn add(stack: &mut [Open], root: &mut Option<Node>, node: Node) -> Result<(), Failure> {
    match stack.last_mut() {
        None => *root = Some(node),
        Some(Open::Seq(seq, _)) => {
            if let Kind::List(items) = &mut seq.kind {
                items.push(node);
            }
        }
        Some(Open::Map(map, _, pending)) => {
            let Kind::Map(entries) = &mut map.kind else {
                return Ok(());
            };
            match pending.take() {
                Some((key, key_pos)) => entries.push(Entry {
                    key,
                    key_pos,
                    value: node,
                }),
                None => {
                    let key = match node.kind {
                        Kind::Str(s) => s,
                        Kind::Int(n) => n.to_string(),
                        Kind::Bool(b) => b.to_string(),
                        _ => return Err((node.pos, "a key must be a plain word".into())),
                    };
                    if entries.iter().any(|e| e.key == key) {
                        return Err((
                            node.pos,
                            format!("duplicate key \"{key}\"; each key may appear once per table"),
                        ));
                    }
                    *pending = Some((key, node.pos));
                }
            }
        }
    }
    Ok(())
}

/// The YAML 1.2 core schema for a plain scalar.
fn plain(s: &str) -> Kind {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Kind::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    let digits = |t: &str, radix: u32| !t.is_empty() && t.chars().all(|c| c.is_digit(radix));
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits(unsigned, 10) {
        return s
            .parse::<i64>()
            .map_or(Kind::Other("an integer beyond 64 bits"), Kind::Int);
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8)] {
        if let Some(d) = s.strip_prefix(prefix).filter(|d| digits(d, radix)) {
            return i64::from_str_radix(d, radix)
                .map_or(Kind::Other("an integer beyond 64 bits"), Kind::Int);
        }
    }
    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((i, f)) => {
            (digits(i, 10) || i.is_empty())
                && (f.is_empty() || digits(f, 10))
                && !(i.is_empty() && f.is_empty())
        }
        None => digits(mantissa, 10),
    };
    if mantissa_ok && exponent.map_or(true, |e| digits(e, 10)) {
        if let Ok(x) = s.parse::<f64>() {
            return Kind::Float(x);
        }
    }
    Kind::Str(s.to_string())
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
    fn core_schema_scalars() {
        for (text, kind) in [
            ("~", Kind::Null),
            ("null", Kind::Null),
            ("true", Kind::Bool(true)),
            ("False", Kind::Bool(false)),
            ("yes", Kind::Str("yes".into())),
            ("on", Kind::Str("on".into())),
            ("0", Kind::Int(0)),
            ("-12", Kind::Int(-12)),
            ("+7", Kind::Int(7)),
            ("0x1F", Kind::Int(31)),
            ("0o17", Kind::Int(15)),
            ("1.5", Kind::Float(1.5)),
            ("-.5", Kind::Float(-0.5)),
            ("2e3", Kind::Float(2000.0)),
            (".inf", Kind::Float(f64::INFINITY)),
            ("10s", Kind::Str("10s".into())),
            ("1.2.3", Kind::Str("1.2.3".into())),
            ("0x", Kind::Str("0x".into())),
            ("e5", Kind::Str("e5".into())),
            ("'5'", Kind::Str("5".into())),
            ("\"true\"", Kind::Str("true".into())),
            ("!!str 5", Kind::Str("5".into())),
        ] {
            assert_eq!(parse(text).unwrap().kind, kind, "{text}");
        }
        assert!(matches!(parse(".nan").unwrap().kind, Kind::Float(x) if x.is_nan()));
    }

    #[test]
    fn anchors_and_aliases() {
        let node = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        let b = node.entry(&["b"]).unwrap();
        assert_eq!(b.value.pos, p(2, 4));
        assert!(matches!(&b.value.kind, Kind::List(items) if items.len() == 2));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let problems = parse(&text).unwrap_err();
        assert!(
            problems[0].message.contains("aliases expand"),
            "{problems:?}"
        );
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_have_positions() {
        let problems = parse("services:\n  web: {}\n  web: {}\n").unwrap_err();
        assert_eq!(problems[0].line, Some(3), "{problems:?}");
        assert!(
            problems[0].message.contains("duplicate key \"web\""),
            "{problems:?}"
        );

        let problems = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(problems[0].line, Some(2), "{problems:?}");
        assert!(problems[0].message.starts_with("invalid YAML"));

        let problems = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(problems[0].message.contains("one document"), "{problems:?}");

        let problems = parse("a: *nope\n").unwrap_err();
        assert_eq!(problems[0].line, Some(1), "{problems:?}");
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").unwrap().kind, Kind::Null);
        assert_eq!(parse("# only a comment\n").unwrap().kind, Kind::Null);
    }
}
