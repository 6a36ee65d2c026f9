//! Golden tests: the real binary's `scan --format ndjson` over each case in
//! `fixtures/golden/<case>/` (run from inside the case directory, so its
//! `security-config.json` and `rules/` are picked up as an operator's would
//! be) must print exactly `expected.ndjson`.
//!
//! `scan` reads and parses on a thread of its own when it has two cores;
//! the cases also run with the binary pinned to one core (`taskset`), so
//! both ways are held to the same output.
//!
//! A case without `expected.ndjson` fails (an empty file is the way to say
//! "no alerts"). To re-bless after an intended change:
//! `MCPWATCH_BLESS=1 cargo test --test it golden::`, then review the diff of
//! every `expected.ndjson` by eye.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

use crate::support;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures/golden exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("audit").is_dir())
        .collect();
    v.sort();
    v
}

/// The binary's scan of `case`; `one_core`: pinned to CPU 0, where `scan`
/// sees one core and runs on one thread.
fn scan(case: &Path, one_core: bool) -> String {
    let bin = assert_cmd::cargo::cargo_bin("mcpwatch");
    let mut cmd = if one_core {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    let out = cmd
        .current_dir(case)
        .args(["scan", "audit", "--format", "ndjson"])
        .output()
        .expect("runs (taskset is util-linux's, on every Debian)");
    assert!(
        out.status.success(),
        "{}: scan failed: {}",
        case.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_golden_case_prints_exactly_its_expected_alerts() {
    let cases = cases();
    assert!(cases.len() >= 7, "golden cases missing");
    let bless = support::blessing();
    let mut failures = Vec::new();
    for case in cases {
        let got = scan(&case, false);
        let expected_path = case.join("expected.ndjson");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = match std::fs::read_to_string(&expected_path) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!(
                    "{}: {e}; every case needs its expected.ndjson \
                     (write it with MCPWATCH_BLESS=1 cargo test --test it golden::, \
                     then review it)",
                    expected_path.display()
                ));
                continue;
            }
        };
        if got != expected {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- got\n{got}",
                case.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_golden_case_prints_the_same_on_one_core() {
    for case in cases() {
        assert_eq!(
            scan(&case, true),
            scan(&case, false),
            "{}: one thread and two differ",
            case.display()
        );
    }
}
