//! `scan` over the bundled example (`fixtures/example/`) prints the planted
//! anomalies of `fixtures/example/PLANTED.md` and nothing else, with the
//! ids, keys, firing lines and values the generator planted.

use assert_cmd::Command;
use mcpwatch::alert::Alert;

#[test]
fn scan_of_the_bundled_example_prints_exactly_the_planted_anomalies() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/example");
    let out = Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(root)
        .args(["scan", "--format", "ndjson"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<Alert> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut planted = mcpwatch::testkit::planted();
    planted.sort_by_key(|p| p.ts);
    assert_eq!(alerts.len(), planted.len(), "{alerts:#?}");
    for (a, p) in alerts.iter().zip(&planted) {
        assert_eq!(a.rule, p.rule);
        assert_eq!(a.key, p.key);
        assert_eq!(a.ts, mcpwatch::alert::format_ts(p.ts));
        assert_eq!(a.evidence[0].file, p.file);
        assert_eq!(a.evidence[0].line, p.line);
        assert_eq!(a.id, p.id, "{}", a.rule);
        assert_eq!(
            a.value.map(|v| v.to_string()),
            p.value.map(str::to_string),
            "{}",
            a.rule
        );
    }
    // The summary names what was read.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4067 events"), "{err}");
}

#[test]
fn scan_fail_on_exits_3_at_or_above_the_severity() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/example");
    for (sev, code) in [("critical", 3), ("high", 3), ("low", 3)] {
        Command::cargo_bin("mcpwatch")
            .unwrap()
            .current_dir(root)
            .args(["scan", "--fail-on", sev])
            .assert()
            .code(code);
    }
    // Only the approval_bypass (high) and disabled_tool (critical) alerts
    // are in this window; nothing critical after 12:00.
    Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(root)
        .args([
            "scan",
            "--since",
            "2026-11-23T12:00:00Z",
            "--fail-on",
            "critical",
        ])
        .assert()
        .code(0);
}

#[test]
fn scan_json_and_table_formats_carry_the_same_alerts() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/example");
    let json = Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(root)
        .args(["scan", "--format", "json"])
        .output()
        .unwrap();
    let v: Vec<Alert> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v.len(), 7);
    let table = Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(root)
        .args(["scan", "--format", "table"])
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert_eq!(text.lines().count(), 8);
    assert!(text.starts_with("TS "));
    for a in &v {
        assert!(text.contains(&a.ts));
    }
}

#[test]
fn scan_reads_zst_archives_like_plain_files() {
    let d = tempfile::tempdir().unwrap();
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/example/.elevenlabs/audit"
    );
    for name in ["tool-usage.log", "approvals.log", "errors.log"] {
        let data = std::fs::read(format!("{src}/{name}")).unwrap();
        let z = zstd::encode_all(&data[..], 3).unwrap();
        std::fs::write(d.path().join(format!("{name}.20261124-000000.zst")), z).unwrap();
    }
    let cfg = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/example/security-config.json"
    );
    let plain = Command::cargo_bin("mcpwatch")
        .unwrap()
        .args(["scan", src, "--config", cfg])
        .output()
        .unwrap();
    let zst = Command::cargo_bin("mcpwatch")
        .unwrap()
        .args(["scan", d.path().to_str().unwrap(), "--config", cfg])
        .output()
        .unwrap();
    let a: Vec<Alert> = String::from_utf8(plain.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let b: Vec<Alert> = String::from_utf8(zst.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(a.len(), 7);
    // Same ids (the id hashes the line, not the file name); evidence names
    // the archive.
    let ids = |v: &[Alert]| v.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    assert!(b[0].evidence[0].file.ends_with(".zst"));
}
