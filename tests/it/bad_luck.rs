//! "Nothing lost under bad luck" (SPEC §8), each case against the real
//! binary: rotations while the daemon is stopped, a log replaced by a copy
//! of itself, one line stamped minutes ahead, a state directory that fills
//! up, and a live log that is a symbolic link.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support;
use crate::support::daemon::{BIN, POLICY, Project, call_line, http_get};
use crate::support::wait_until;

/// 2026-11-20T12:00:00Z: in the past, at an ordinary hour.
const BASE: i64 = 1_795_176_000_000;

fn iso(ts_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ts_ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A call of a disabled tool (`admin_*` in [`POLICY`]) by `user`: one
/// `disabled_tool` alert per user.
fn disabled_call(ts_ms: i64, user: &str) -> String {
    format!(
        r#"{{"ts":"{}","request_id":"r-{user}","user_id":"{user}","server_name":"ops","tool_name":"admin_purge","outcome":"success"}}"#,
        iso(ts_ms)
    )
}

/// A call of a tool that requires approval (`email_send`).
fn send_call(ts_ms: i64, request: &str) -> String {
    format!(
        r#"{{"ts":"{}","request_id":"{request}","user_id":"u-1","server_name":"gmail","tool_name":"email_send","outcome":"success"}}"#,
        iso(ts_ms)
    )
}

fn approve(ts_ms: i64, request: &str) -> String {
    format!(
        r#"{{"ts":"{}","request_id":"{request}","user_id":"u-1","server_name":"gmail","tool_name":"email_send","decision":"approve","decided_by":"human"}}"#,
        iso(ts_ms)
    )
}

fn project() -> Project {
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), POLICY).unwrap();
    p
}

/// The users of the `disabled_tool` alerts in the alert log, in order.
fn disabled_users(p: &Project) -> Vec<String> {
    p.alerts()
        .iter()
        .filter(|a| a["rule"] == "disabled_tool")
        .map(|a| a["key"]["user_id"].as_str().unwrap().to_string())
        .collect()
}

fn rule_alerts(p: &Project, rule: &str) -> Vec<serde_json::Value> {
    p.alerts()
        .into_iter()
        .filter(|a| a["rule"] == rule)
        .collect()
}

fn assert_ids_unique(p: &Project) {
    let alerts = p.alerts();
    let ids: BTreeSet<&str> = alerts.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), alerts.len(), "an alert id written twice");
}

fn mv(p: &Project, from: &str, to: &str) {
    std::fs::rename(p.log(from), p.log(to)).unwrap();
}

#[test]
fn rotations_while_stopped_are_all_read_in_order_and_alerted_once() {
    let p = project();
    // History from before mcpwatch ever ran: for `scan`, not for `run`.
    p.append(
        "tool-usage.log.3",
        &[disabled_call(BASE - 3_600_000, "u-old")],
    );
    p.append("tool-usage.log", &[disabled_call(BASE, "u-a")]);
    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || disabled_users(&p) == ["u-a"]),
        "first segment alerted: {:?}\n{}",
        p.alerts(),
        d.stderr()
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));

    // While stopped: more lines in the followed file, then two rotations,
    // the older generation compressed by another tool.
    p.append("tool-usage.log", &[disabled_call(BASE + 60_000, "u-a2")]);
    mv(&p, "tool-usage.log", "tool-usage.log.1");
    p.append("tool-usage.log", &[disabled_call(BASE + 120_000, "u-b")]);
    mv(&p, "tool-usage.log.1", "tool-usage.log.2");
    mv(&p, "tool-usage.log", "tool-usage.log.1");
    p.append("tool-usage.log", &[disabled_call(BASE + 180_000, "u-c")]);
    let plain = std::fs::read(p.log("tool-usage.log.2")).unwrap();
    std::fs::write(
        p.log("tool-usage.log.2.zst"),
        zstd::encode_all(&plain[..], 3).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(p.log("tool-usage.log.2")).unwrap();

    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || disabled_users(&p).len() >= 4),
        "every segment rotated while stopped is alerted: {:?}\n{}",
        disabled_users(&p),
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(disabled_users(&p), ["u-a", "u-a2", "u-b", "u-c"]);
    assert_ids_unique(&p);

    // A third start reads nothing again.
    let d = p.start(&[]);
    std::thread::sleep(Duration::from_millis(1500));
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(disabled_users(&p), ["u-a", "u-a2", "u-b", "u-c"]);
}

/// The example's lines, copied into the project; returns their count.
fn copy_example(p: &Project) -> u64 {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    std::fs::copy(
        example.join("security-config.json"),
        p.path().join("security-config.json"),
    )
    .unwrap();
    let mut lines = 0;
    for name in ["tool-usage.log", "approvals.log", "errors.log"] {
        let src = example.join(".elevenlabs/audit").join(name);
        std::fs::copy(&src, p.log(name)).unwrap();
        lines += std::fs::read_to_string(&src).unwrap().lines().count() as u64;
    }
    lines
}

fn events_read(d: &support::daemon::Daemon) -> u64 {
    let (_, body) = d.get("/metrics");
    ["tool-usage.log", "approvals.log", "errors.log"]
        .iter()
        .zip(["tool_call", "approval", "error"])
        .map(|(f, k)| {
            support::daemon::metric_in(
                &body,
                &format!("mcpwatch_events_total{{file=\"{f}\",kind=\"{k}\"}}"),
            )
        })
        .sum::<f64>() as u64
}

/// What `sed -i`, editors and rsync do: a copy with a new inode put in
/// the log's place.
fn replace_by_copy(p: &Project, name: &str) {
    let tmp = p.audit().join(format!(".{name}.tmp"));
    std::fs::copy(p.log(name), &tmp).unwrap();
    std::fs::rename(&tmp, p.log(name)).unwrap();
}

#[test]
fn a_log_replaced_by_a_copy_of_itself_adds_no_alert() {
    let p = Project::new();
    let lines = copy_example(&p);
    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(30), || events_read(&d) >= lines
            && p.alerts().len() == mcpwatch::testkit::planted().len()),
        "the example read: {} of {lines} lines, {} alerts\n{}",
        events_read(&d),
        p.alerts().len(),
        d.stderr()
    );
    for name in ["tool-usage.log", "approvals.log", "errors.log"] {
        replace_by_copy(&p, name);
    }
    // A line written after the copy is read, once, and nothing before it.
    std::thread::sleep(Duration::from_millis(700));
    p.append("tool-usage.log", &[call_line(BASE, "u-late", 1)]);
    assert!(
        wait_until(Duration::from_secs(10), || events_read(&d) > lines),
        "the line after the copy is read\n{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(events_read(&d), lines + 1, "nothing read twice");
    assert_eq!(
        p.alerts().len(),
        mcpwatch::testkit::planted().len(),
        "{:?}",
        p.alerts()
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));

    // The same while stopped.
    for name in ["tool-usage.log", "approvals.log", "errors.log"] {
        replace_by_copy(&p, name);
    }
    p.append("tool-usage.log", &[call_line(BASE + 1000, "u-late", 2)]);
    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || events_read(&d) >= 1),
        "the new line is read after the restart\n{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(events_read(&d), 1, "nothing read twice after a restart");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(p.alerts().len(), mcpwatch::testkit::planted().len());
    assert_ids_unique(&p);
}

#[test]
fn a_line_stamped_minutes_ahead_makes_no_approval_late() {
    let p = project();
    let d = p.start(&[]);
    let now = chrono::Utc::now().timestamp_millis();
    let t = now - 2_000;
    // Three approved calls and one that never is, then one line from a
    // host whose clock runs 9 minutes ahead.
    p.append(
        "tool-usage.log",
        &[
            send_call(t, "r-1"),
            send_call(t, "r-2"),
            send_call(t, "r-3"),
            send_call(t, "r-4"),
            call_line(now + 9 * 60_000, "u-ahead", 9),
        ],
    );
    d.wait_metric(
        "mcpwatch_events_total{file=\"tool-usage.log\",kind=\"tool_call\"}",
        5.0,
        10,
    );
    // The approvals (stamped before the calls) are written 1.5 s later.
    std::thread::sleep(Duration::from_millis(1500));
    p.append(
        "approvals.log",
        &[
            approve(t - 1_000, "r-1"),
            approve(t - 1_000, "r-2"),
            approve(t - 1_000, "r-3"),
        ],
    );
    // The unapproved call is judged once grace (5 s) has passed on the
    // wall clock since it was read.
    assert!(
        wait_until(Duration::from_secs(20), || !rule_alerts(
            &p,
            "approval_bypass"
        )
        .is_empty()),
        "the call without approval is still judged\n{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(1000));
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let bypass: Vec<String> = rule_alerts(&p, "approval_bypass")
        .iter()
        .map(|a| a["key"]["request_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bypass, ["r-4"], "approved calls judged too early");
}

/// A small tmpfs mounted over the state directory, unmounted on drop.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk {
            path: path.to_path_buf(),
        })
    }

    /// Fills the filesystem to the last byte; returns the filler's path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        for _ in 0..4096 {
            if f.write_all(&[0]).is_err() {
                break;
            }
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn a_full_state_disk_loses_no_alert_and_says_503_meanwhile() {
    use crate::support::delivery::{Receiver, Script, route_toml, webhook_toml};
    let rx = Receiver::start(None, Script::default());
    let mut settings = webhook_toml("siem", &rx.url(), None, "5s");
    settings += &route_toml(&["siem"], "100ms");
    let p = project();
    std::fs::write(p.path().join("mcpwatch.toml"), settings).unwrap();
    let Some(disk) = SmallDisk::mount(&p.state(), "2m") else {
        panic!("this test mounts a small tmpfs (run it as root, as CI does)");
    };
    p.append("tool-usage.log", &[disabled_call(BASE, "u-0")]);
    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || !rx.accepted().is_empty()),
        "the first alert is delivered\n{}",
        d.stderr()
    );
    let filler = disk.fill();
    let users: Vec<String> = (1..=30).map(|i| format!("u-{i}")).collect();
    for (i, u) in users.iter().enumerate() {
        p.append(
            "tool-usage.log",
            &[disabled_call(BASE + (i as i64 + 1) * 1000, u)],
        );
    }
    let addr = d.addr.clone().unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || http_get(&addr, "/healthz").0
            == 503),
        "/healthz says 503 while the state directory is full: {:?}\n{}",
        http_get(&addr, "/healthz"),
        d.stderr()
    );
    assert!(http_get(&addr, "/healthz").1.contains("unwritable"));
    // Meanwhile nothing reaches the alert log that is not in the outbox:
    // what is delivered after space returns is exactly the alert log.
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::remove_file(&filler).unwrap();
    let delivered = || -> BTreeSet<String> {
        rx.accepted()
            .iter()
            .flat_map(|h| h.ids())
            .collect::<BTreeSet<_>>()
    };
    assert!(
        wait_until(Duration::from_secs(30), || disabled_users(&p).len() == 31
            && delivered().len() == p.alerts().len()),
        "every alert delivered once space returned: {} delivered, {} in the log\n{}",
        delivered().len(),
        p.alerts().len(),
        d.stderr()
    );
    let logged: BTreeSet<String> = p
        .alerts()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(delivered(), logged);
    assert_ids_unique(&p);
    assert!(wait_until(Duration::from_secs(10), || http_get(
        &addr, "/healthz"
    )
    .0 == 200));
    let leftovers: Vec<String> = std::fs::read_dir(p.state())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    drop(disk);
}

#[test]
fn scan_and_report_read_a_symlinked_live_log() {
    let p = project();
    let elsewhere = p.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(
        elsewhere.join("calls.jsonl"),
        format!(
            "{}\n{}\n",
            disabled_call(BASE, "u-1"),
            call_line(BASE, "u-2", 2)
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink(elsewhere.join("calls.jsonl"), p.log("tool-usage.log")).unwrap();

    let scan = Command::new(BIN)
        .current_dir(p.path())
        .args(["scan", ".elevenlabs/audit", "--format", "ndjson"])
        .output()
        .unwrap();
    assert!(scan.status.success());
    let out = String::from_utf8(scan.stdout).unwrap();
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("\"disabled_tool\""))
            .count(),
        1,
        "{out}"
    );

    let report = Command::new(BIN)
        .current_dir(p.path())
        .args(["report", "--dir", ".elevenlabs/audit", "--format", "json"])
        .output()
        .unwrap();
    assert!(report.status.success());
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let text = json.to_string();
    assert!(
        text.contains("\"log_files\":1"),
        "the symlinked log is read: {text}"
    );
    assert!(
        text.contains("admin_purge"),
        "the report shows the calls: {text}"
    );
}

#[test]
fn a_missing_audit_directory_is_said_once_and_healthz_is_503_until_it_exists() {
    let p = project();
    std::fs::remove_dir_all(p.audit()).unwrap();
    let d = p.start(&["--rotate-every", "100ms"]);
    let addr = d.addr.clone().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || http_get(&addr, "/healthz").0
            == 503),
        "{:?}",
        http_get(&addr, "/healthz")
    );
    assert!(
        http_get(&addr, "/healthz")
            .1
            .contains("\"audit_dir\":\"missing\"")
    );
    std::thread::sleep(Duration::from_millis(1000));
    let log = d.stderr();
    assert_eq!(
        log.matches("does not exist").count(),
        1,
        "said once, not every pass: {log}"
    );
    assert!(!log.contains("rotation pass failed"), "{log}");
    std::fs::create_dir_all(p.audit()).unwrap();
    p.append("tool-usage.log", &[disabled_call(BASE, "u-1")]);
    assert!(
        wait_until(Duration::from_secs(10), || http_get(&addr, "/healthz").0
            == 200),
        "{:?}",
        http_get(&addr, "/healthz")
    );
    assert!(wait_until(Duration::from_secs(10), || disabled_users(&p) == ["u-1"]));
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn a_fifo_under_a_log_name_is_reported_and_healthz_is_503() {
    let p = project();
    let ok = Command::new("mkfifo")
        .arg(p.log("errors.log"))
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    let d = p.start(&[]);
    let addr = d.addr.clone().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || http_get(&addr, "/healthz").0
            == 503),
        "{:?}",
        http_get(&addr, "/healthz")
    );
    let (_, body) = http_get(&addr, "/healthz");
    assert!(body.contains("not a regular file: errors.log"), "{body}");
    std::fs::remove_file(p.log("errors.log")).unwrap();
    assert!(wait_until(Duration::from_secs(10), || http_get(
        &addr, "/healthz"
    )
    .0 == 200));
    assert_eq!(d.stderr().matches("not a regular file (a FIFO").count(), 1);
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn a_pending_alert_of_a_channel_no_longer_configured_goes_to_the_dead_letters() {
    use crate::support::delivery::{RefusingPort, route_toml, webhook_toml};
    let down = RefusingPort::new();
    let p = project();
    let url = format!("http://{}/hook", down.addr);
    let mut settings = webhook_toml("old-siem", &url, None, "2s");
    settings += &route_toml(&["old-siem"], "100ms");
    std::fs::write(p.path().join("mcpwatch.toml"), &settings).unwrap();
    p.append("tool-usage.log", &[disabled_call(BASE, "u-1")]);
    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || d
            .metric("mcpwatch_outbox_pending")
            >= 1.0),
        "the alert waits for the channel that is down\n{}",
        d.stderr()
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));

    // The operator renames the channel: nothing would ever send the old one.
    std::fs::write(
        p.path().join("mcpwatch.toml"),
        settings.replace("old-siem", "new-siem"),
    )
    .unwrap();
    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || d
            .metric("mcpwatch_outbox_pending")
            == 0.0),
        "{}",
        d.stderr()
    );
    let dead = std::fs::read_to_string(p.state().join("dead-letter.ndjson")).unwrap();
    assert!(dead.contains("\"reason\":\"channel_removed\""), "{dead}");
    assert!(dead.contains("\"channel\":\"old-siem\""), "{dead}");
    assert!(
        dead.contains("u-1"),
        "the alert itself is in the dead letter: {dead}"
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}
