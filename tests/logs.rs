//! Log capture through the real binary: rotation under a burst.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const LAST: u64 = 6_500_000; // `seq 1 6500000` writes about 50 MB

/// The log files of `name`, oldest first: name.log.N .. name.log.1, name.log.
fn files(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut rotated: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let f = e.file_name().into_string().ok()?;
            let n = f.strip_prefix(&format!("{name}.log."))?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut all: Vec<_> = rotated.into_iter().map(|(_, p)| p).collect();
    all.push(dir.join(format!("{name}.log")));
    all
}

fn numbers(paths: &[std::path::PathBuf]) -> Vec<u64> {
    let mut out = Vec::new();
    for p in paths {
        for l in read(p).lines() {
            out.push(
                l.parse()
                    .unwrap_or_else(|_| panic!("bad line {l:?} in {}", p.display())),
            );
        }
    }
    out
}

#[test]
fn rotation_under_a_50mb_burst_keeps_keep_files_and_loses_no_line() {
    let s = Sentinel::start(
        "burst",
        "",
        &format!(
            r#"
[services.all]
command = ["seq", "1", "{LAST}"]
restart = "never"
log = {{ max_size = "5M", keep = 20 }}
[services.few]
command = ["seq", "1", "{LAST}"]
restart = "never"
log = {{ max_size = "4M", keep = 3 }}
"#
        ),
    );
    let logs = s.dir.path("logs");
    for name in ["all", "few"] {
        s.wait_state(name, "exited", Duration::from_secs(120));
        wait_for(
            &format!("{name}'s last line on disk"),
            Duration::from_secs(120),
            || {
                read(&logs.join(format!("{name}.log")))
                    .ends_with(&format!("{LAST}\n"))
                    .then_some(())
            },
        );
    }
    // keep = 20 is enough for everything: every line, once, in order.
    let all = files(&logs, "all");
    assert!(all.len() > 5, "expected several rotations, got {all:?}");
    let got = numbers(&all);
    assert_eq!(got.len() as u64, LAST);
    assert!(
        got.iter().enumerate().all(|(i, &n)| n == i as u64 + 1),
        "lines lost or out of order"
    );
    for p in &all {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len <= 5 * 1024 * 1024, "{} is {len} bytes", p.display());
    }
    // keep = 3: exactly 3 rotated files plus the current one, holding a
    // contiguous tail that ends with the last line.
    let few = files(&logs, "few");
    assert_eq!(few.len(), 4, "{few:?}");
    assert!(!logs.join("few.log.4").exists());
    let tail = numbers(&few);
    let first = tail[0];
    assert!(first > 1);
    assert!(
        tail.iter().enumerate().all(|(i, &n)| n == first + i as u64),
        "the kept files are not one contiguous run"
    );
    assert_eq!(*tail.last().unwrap(), LAST);
}
