//! `.env` files: `KEY=value` lines.
//!
//! - blank lines and lines starting with `#` are skipped;
//! - an optional `export ` prefix is ignored;
//! - `'single quoted'` values are literal;
//! - `"double quoted"` values understand `\n`, `\t`, `\r`, `\\`, `\"` (any
//!   other backslash is kept as it is);
//! - quoted values may span lines; after the closing quote only a comment
//!   may follow;
//! - unquoted values are trimmed, and ` #` starts a comment;
//! - there is no variable interpolation: `$HOME` stays `$HOME`.
//!
//! A key appearing twice keeps its first position and its last value.

/// A mistake in an env file: 1-based line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileError {
    pub line: usize,
    pub message: String,
}

/// Parse the text of an env file into ordered `(key, value)` pairs.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((lineno, line)) = lines.next() {
        let err = |message: String| EnvFileError {
            line: lineno,
            message,
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = match trimmed.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
            _ => trimmed,
        };
        let Some((key, raw)) = body.split_once('=') else {
            return Err(err(format!(
                "expected KEY=value, found \"{}\"",
                shorten(trimmed)
            )));
        };
        let key = key.trim_end();
        if !valid_key(key) {
            return Err(err(format!(
                "invalid variable name \"{key}\"; use letters, digits, '_' and '.', not starting with a digit"
            )));
        }
        let raw = raw.trim_start();
        let value = match raw.chars().next() {
            Some(q @ ('\'' | '"')) => {
                let (value, after) = quoted(&raw[1..], q, &mut lines)
                    .ok_or_else(|| err(format!("{key}: unterminated {q}quote{q}")))?;
                let after = after.trim_start();
                if !after.is_empty() && !after.starts_with('#') {
                    return Err(err(format!(
                        "{key}: unexpected text after the closing quote: \"{}\"",
                        shorten(after)
                    )));
                }
                value
            }
            _ => unquoted(raw).to_string(),
        };
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key.to_string(), value)),
        }
    }
    Ok(out)
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// An unquoted value: up to a ` #` comment, trimmed.
fn unquoted(raw: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in raw.char_indices() {
        if c == '#' && prev_space {
            return raw[..i].trim();
        }
        prev_space = c == ' ' || c == '\t';
    }
    raw.trim()
}

/// Read a quoted value starting just after the opening quote `q`, pulling
/// further lines when it spans them. Returns the value and the rest of the
/// closing line, or None when the quote never closes.
fn quoted<'a>(
    first: &'a str,
    q: char,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Option<(String, &'a str)> {
    let mut value = String::new();
    let mut current = first;
    loop {
        let mut chars = current.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == q {
                return Some((value, &current[i + 1..]));
            }
            if c == '\\' && q == '"' {
                match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, other)) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => value.push('\\'),
                }
            } else {
                value.push(c);
            }
        }
        let (_, next) = lines.next()?;
        value.push('\n');
        current = next;
    }
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap()
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_lines_comments_and_blank_lines() {
        let text = "# a comment\n\nA=1\n  B = two words  \n   # indented comment\nC=\nexport D=4\nexport\tE=5\n";
        assert_eq!(
            pairs(text),
            kv(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", ""),
                ("D", "4"),
                ("E", "5")
            ])
        );
    }

    #[test]
    fn inline_comments_need_a_space_before_the_hash() {
        assert_eq!(
            pairs("A=1 # note\nB=x#y\nC=#z\nURL=http://h/#frag\n"),
            kv(&[
                ("A", "1"),
                ("B", "x#y"),
                ("C", ""),
                ("URL", "http://h/#frag")
            ])
        );
    }

    #[test]
    fn quotes_and_escapes() {
        let text = r#"S='a $b \n "c"'
D="line\none\ttab \\ \" \q"
E="  keep spaces  " # comment
F='' 
G="a=b"
"#;
        assert_eq!(
            pairs(text),
            kv(&[
                ("S", r#"a $b \n "c""#),
                ("D", "line\none\ttab \\ \" \\q"),
                ("E", "  keep spaces  "),
                ("F", ""),
                ("G", "a=b"),
            ])
        );
    }

    #[test]
    fn quoted_values_span_lines() {
        let text = "KEY=\"-----BEGIN\nabc\n-----END\"\nNEXT='x\ny'\nLAST=1\n";
        assert_eq!(
            pairs(text),
            kv(&[
                ("KEY", "-----BEGIN\nabc\n-----END"),
                ("NEXT", "x\ny"),
                ("LAST", "1")
            ])
        );
    }

    #[test]
    fn exported_names_and_windows_line_ends() {
        assert_eq!(
            pairs("exporter=1\r\nexport_x=2\r\n"),
            kv(&[("exporter", "1"), ("export_x", "2")])
        );
    }

    #[test]
    fn later_duplicates_win_in_place() {
        assert_eq!(pairs("A=1\nB=2\nA=3\n"), kv(&[("A", "3"), ("B", "2")]));
    }

    #[test]
    fn errors_carry_the_line() {
        let e = parse("A=1\n\njust words\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("expected KEY=value"), "{}", e.message);

        let e = parse("A=1\nB=\"open\nC=2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated"), "{}", e.message);

        let e = parse("1X=1\n").unwrap_err();
        assert!(
            e.message.contains("invalid variable name \"1X\""),
            "{}",
            e.message
        );

        let e = parse("A='x' y\n").unwrap_err();
        assert!(
            e.message.contains("after the closing quote"),
            "{}",
            e.message
        );

        assert_eq!(parse("=x\n").unwrap_err().line, 1);
    }
}
