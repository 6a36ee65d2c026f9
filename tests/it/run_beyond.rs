//! `run` stopped and restarted mid-input gives the alerts `scan` gives, for
//! the rules beyond fixed thresholds: their state (an exfiltration's
//! source call, a tool's learned hash, a user's hourly baseline) goes
//! through the checkpoint.

use std::time::{Duration, Instant};

use crate::support;
use crate::support::daemon::{Daemon, Project};

const LOGS: [(&str, &str); 3] = [
    ("tool-usage.log", "tool_call"),
    ("approvals.log", "approval"),
    ("errors.log", "error"),
];

/// The example's lines of each log, split at the first line whose ts is
/// at or after `cut` (the example's lines are in ts order per file).
fn example_split(cut: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    let cut = chrono::DateTime::parse_from_rfc3339(cut).unwrap();
    LOGS.iter()
        .map(|(name, _)| {
            let text = std::fs::read_to_string(dir.join(".elevenlabs/audit").join(name)).unwrap();
            let lines: Vec<String> = text.lines().map(String::from).collect();
            let at = lines
                .iter()
                .position(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    let ts = ["ts", "timestamp", "@timestamp"]
                        .iter()
                        .find_map(|k| v.get(*k))
                        .unwrap();
                    let ms = match ts {
                        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                            .unwrap()
                            .timestamp_millis(),
                        n => n.as_i64().unwrap(),
                    };
                    ms >= cut.timestamp_millis()
                })
                .unwrap_or(lines.len());
            (lines[..at].to_vec(), lines[at..].to_vec())
        })
        .collect()
}

fn events_read(d: &Daemon) -> u64 {
    let (_, body) = d.get("/metrics");
    LOGS.iter()
        .map(|(f, k)| {
            support::daemon::metric_in(
                &body,
                &format!("mcpwatch_events_total{{file=\"{f}\",kind=\"{k}\"}}"),
            )
        })
        .sum::<f64>() as u64
}

/// Waits until this lifetime of the daemon has read `n` events, then
/// stops it cleanly.
fn read_then_stop(d: Daemon, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while events_read(&d) < n {
        assert!(Instant::now() < deadline, "not read: {}", d.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

/// Cut at 12:12: after the planted exfiltration's source call (12:10) and
/// before its send (12:14:30), after the drifting tool's first hash
/// (09:00) and before its new one (13:30), in the middle of the service
/// account's history and before its spike (15:00).
#[test]
fn run_restarted_mid_input_gives_the_beyond_threshold_alerts_of_scan() {
    let p = Project::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    std::fs::copy(
        example.join("security-config.json"),
        p.path().join("security-config.json"),
    )
    .unwrap();
    let parts = example_split("2026-11-23T12:12:00Z");
    let mut first = 0;
    for ((name, _), (before, _)) in LOGS.iter().zip(&parts) {
        p.append(name, before);
        first += before.len() as u64;
    }
    read_then_stop(p.start(&[]), first);
    let mut rest = 0;
    for ((name, _), (_, after)) in LOGS.iter().zip(&parts) {
        p.append(name, after);
        rest += after.len() as u64;
    }
    read_then_stop(p.start(&[]), rest);

    let scan = std::process::Command::new(support::daemon::BIN)
        .current_dir(p.path())
        .args(["scan", ".elevenlabs/audit", "--format", "ndjson"])
        .output()
        .unwrap();
    assert!(scan.status.success());
    let from_run = std::fs::read_to_string(p.log("alerts.log")).unwrap();
    assert_eq!(from_run, String::from_utf8(scan.stdout).unwrap());
    let rules: Vec<String> = p
        .alerts()
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_string())
        .collect();
    for rule in [
        "exfil_sequence",
        "tool_definition_drift",
        "usage_baseline_spike",
    ] {
        assert_eq!(
            rules.iter().filter(|r| *r == rule).count(),
            1,
            "{rule}: {rules:?}"
        );
    }
}
