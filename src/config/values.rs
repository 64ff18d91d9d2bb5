//! Humane values: durations, sizes, signals, and the shell-like split of a
//! command string. Each parser returns a message that names the value and
//! says what would have been accepted, ready to follow a key path.

use std::time::Duration;

/// Parse a duration: `"500ms"`, `"10s"`, `"1m"`, `"2h"`, `"1d"`, compounds
/// such as `"1m30s"` or `"1h 30m"`, decimals such as `"1.5s"`, and `"0"`.
/// A bare number (`"10"`) means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let hint = "use a number with a unit: ms, s, m, h or d (e.g. \"500ms\", \"10s\", \"1m30s\")";
    if s.is_empty() {
        return Err(format!("empty duration; {hint}"));
    }
    let bad = |why: &str| format!("invalid duration \"{text}\": {why}; {hint}");
    let mut total: u128 = 0;
    let mut rest = s;
    let mut parts = 0;
    while !rest.is_empty() {
        let (int, frac, after) = split_number(rest).ok_or_else(|| bad("expected a number"))?;
        let unit_end = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after_unit) = after.split_at(unit_end);
        let nanos_per: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            // A bare number alone means seconds; inside a compound it is a mistake.
            "" if parts == 0 && after_unit.trim().is_empty() => 1_000_000_000,
            "" => return Err(bad(&format!("missing unit after {int}"))),
            other => return Err(bad(&format!("unknown unit \"{other}\""))),
        };
        total = total
            .checked_add(scaled(int, frac, nanos_per).ok_or_else(|| bad("too large"))?)
            .ok_or_else(|| bad("too large"))?;
        rest = after_unit.trim_start();
        parts += 1;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad("too large"))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Parse a size in bytes: `"100"`, `"512k"`, `"64M"`, `"64MiB"`, `"64MB"`,
/// `"1G"`, `"1.5G"`, `"2T"`. A bare number means bytes.
///
/// Every unit is a power of 1024, whatever its spelling: `K` = `KB` = `KiB`
/// = 1024 bytes, `M` = `MB` = `MiB` = 1024², `G`, `T` likewise (the systemd
/// and Docker convention; memory limits are counted in pages anyway).
/// Units are case-insensitive; a trailing `B` alone means bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let hint = "use a number of bytes or a number with K, M, G or T (powers of 1024, e.g. \"64M\")";
    if s.is_empty() {
        return Err(format!("empty size; {hint}"));
    }
    let bad = |why: &str| format!("invalid size \"{text}\": {why}; {hint}");
    let (int, frac, after) = split_number(s).ok_or_else(|| bad("expected a number"))?;
    let unit = after.trim_start().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad(&format!("unknown unit \"{}\"", after.trim_start()))),
    };
    let bytes = scaled(int, frac, 1u128 << shift).ok_or_else(|| bad("too large"))?;
    u64::try_from(bytes).map_err(|_| bad("too large"))
}

/// `(integer digits, fraction digits, rest)` of a leading decimal number.
fn split_number(s: &str) -> Option<(&str, &str, &str)> {
    let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int, rest) = s.split_at(int_end);
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            r.split_at(end)
        }
        None => ("", rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    Some((int, frac, rest))
}

/// `int.frac * per`, rounded down, or None on overflow.
fn scaled(int: &str, frac: &str, per: u128) -> Option<u128> {
    let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut total = whole.checked_mul(per)?;
    if !frac.is_empty() {
        // Only the digits that can matter; 18 decimal places is plenty.
        let frac = &frac[..frac.len().min(18)];
        let num: u128 = frac.parse().ok()?;
        total = total.checked_add(num * per / 10u128.pow(frac.len() as u32))?;
    }
    Some(total)
}

/// Standard signal names without the `SIG` prefix. `IO` and `POLL` are the
/// same signal; `IO` is the name printed.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The highest signal number accepted.
const MAX_SIGNAL: i32 = 64;

/// Parse a signal: `"SIGTERM"`, `"TERM"`, `"term"`, `"SIGRTMIN+3"`,
/// `"RTMAX-1"`, or a number from 1 to 64.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let s = text.trim();
    let hint = "use a name like \"SIGTERM\" or \"TERM\", \"SIGRTMIN+N\", or a number from 1 to 64";
    if s.is_empty() {
        return Err(format!("empty signal; {hint}"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<i32>() {
            Ok(n) if (1..=MAX_SIGNAL).contains(&n) => Ok(n),
            _ => Err(format!("invalid signal number {s}; {hint}")),
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(n, _)| *n == name) {
        return Ok(n);
    }
    let realtime = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        let offset: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().ok()?
        };
        let n = base + sign * offset;
        (libc::SIGRTMIN()..=libc::SIGRTMAX())
            .contains(&n)
            .then_some(n)
    };
    let rt = if let Some(rest) = name.strip_prefix("RTMIN") {
        rest.strip_prefix('+')
            .or(rest.is_empty().then_some(""))
            .and_then(|r| realtime(libc::SIGRTMIN(), r, 1))
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rest.strip_prefix('-')
            .or(rest.is_empty().then_some(""))
            .and_then(|r| realtime(libc::SIGRTMAX(), r, -1))
    } else {
        None
    };
    rt.ok_or_else(|| format!("unknown signal \"{text}\"; {hint}"))
}

/// The conventional name of a signal number: `SIGTERM`, `SIGRTMIN+2`, or
/// the number itself when it has no name.
pub fn signal_name(signal: i32) -> String {
    if let Some((name, _)) = SIGNALS.iter().find(|(_, n)| *n == signal) {
        return format!("SIG{name}");
    }
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if signal == min {
        "SIGRTMIN".to_string()
    } else if signal > min && signal <= max {
        format!("SIGRTMIN+{}", signal - min)
    } else {
        signal.to_string()
    }
}

/// Shell operators that mean nothing without a shell; an unquoted one in a
/// command string is almost certainly a mistake.
const SHELL_OPERATORS: &[&str] = &["|", "||", "&", "&&", ";", "<", ">", ">>", "2>", "2>&1"];

/// Split a command string into argv the way a POSIX shell splits words,
/// without running a shell: no variables, globs, pipes or redirections.
///
/// Whitespace separates words; `'...'` is literal; inside `"..."` a
/// backslash escapes `"`, `\`, `$` and `` ` `` (and is kept before anything
/// else); outside quotes a backslash escapes the next character. An
/// unterminated quote, a trailing backslash, or an unquoted shell operator
/// (`|`, `&&`, `>` ...) is an error.
pub fn split_command(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word exists once anything (even `''`) was seen; `bare` while it has
    // no quotes or escapes.
    let mut in_word = false;
    let mut bare = true;
    let mut chars = text.chars();
    let finish =
        |word: &mut String, in_word: &mut bool, bare: &mut bool, words: &mut Vec<String>| {
            if *in_word {
                if *bare && SHELL_OPERATORS.contains(&word.as_str()) {
                    return Err(format!(
                        "\"{word}\" is passed literally: a command string runs without a shell; \
                     to use a shell, write [\"/bin/sh\", \"-c\", \"...\"]"
                    ));
                }
                words.push(std::mem::take(word));
            }
            *in_word = false;
            *bare = true;
            Ok(())
        };
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => finish(&mut word, &mut in_word, &mut bare, &mut words)?,
            '\'' => {
                in_word = true;
                bare = false;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                bare = false;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".to_string()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".to_string()),
                    }
                }
            }
            '\\' => match chars.next() {
                // A backslash-newline joins lines.
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    bare = false;
                    word.push(c);
                }
                None => return Err("trailing backslash escapes nothing".to_string()),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    finish(&mut word, &mut in_word, &mut bare, &mut words)?;
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("1m"), Ok(ms(60_000)));
        assert_eq!(parse_duration("2h"), Ok(ms(7_200_000)));
        assert_eq!(parse_duration("1d"), Ok(ms(86_400_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1h 30m"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("0.25h"), Ok(ms(900_000)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("15"), Ok(ms(15_000)));
        assert_eq!(parse_duration(" 7s "), Ok(ms(7_000)));
    }

    #[test]
    fn bad_durations_name_the_value_and_the_fix() {
        for bad in [
            "",
            "s",
            "10x",
            "1m30",
            "ten",
            "-1s",
            "1.s5",
            "99999999999999999999999h",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("ms, s, m, h or d"), "{bad}: {err}");
        }
        assert!(parse_duration("10x")
            .unwrap_err()
            .contains("unknown unit \"x\""));
        assert!(parse_duration("1m30")
            .unwrap_err()
            .contains("missing unit after 30"));
    }

    #[test]
    fn sizes_are_powers_of_1024() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("512k"), Ok(512 * 1024));
        assert_eq!(parse_size("512K"), Ok(512 * 1024));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64MB"), Ok(64 << 20));
        assert_eq!(parse_size("64 mb"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn bad_sizes() {
        for bad in ["", "M", "10X", "ten", "-5", "1P", "99999999999T"] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.contains("powers of 1024"), "{bad}: {err}");
        }
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("SIGTERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("term"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("SigHup"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("9"), Ok(libc::SIGKILL));
        assert_eq!(parse_signal("64"), Ok(64));
        assert_eq!(parse_signal("POLL"), Ok(libc::SIGIO));
        assert_eq!(parse_signal("SIGRTMIN"), Ok(libc::SIGRTMIN()));
        assert_eq!(parse_signal("SIGRTMIN+2"), Ok(libc::SIGRTMIN() + 2));
        assert_eq!(parse_signal("rtmax-1"), Ok(libc::SIGRTMAX() - 1));
        for (name, n) in SIGNALS {
            assert_eq!(parse_signal(name), Ok(*n));
        }
    }

    #[test]
    fn bad_signals() {
        for bad in [
            "", "0", "65", "-1", "SIGFOO", "RTMIN+99", "RTMIN-1", "TERM2",
        ] {
            let err = parse_signal(bad).unwrap_err();
            assert!(err.contains("from 1 to 64"), "{bad}: {err}");
        }
    }

    #[test]
    fn signal_names_round_trip() {
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGIO), "SIGIO");
        assert_eq!(signal_name(libc::SIGRTMIN()), "SIGRTMIN");
        assert_eq!(signal_name(libc::SIGRTMIN() + 3), "SIGRTMIN+3");
        assert_eq!(signal_name(0), "0");
        for n in 1..=libc::SIGRTMAX() {
            let name = signal_name(n);
            if name.parse::<i32>().is_err() {
                assert_eq!(parse_signal(&name), Ok(n), "{name}");
            }
        }
    }

    fn split(s: &str) -> Vec<String> {
        split_command(s).unwrap()
    }

    #[test]
    fn shell_split() {
        assert_eq!(split("sleep 10"), ["sleep", "10"]);
        assert_eq!(split("  a \t b\n c  "), ["a", "b", "c"]);
        assert_eq!(split("echo 'a  b' \"c d\""), ["echo", "a  b", "c d"]);
        assert_eq!(split("echo 'it''s'"), ["echo", "its"]);
        assert_eq!(split(r#"echo 'a\nb $x'"#), ["echo", r"a\nb $x"]);
        assert_eq!(
            split(r#"echo "q\" b\\ d\$ t\` n\n""#),
            ["echo", r#"q" b\ d$ t` n\n"#]
        );
        assert_eq!(split(r"a\ b c\'d"), ["a b", "c'd"]);
        assert_eq!(split("x '' \"\""), ["x", "", ""]);
        assert_eq!(split("a\\\nb"), ["ab"]);
        assert_eq!(split("pre'fix'\"ed\""), ["prefixed"]);
        assert_eq!(split("sh -c 'a | b > c'"), ["sh", "-c", "a | b > c"]);
        assert_eq!(
            split(r"find . -exec rm {} \;"),
            ["find", ".", "-exec", "rm", "{}", ";"]
        );
        assert!(split("").is_empty());
        assert!(split("   ").is_empty());
    }

    #[test]
    fn shell_split_errors() {
        assert_eq!(
            split_command("echo 'abc").unwrap_err(),
            "unterminated single quote"
        );
        assert_eq!(
            split_command("echo \"abc").unwrap_err(),
            "unterminated double quote"
        );
        assert_eq!(
            split_command("echo \"abc\\").unwrap_err(),
            "unterminated double quote"
        );
        assert!(split_command("echo \\")
            .unwrap_err()
            .contains("trailing backslash"));
        let err = split_command("ps aux | grep x").unwrap_err();
        assert!(err.contains("\"|\"") && err.contains("/bin/sh"), "{err}");
        assert!(split_command("a && b").is_err());
        assert!(split_command("a > out").is_err());
    }
}
