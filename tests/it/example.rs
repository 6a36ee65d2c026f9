//! `scan` over the bundled example (`fixtures/example/`) prints the planted
//! anomalies of `fixtures/example/PLANTED.md` and nothing else, with the
//! ids, keys, firing lines and values the generator planted.

use assert_cmd::Command;
use mcpwatch::alert::Alert;
use std::path::Path;

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
    assert!(err.contains("4290 events"), "{err}");
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
    // Nothing critical after 14:00 (disabled_tool at 11:47 and
    // tool_definition_drift at 13:30 are the critical ones).
    Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(root)
        .args([
            "scan",
            "--since",
            "2026-11-23T14:00:00Z",
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
    let planted = mcpwatch::testkit::planted().len();
    assert_eq!(v.len(), planted);
    let table = Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(root)
        .args(["scan", "--format", "table"])
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert_eq!(text.lines().count(), planted + 1);
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
    assert_eq!(a.len(), mcpwatch::testkit::planted().len());
    // Same ids (the id hashes the line, not the file name); evidence names
    // the archive.
    let ids = |v: &[Alert]| v.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    assert!(b[0].evidence[0].file.ends_with(".zst"));
}

#[test]
fn scan_and_report_read_more_archives_than_the_soft_open_files_limit() {
    // 300 daily archives (a year of one log) with the soft limit at 64: the
    // merge holds every file open, so the binary lifts the soft limit to the
    // hard one rather than fail with "Too many open files".
    let d = tempfile::tempdir().unwrap();
    for day in 0..300i64 {
        let t = 1_767_225_600_000 + day * 86_400_000; // 2026-01-01 + day
        let mut text = String::new();
        for i in 0..3 {
            let ts = chrono::DateTime::from_timestamp_millis(t + i * 3_600_000 + 12 * 3_600_000)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ");
            text.push_str(&format!(
                "{{\"ts\":\"{ts}\",\"request_id\":\"r-{day}-{i}\",\"user_id\":\"u-1\",\"server_name\":\"s\",\"tool_name\":\"t\",\"outcome\":\"success\"}}\n"
            ));
        }
        let day_name = chrono::DateTime::from_timestamp_millis(t + 86_400_000)
            .unwrap()
            .format("%Y%m%d-000000");
        let z = zstd::encode_all(text.as_bytes(), 3).unwrap();
        std::fs::write(d.path().join(format!("tool-usage.log.{day_name}.zst")), z).unwrap();
    }
    let dir = d.path().to_str().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("mcpwatch");
    let under_limit = |args: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("ulimit -Sn 64 && exec \"$0\" {args}")])
            .arg(&bin)
            .output()
            .unwrap()
    };
    let scan = under_limit(&format!("scan --format json {dir}"));
    let err = String::from_utf8_lossy(&scan.stderr);
    assert!(scan.status.success(), "{err}");
    assert!(err.contains("300 files, 900 events"), "{err}");
    let report = under_limit(&format!(
        "report --dir {dir} --since 2026-01-01T00:00:00Z --format json"
    ));
    let err = String::from_utf8_lossy(&report.stderr);
    assert!(report.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(v["totals"]["tool_calls"], 900, "{v}");
}

#[test]
fn scan_reads_a_named_pipe_through() {
    // A pipe cannot be set aside and sought back: it is read in one go.
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("tool-usage.log");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/example/.elevenlabs/audit/tool-usage.log"
    );
    let data = std::fs::read(src).unwrap();
    let lines = data.iter().filter(|&&b| b == b'\n').count();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, data).unwrap())
    };
    let out = Command::cargo_bin("mcpwatch")
        .unwrap()
        .args(["scan", fifo.to_str().unwrap()])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    writer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("tool_call {lines}")),
        "{lines} lines: {err}"
    );
}

/// The example runs offline and quietly: no channel, no escalation target
/// on the network, no warning on a first `check`.
#[test]
fn the_example_needs_no_network_and_warns_of_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    let out = Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(&root)
        .arg("check")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "no warning on the example");
    assert!(
        stdout.contains("critical alerts go to: no channel (only alerts.log;"),
        "{stdout}"
    );
    let cfg = std::fs::read_to_string(root.join("security-config.json")).unwrap();
    assert!(!cfg.contains("http") && !cfg.contains('@'), "{cfg}");
}
