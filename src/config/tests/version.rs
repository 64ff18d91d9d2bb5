//! `version = 1`: optional, and when present the one this sentinel reads.

use super::*;

const SERVICE: &str = "[services.a]\ncommand = [\"x\"]\n";

#[test]
fn absent_or_one_reads_as_version_one() {
    assert_eq!(toml_ok(SERVICE).version, 1);
    assert_eq!(CONFIG_VERSION, 1);
    let with = toml_ok(&format!("version = 1\n{SERVICE}"));
    assert_eq!(with.version, 1);
    // The key changes nothing else.
    assert_eq!(with, toml_ok(SERVICE));
}

#[test]
fn a_newer_version_is_refused_with_what_to_do() {
    let p = one_problem(
        &format!("version = 2\n{SERVICE}"),
        "version",
        "this sentinel reads config version 1; this file is written for version 2",
    );
    assert_eq!((p.line, p.column), (Some(1), Some(11)));
    assert!(p.message.contains("upgrade sentinel"), "{}", p.message);
}

#[test]
fn no_such_version() {
    for n in ["0", "-3"] {
        let p = one_problem(
            &format!("version = {n}\n{SERVICE}"),
            "version",
            "this sentinel reads config version 1; there is no version",
        );
        assert!(p.message.contains("version = 1"), "{}", p.message);
    }
}

#[test]
fn the_version_is_a_number() {
    for v in ["\"1\"", "1.0", "true"] {
        one_problem(
            &format!("version = {v}\n{SERVICE}"),
            "version",
            "expected the config format version as a whole number: version = 1",
        );
    }
}

#[test]
fn a_wrong_version_does_not_hide_other_problems() {
    let p = toml_err("version = 7\n[services.a]\ncomand = [\"x\"]\n");
    assert_eq!(
        where_(&p),
        [("version", Some(1)), ("services.a.comand", Some(3))],
        "{p:#?}"
    );
}

#[cfg(feature = "yaml")]
#[test]
fn yaml_too() {
    let c = from_str(
        "version: 1\nservices:\n  a:\n    command: [x]\n",
        true,
        Path::new("/"),
    )
    .unwrap();
    assert_eq!(c.version, 1);
    let p = from_str(
        "version: 3\nservices:\n  a:\n    command: [x]\n",
        true,
        Path::new("/"),
    )
    .unwrap_err();
    assert_eq!(where_(&p), [("version", Some(1))], "{p:#?}");
    assert!(
        p[0].message.contains("reads config version 1"),
        "{}",
        p[0].message
    );
}
