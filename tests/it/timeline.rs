//! `mcpwatch report --format timeline` and `timeline-json` (issue #18): every
//! event and alert of one subject, in ts order, over the live logs and a
//! rotated `.zst` archive, through the real binary, with exact expected
//! output for each subject option; bad subjects and periods exit 2.

use std::path::Path;

use assert_cmd::Command;

const PERIOD: [&str; 4] = [
    "--since",
    "2026-11-19T00:00:00Z",
    "--until",
    "2026-11-21T00:00:00Z",
];

/// The archive was `tool-usage.log` until the rotation at midnight: the
/// `new_tool_usage` alert's evidence still says `tool-usage.log` line 1.
const ARCHIVE: &str = r#"{"ts":"2026-11-19T23:50:00.000Z","request_id":"r-1","user_id":"u-1","server_name":"gmail","tool_name":"email_read","token_id":"tok-A","outcome":"success"}
{"ts":"2026-11-19T23:55:00.000Z","request_id":"r-2","user_id":"u-2","server_name":"calendar","tool_name":"calendar_read","token_id":"tok-B","outcome":"success"}
"#;
const TOOL_USAGE: &str = r#"{"ts":"2026-11-20T09:00:00.000Z","request_id":"r-3","user_id":"u-1","server_name":"gmail","tool_name":"admin_delete","token_id":"tok-A","outcome":"denied"}
{"ts":"2026-11-20T09:01:00.000Z","request_id":"r-4","user_id":"u-2","server_name":"gmail","tool_name":"email_send","token_id":"tok-A","outcome":"success"}
{"ts":"2026-11-20T11:00:00.000Z","request_id":"r-5","user_id":"u-9","server_name":"ev\u001b[31mil\u202e","tool_name":"x_read","outcome":"success"}
"#;
const APPROVALS: &str = r#"{"ts":"2026-11-20T08:59:59.000Z","request_id":"r-3","user_id":"u-1","server_name":"gmail","tool_name":"admin_delete","decision":"denied"}
{"ts":"2026-11-20T09:00:59.000Z","request_id":"r-4","server_name":"gmail","tool_name":"email_send","decision":"approve"}
"#;
const ERRORS: &str = r#"{"ts":"2026-11-20T09:02:00.000Z","request_id":"r-4","server_name":"gmail","error_type":"upstream_timeout","error_message":"timed out after 30s"}
"#;
const ALERTS: &str = r#"{"id":"a1","rule":"disabled_tool","severity":"critical","ts":"2026-11-20T09:00:00.000Z","key":{"server_name":"gmail","tool_name":"admin_delete","user_id":"u-1"},"suppressed":0,"message":"user u-1 called disabled tool admin_delete","evidence":[{"file":"tool-usage.log","line":1,"request_id":"r-3"}]}
{"id":"a2","rule":"new_tool_usage","severity":"low","ts":"2026-11-19T23:50:00.000Z","key":{"server_name":"gmail","tool_name":"email_read"},"suppressed":0,"message":"first call of email_read on gmail","evidence":[{"file":"tool-usage.log","line":1,"request_id":"r-1"}]}
{"id":"a3","rule":"error_spike","severity":"medium","ts":"2026-11-20T10:00:00.000Z","key":{"server_name":"calendar"},"value":6,"threshold":5,"window":"300s","suppressed":0,"message":"6 errors on server calendar in 5m (threshold 5)","evidence":[{"file":"errors.log","line":9}]}
"#;

fn audit() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(
        p.join("tool-usage.log.20261120-000000.zst"),
        zstd::encode_all(ARCHIVE.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    std::fs::write(p.join("tool-usage.log"), TOOL_USAGE).unwrap();
    std::fs::write(p.join("approvals.log"), APPROVALS).unwrap();
    std::fs::write(p.join("errors.log"), ERRORS).unwrap();
    std::fs::write(p.join("alerts.log"), ALERTS).unwrap();
    d
}

fn report(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(dir)
        .env("MCPWATCH_NOW", "2026-11-21T12:00:00Z")
        .arg("report")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn timeline(subject: &[&str]) -> String {
    let d = audit();
    let mut args = vec!["--format", "timeline"];
    args.extend(subject);
    args.extend(PERIOD);
    let (code, out, err) = report(d.path(), &args);
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn timeline_of_a_user_spans_archive_and_live_logs_with_their_alerts() {
    assert_eq!(
        timeline(&["--user", "u-1"]),
        "\
2026-11-19T23:50:00.000Z  tool-usage.log.20261120-000000.zst:1  tool_call  user=u-1  server=gmail  tool=email_read  outcome=success
2026-11-19T23:50:00.000Z  alerts.log:2  alert  user=-  server=gmail  tool=email_read  new_tool_usage low: first call of email_read on gmail
2026-11-20T08:59:59.000Z  approvals.log:1  approval  user=u-1  server=gmail  tool=admin_delete  decision=deny
2026-11-20T09:00:00.000Z  tool-usage.log:1  tool_call  user=u-1  server=gmail  tool=admin_delete  outcome=denied
2026-11-20T09:00:00.000Z  alerts.log:1  alert  user=u-1  server=gmail  tool=admin_delete  disabled_tool critical: user u-1 called disabled tool admin_delete
"
    );
}

#[test]
fn timeline_of_a_token_takes_approvals_and_errors_of_its_requests() {
    assert_eq!(
        timeline(&["--token", "tok-A"]),
        "\
2026-11-19T23:50:00.000Z  tool-usage.log.20261120-000000.zst:1  tool_call  user=u-1  server=gmail  tool=email_read  outcome=success
2026-11-19T23:50:00.000Z  alerts.log:2  alert  user=-  server=gmail  tool=email_read  new_tool_usage low: first call of email_read on gmail
2026-11-20T08:59:59.000Z  approvals.log:1  approval  user=u-1  server=gmail  tool=admin_delete  decision=deny
2026-11-20T09:00:00.000Z  tool-usage.log:1  tool_call  user=u-1  server=gmail  tool=admin_delete  outcome=denied
2026-11-20T09:00:00.000Z  alerts.log:1  alert  user=u-1  server=gmail  tool=admin_delete  disabled_tool critical: user u-1 called disabled tool admin_delete
2026-11-20T09:00:59.000Z  approvals.log:2  approval  user=-  server=gmail  tool=email_send  decision=approve
2026-11-20T09:01:00.000Z  tool-usage.log:2  tool_call  user=u-2  server=gmail  tool=email_send  outcome=success
2026-11-20T09:02:00.000Z  errors.log:1  error  user=-  server=gmail  tool=-  error=upstream_timeout: timed out after 30s
"
    );
}

#[test]
fn timeline_of_a_server_takes_alerts_keyed_by_it() {
    assert_eq!(
        timeline(&["--server", "calendar"]),
        "\
2026-11-19T23:55:00.000Z  tool-usage.log.20261120-000000.zst:2  tool_call  user=u-2  server=calendar  tool=calendar_read  outcome=success
2026-11-20T10:00:00.000Z  alerts.log:3  alert  user=-  server=calendar  tool=-  error_spike medium: 6 errors on server calendar in 5m (threshold 5)
"
    );
}

#[test]
fn timeline_of_a_request_and_its_json_form() {
    assert_eq!(
        timeline(&["--request", "r-4"]),
        "\
2026-11-20T09:00:59.000Z  approvals.log:2  approval  user=-  server=gmail  tool=email_send  decision=approve
2026-11-20T09:01:00.000Z  tool-usage.log:2  tool_call  user=u-2  server=gmail  tool=email_send  outcome=success
2026-11-20T09:02:00.000Z  errors.log:1  error  user=-  server=gmail  tool=-  error=upstream_timeout: timed out after 30s
"
    );
    let d = audit();
    let mut args = vec!["--format", "timeline-json", "--request", "r-4"];
    args.extend(PERIOD);
    let (code, out, err) = report(d.path(), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        r#"{"ts":"2026-11-20T09:00:59.000Z","file":"approvals.log","line":2,"kind":"approval","server_name":"gmail","tool_name":"email_send","request_id":"r-4","decision":"approve"}
{"ts":"2026-11-20T09:01:00.000Z","file":"tool-usage.log","line":2,"kind":"tool_call","user_id":"u-2","server_name":"gmail","tool_name":"email_send","request_id":"r-4","token_id":"tok-A","outcome":"success"}
{"ts":"2026-11-20T09:02:00.000Z","file":"errors.log","line":1,"kind":"error","server_name":"gmail","request_id":"r-4","error":"upstream_timeout: timed out after 30s"}
"#
    );
}

#[test]
fn timeline_json_of_an_alert_names_rule_severity_id_and_message() {
    let d = audit();
    let mut args = vec!["--format", "timeline-json", "--server", "calendar"];
    args.extend(PERIOD);
    let (code, out, err) = report(d.path(), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().nth(1),
        Some(
            r#"{"ts":"2026-11-20T10:00:00.000Z","file":"alerts.log","line":3,"kind":"alert","server_name":"calendar","rule":"error_spike","severity":"medium","alert_id":"a3","message":"6 errors on server calendar in 5m (threshold 5)"}"#
        )
    );
}

#[test]
fn timeline_escapes_control_characters_and_bidi_overrides() {
    assert_eq!(
        timeline(&["--user", "u-9"]),
        "2026-11-20T11:00:00.000Z  tool-usage.log:3  tool_call  user=u-9  server=ev\\u{1b}[31mil\\u{202e}  tool=x_read  outcome=success\n"
    );
}

#[test]
fn timeline_period_excludes_events_outside_it() {
    let d = audit();
    let (code, out, err) = report(
        d.path(),
        &[
            "--format",
            "timeline",
            "--user",
            "u-1",
            "--since",
            "2026-11-20T00:00:00Z",
            "--until",
            "2026-11-20T09:00:00Z",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "2026-11-20T08:59:59.000Z  approvals.log:1  approval  user=u-1  server=gmail  tool=admin_delete  decision=deny\n"
    );
}

#[test]
fn timeline_without_subject_or_with_bad_subject_or_period_exits_2() {
    let d = audit();
    let (code, out, err) = report(d.path(), &["--format", "timeline"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "mcpwatch report: --format timeline needs a subject: --user U, --server S, --token T or --request R\n"
    );
    let (code, _, err) = report(d.path(), &["--format", "timeline", "--user", ""]);
    assert_eq!(code, 2);
    assert_eq!(err, "mcpwatch report: --user: must not be empty\n");
    let (code, _, err) = report(
        d.path(),
        &[
            "--format",
            "timeline",
            "--token",
            "tok-A",
            "--since",
            "yesterday",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("mcpwatch report: --since: "), "{err}");
    let (code, _, err) = report(
        d.path(),
        &[
            "--format",
            "timeline-json",
            "--request",
            "r-4",
            "--since",
            "2026-11-21T00:00:00Z",
            "--until",
            "2026-11-20T00:00:00Z",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is later than --until"), "{err}");
}
