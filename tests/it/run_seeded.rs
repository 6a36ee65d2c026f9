//! `run` and the rules the seed's own settings switch on (SPEC §3): a run
//! stopped and restarted mid-input gives the alerts `scan` gives (their
//! state is in the checkpoint), and `audit_silence` fires live by the wall
//! clock, with the read time kept across a restart, under the id `scan`
//! finds once a later line passes the silence.

use std::path::Path;
use std::time::Duration;

use mcpwatch::event::Kind;
use mcpwatch::ingest::parse::Parser;

use crate::support::daemon::{Daemon, Project, call_line, metric_in};
use crate::support::wait_until;

const LOGS: [(&str, Kind, &str); 3] = [
    ("tool-usage.log", Kind::ToolCall, "tool_call"),
    ("approvals.log", Kind::Approval, "approval"),
    ("errors.log", Kind::Error, "error"),
];

fn events_read(d: &Daemon) -> u64 {
    let (_, body) = d.get("/metrics");
    LOGS.iter()
        .map(|(f, _, k)| {
            metric_in(
                &body,
                &format!("mcpwatch_events_total{{file=\"{f}\",kind=\"{k}\"}}"),
            )
        })
        .sum::<f64>() as u64
}

fn scan(p: &Project) -> String {
    let out = std::process::Command::new(crate::support::daemon::BIN)
        .current_dir(p.path())
        .args(["scan", ".elevenlabs/audit", "--format", "ndjson"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Appends to the project's logs the example's lines with ts in [from, to).
fn append_slice(p: &Project, from: i64, to: i64) -> u64 {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example/.elevenlabs/audit");
    let parser = Parser {
        max_line_bytes: 1 << 20,
        now_ms: i64::MAX / 2,
    };
    let mut n = 0;
    for (name, kind, _) in LOGS {
        let text = std::fs::read_to_string(example.join(name)).unwrap();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| {
                let ts = parser.parse(kind, l.as_bytes()).unwrap().ts;
                ts >= from && ts < to
            })
            .map(str::to_string)
            .collect();
        n += lines.len() as u64;
        p.append(name, &lines);
    }
    n
}

/// 2026-11-23T08:20:00Z and 12:20:00Z: the billing server is silent but
/// not yet past `after` at the first; token tk-5e1d was used once before
/// the second and once after.
const CUTS: [i64; 2] = [1_795_422_000_000, 1_795_436_400_000];

#[test]
fn run_restarted_mid_input_gives_the_alerts_of_scan_for_the_seeded_rules() {
    let p = Project::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    std::fs::copy(
        example.join("security-config.json"),
        p.path().join("security-config.json"),
    )
    .unwrap();
    let bounds = [i64::MIN, CUTS[0], CUTS[1], i64::MAX];
    for w in bounds.windows(2) {
        let lines = append_slice(&p, w[0], w[1]);
        let d = p.start(&[]);
        assert!(
            wait_until(Duration::from_secs(30), || events_read(&d) >= lines),
            "read {} of {lines}\n{}",
            events_read(&d),
            d.stderr()
        );
        let (code, _) = d.terminate();
        assert_eq!(code, Some(0));
    }
    let from_run = std::fs::read_to_string(p.log("alerts.log")).unwrap();
    let from_scan = scan(&p);
    assert_eq!(from_run, from_scan);
    for rule in [
        "rate_limit_exceeded",
        "token_shared",
        "token_rotation_due",
        "token_rotation_overdue",
        "server_silence",
        "audit_silence",
    ] {
        assert!(from_run.contains(&format!("\"rule\":\"{rule}\"")), "{rule}");
    }
}

/// Three calls stamped `t`, `t + 1 s`, `t + 2 s`.
fn three_calls(t: i64) -> Vec<String> {
    (0..3)
        .map(|i| call_line(t + i * 1000, "u-1", i as u64 + 1))
        .collect()
}

/// A project where `audit_silence` fires after `after` with 3 calls.
fn silence_project(after: &str) -> Project {
    let p = Project::new();
    std::fs::write(
        p.path().join("security-config.json"),
        r#"{"approvalMode": "no_approval", "monitoring": {"healthCheckInterval": 60}}"#,
    )
    .unwrap();
    let rules = p.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("audit_silence.toml"),
        format!("after = \"{after}\"\nmin_events = 3\n"),
    )
    .unwrap();
    p
}

fn silences(p: &Project) -> Vec<serde_json::Value> {
    (p.alerts().into_iter())
        .filter(|a| a["rule"] == "audit_silence")
        .collect()
}

#[test]
fn audit_silence_fires_live_by_the_wall_clock_with_the_id_scan_finds_later() {
    let p = silence_project("2s");
    let t = chrono::Utc::now().timestamp_millis() - 60_000;
    p.append("tool-usage.log", &three_calls(t));
    let d = p.start(&[]);
    // Nothing passes the last call + 2 s in event time: only the clock can.
    assert!(
        wait_until(Duration::from_secs(20), || silences(&p).len() == 1),
        "{}",
        d.stderr()
    );
    let live = silences(&p).remove(0);
    assert_eq!(
        live["ts"],
        mcpwatch::alert::format_ts(t + 2000 + 2000).as_str()
    );
    assert_eq!(live["evidence"][0]["line"], 3);
    assert_eq!(live["value"], 3);
    // A later call: scan now finds the silence by event time, same id; run
    // raises it no second time.
    p.append("tool-usage.log", &[call_line(t + 30_000, "u-1", 4)]);
    assert!(wait_until(Duration::from_secs(10), || events_read(&d) >= 4));
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(silences(&p).len(), 1);
    let scanned: Vec<serde_json::Value> = scan(&p)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|a: &serde_json::Value| a["rule"] == "audit_silence")
        .collect();
    assert_eq!(scanned.len(), 1);
    assert_eq!(scanned[0]["id"], live["id"]);
}

#[test]
fn audit_silence_read_time_is_kept_across_a_restart() {
    // Long enough that the first run stops before it fires.
    let p = silence_project("5s");
    let t = chrono::Utc::now().timestamp_millis() - 60_000;
    p.append("tool-usage.log", &three_calls(t));
    let d = p.start(&[]);
    assert!(wait_until(Duration::from_secs(10), || events_read(&d) >= 3));
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    assert!(silences(&p).is_empty(), "stopped before `after` passed");
    // Nothing new is read after the restart: only the kept read time can
    // fire it.
    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || silences(&p).len() == 1),
        "{}",
        d.stderr()
    );
    assert_eq!(events_read(&d), 0);
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(silences(&p)[0]["evidence"][0]["line"], 3);
}
