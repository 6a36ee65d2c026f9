//! `mcpwatch run` end to end: the real binary tailing real files in a
//! temporary project, with restarts, `kill -9`, hostile input and the
//! metrics endpoint.

use std::collections::HashSet;
use std::time::Duration;

use crate::support;
use crate::support::daemon::{POLICY, Project, call_line};

/// 2026-11-20T12:00:00Z: safely in the past, at an ordinary hour.
const BASE: i64 = 1_795_176_000_000;

/// Eleven calls by `user` within 10 s starting at `t`: one rapid alert.
fn burst(user: &str, t: i64, seq: &mut u64) -> Vec<String> {
    (0..11)
        .map(|i| {
            *seq += 1;
            call_line(t + i * 1000, user, *seq)
        })
        .collect()
}

fn project() -> Project {
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), POLICY).unwrap();
    p
}

fn ids(alerts: &[serde_json::Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

fn assert_unique(alerts: &[serde_json::Value]) {
    let ids = ids(alerts);
    let set: HashSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "an alert id appears twice: {ids:?}");
}

const TOOL_EVENTS: &str = r#"mcpwatch_events_total{file="tool-usage.log",kind="tool_call"}"#;

#[test]
fn run_over_a_backlog_gives_exactly_the_alerts_of_scan() {
    backlog_equals_scan(&[]);
}

/// With a read limit far below the files' sizes, the backlog is read in
/// slices; the merge must still place every event exactly where `scan`
/// does (approvals.log runs ahead of tool-usage.log in each slice).
#[test]
fn a_backlog_read_in_slices_still_gives_exactly_the_alerts_of_scan() {
    backlog_equals_scan(&["--read-limit", "16384"]);
}

fn backlog_equals_scan(args: &[&str]) {
    let p = Project::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    std::fs::copy(
        example.join("security-config.json"),
        p.path().join("security-config.json"),
    )
    .unwrap();
    let mut lines = 0u64;
    for name in ["tool-usage.log", "approvals.log", "errors.log"] {
        let src = example.join(".elevenlabs/audit").join(name);
        std::fs::copy(&src, p.log(name)).unwrap();
        lines += std::fs::read_to_string(&src).unwrap().lines().count() as u64;
    }
    let d = p.start(args);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = d.get("/metrics");
        let read: f64 = ["tool-usage.log", "approvals.log", "errors.log"]
            .iter()
            .zip(["tool_call", "approval", "error"])
            .map(|(f, k)| {
                support::daemon::metric_in(
                    &body,
                    &format!("mcpwatch_events_total{{file=\"{f}\",kind=\"{k}\"}}"),
                )
            })
            .sum::<f64>()
            + support::daemon::metric_in(&body, "mcpwatch_lines_rejected_total");
        if read as u64 >= lines {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "backlog not read");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, took) = d.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");

    let scan = std::process::Command::new(support::daemon::BIN)
        .current_dir(p.path())
        .args(["scan", ".elevenlabs/audit", "--format", "ndjson"])
        .output()
        .unwrap();
    assert!(scan.status.success());
    let from_run = std::fs::read_to_string(p.log("alerts.log")).unwrap();
    assert_eq!(from_run, String::from_utf8(scan.stdout).unwrap());
    assert!(!from_run.is_empty());
}

#[test]
fn a_second_run_on_the_same_state_exits_2() {
    let p = project();
    let _d = p.start(&[]);
    let out = std::process::Command::new(support::daemon::BIN)
        .current_dir(p.path())
        .args(["run", "--metrics-addr", "off"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked"), "{err}");
}

#[test]
fn clean_restart_reads_nothing_twice_and_alerts_nothing_twice() {
    let p = project();
    let mut seq = 0;
    p.append("tool-usage.log", &burst("u-1", BASE, &mut seq));
    let d = p.start(&[]);
    d.wait_metric(TOOL_EVENTS, 11.0, 20);
    assert_eq!(d.terminate().0, Some(0));
    assert_eq!(p.alerts().len(), 1);

    p.append("tool-usage.log", &burst("u-2", BASE + 60_000, &mut seq));
    let d = p.start(&[]);
    d.wait_metric(TOOL_EVENTS, 11.0, 20);
    std::thread::sleep(Duration::from_millis(300));
    // This lifetime read only the 11 new lines.
    assert_eq!(d.metric(TOOL_EVENTS), 11.0);
    assert_eq!(d.terminate().0, Some(0));
    let alerts = p.alerts();
    assert_eq!(alerts.len(), 2);
    assert_unique(&alerts);
    assert_eq!(alerts[1]["key"]["user_id"], "u-2");
}

#[test]
fn kill_9_and_restart_lose_no_event_and_write_no_alert_twice() {
    let p = project();
    let mut seq = 0;
    let mut lines = burst("u-1", BASE, &mut seq);
    lines.extend(burst("u-2", BASE + 20_000, &mut seq));
    p.append("tool-usage.log", &lines);
    let d = p.start(&[]);
    d.wait_metric(TOOL_EVENTS, 22.0, 20);
    // Killed before the checkpoint can be trusted to cover everything.
    d.kill9();
    p.append("tool-usage.log", &burst("u-3", BASE + 40_000, &mut seq));
    let d = p.start(&[]);
    d.wait_metric(TOOL_EVENTS, 11.0, 20);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(d.terminate().0, Some(0));
    let alerts = p.alerts();
    assert_unique(&alerts);
    let users: Vec<&str> = alerts
        .iter()
        .map(|a| a["key"]["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["u-1", "u-2", "u-3"]);
}

#[test]
fn files_and_the_directory_may_appear_after_start() {
    let p = project();
    std::fs::remove_dir_all(p.audit()).unwrap();
    let d = p.start(&["--dir", ".elevenlabs/audit"]);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::create_dir_all(p.audit()).unwrap();
    let mut seq = 0;
    p.append("tool-usage.log", &burst("u-late", BASE, &mut seq));
    d.wait_metric(TOOL_EVENTS, 11.0, 20);
    d.wait_metric(
        r#"mcpwatch_alerts_total{rule="rapid_tool_usage",severity="medium"}"#,
        1.0,
        10,
    );
    assert_eq!(d.terminate().0, Some(0));
    assert_eq!(p.alerts().len(), 1);
}

#[test]
fn hostile_input_is_counted_by_reason_and_never_hides_valid_lines() {
    let p = project();
    let mut seq = 0;
    let mut bytes: Vec<u8> = Vec::new();
    let mut good = burst("u-h", BASE, &mut seq).into_iter();
    let mut push_good = |bytes: &mut Vec<u8>, n: usize| {
        for _ in 0..n {
            bytes.extend_from_slice(good.next().unwrap().as_bytes());
            bytes.push(b'\n');
        }
    };
    push_good(&mut bytes, 2);
    // A 5 MiB line.
    bytes.extend(std::iter::repeat_n(b'x', 5 << 20));
    bytes.push(b'\n');
    push_good(&mut bytes, 2);
    bytes.extend_from_slice(b"{\"ts\":\"2026-11-20T12:00:00Z\",\"user_id\":\"a\0b\"\0}\n");
    bytes.extend_from_slice(b"{\"ts\":\"\xff\xfe\",\"user_id\":\"u\"}\n");
    bytes.extend(std::iter::repeat_n(b'[', 100_000));
    bytes.extend(std::iter::repeat_n(b']', 100_000));
    bytes.push(b'\n');
    push_good(&mut bytes, 2);
    bytes.extend_from_slice(b"[{\"ts\":\"2026-11-20T12:00:00Z\"}]\n");
    bytes.extend_from_slice(b"{\"ts\":\"1970-01-01T00:00:00Z\"}\n");
    bytes.extend_from_slice(b"{\"ts\":\"2999-01-01T00:00:00Z\"}\n");
    bytes.extend_from_slice(b"{\"ts\":99999999999999999999999}\n");
    bytes.extend_from_slice(b"\n\n   \n");
    bytes.extend_from_slice(b"{\"user_id\":\"no-ts\"}\n");
    push_good(&mut bytes, 5);
    std::fs::write(p.log("tool-usage.log"), &bytes).unwrap();

    let d = p.start(&[]);
    d.wait_metric(TOOL_EVENTS, 11.0, 30);
    let rejected = |reason: &str| {
        d.metric(&format!(
            "mcpwatch_lines_rejected_total{{file=\"tool-usage.log\",reason=\"{reason}\"}}"
        ))
    };
    assert_eq!(rejected("too_long"), 1.0);
    assert_eq!(rejected("not_utf8"), 1.0);
    // The array line and the 100,000-deep array (a top-level array).
    assert_eq!(rejected("not_object"), 2.0);
    assert_eq!(rejected("empty"), 3.0);
    assert_eq!(rejected("missing_ts"), 1.0);
    // 1970, 2999 and an epoch too large for any clock.
    assert_eq!(rejected("bad_ts"), 3.0);
    // Raw NUL bytes inside a JSON string are not JSON.
    assert_eq!(rejected("not_json"), 1.0);
    d.wait_metric(
        r#"mcpwatch_alerts_total{rule="rapid_tool_usage",severity="medium"}"#,
        1.0,
        10,
    );
    assert_eq!(d.terminate().0, Some(0));
    assert_eq!(p.alerts().len(), 1);
}

#[test]
fn metrics_and_healthz_answer_on_loopback() {
    let p = project();
    let d = p.start(&[]);
    assert!(d.addr.as_deref().unwrap().starts_with("127.0.0.1:"));
    let (code, body) = d.get("/metrics");
    assert_eq!(code, 200);
    for name in [
        "mcpwatch_events_total",
        "mcpwatch_checkpoint_writes_total",
        "mcpwatch_outbox_pending",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
    let (code, body) = d.get("/healthz");
    assert_eq!(code, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(d.terminate().0, Some(0));
}
