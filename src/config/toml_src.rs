//! TOML text to a [`Node`] tree, keeping file order and positions.

use super::node::{Entry, Kind, Node, Pos};
use super::Problem;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Parse TOML text. A syntax error stops here, with its position; only the
/// first is reported, as what follows it cannot be trusted.
pub fn parse(text: &str) -> Result<Node, Vec<Problem>> {
    let table = DeTable::parse(text).map_err(|e| {
        let pos = e.span().map(|s| Pos::of_offset(text, s.start));
        vec![Problem {
            key: String::new(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            message: format!("invalid TOML: {}", e.message().trim_end()),
        }]
    })?;
    let span = table.span();
    Ok(table_node(text, table.into_inner(), span.start))
}

fn table_node(text: &str, table: DeTable<'_>, start: usize) -> Node {
    let mut entries: Vec<(usize, Entry)> = table
        .into_iter()
        .map(|(key, value)| {
            let key_start = key.span().start;
            let entry = Entry {
                key: key.into_inner().into_owned(),
                key_pos: Some(Pos::of_offset(text, key_start)),
                value: value_node(text, value),
            };
            (key_start, entry)
        })
        .collect();
    // The table is sorted by key; the file order is the order of the keys' spans.
    entries.sort_by_key(|(start, _)| *start);
    Node {
        pos: Some(Pos::of_offset(text, start)),
        kind: Kind::Map(entries.into_iter().map(|(_, e)| e).collect()),
    }
}

fn value_node(text: &str, value: Spanned<DeValue<'_>>) -> Node {
    let start = value.span().start;
    let pos = Some(Pos::of_offset(text, start));
    let kind = match value.into_inner() {
        DeValue::String(s) => Kind::Str(s.into_owned()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Kind::Int(n),
            Err(_) => Kind::Other("an integer beyond 64 bits"),
        },
        DeValue::Float(f) => match f.as_str().parse::<f64>() {
            Ok(x) => Kind::Float(x),
            Err(_) => Kind::Other("an unreadable number"),
        },
        DeValue::Boolean(b) => Kind::Bool(b),
        DeValue::Datetime(_) => Kind::Other("a date or time"),
        DeValue::Array(items) => {
            Kind::List(items.into_iter().map(|v| value_node(text, v)).collect())
        }
        DeValue::Table(table) => return table_node(text, table, start),
    };
    Node { pos, kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: usize, column: usize) -> Option<Pos> {
        Some(Pos { line, column })
    }

    #[test]
    fn keeps_file_order_and_positions() {
        let text = "[services.zeta]\ncommand = [\"a\", 'b']\n\n[services.alpha]\ncommand = \"x\"\nn = 0x10\nf = 1.5\nb = true\n";
        let node = parse(text).unwrap();
        let services = node.entry(&["services"]).unwrap();
        let names: Vec<&str> = services
            .value
            .entries()
            .unwrap()
            .iter()
            .map(|e| e.key.as_str())
            .collect();
        assert_eq!(names, ["zeta", "alpha"]);
        let cmd = node.entry(&["services", "zeta", "command"]).unwrap();
        assert_eq!(cmd.key_pos, p(2, 1));
        assert_eq!(cmd.value.pos, p(2, 11));
        let Kind::List(items) = &cmd.value.kind else {
            panic!("{cmd:?}")
        };
        assert_eq!(items[1].pos, p(2, 17));
        assert_eq!(items[1].kind, Kind::Str("b".into()));
        let alpha = |k: &str| {
            node.entry(&["services", "alpha", k])
                .unwrap()
                .value
                .kind
                .clone()
        };
        assert_eq!(alpha("n"), Kind::Int(16));
        assert_eq!(alpha("f"), Kind::Float(1.5));
        assert_eq!(alpha("b"), Kind::Bool(true));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let problems = parse("[a]\nx = 1\ny = \n").unwrap_err();
        assert!(!problems.is_empty());
        assert_eq!(problems[0].line, Some(3), "{problems:?}");
        assert!(problems[0].message.starts_with("invalid TOML"));

        let problems = parse("a = 1\na = 2\n").unwrap_err();
        assert_eq!(problems[0].line, Some(2), "{problems:?}");
    }
}
