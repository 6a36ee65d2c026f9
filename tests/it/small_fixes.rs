//! Regression tests for the smaller items of issue #23 ("Nothing lost under
//! bad luck"), each run against the real binary:
//!
//! - log text reaches a terminal or spreadsheet escaped (SPEC §8): `scan
//!   --format table`, the text report and CSV cells show ESC, BEL and bidi
//!   overrides as visible escapes;
//! - an SMTP server that echoes the `AUTH PLAIN` blob in its 535 reply does
//!   not get the credentials printed by `test-alert`;
//! - `check` warns about `http://` webhooks to non-loopback hosts;
//! - `--since` later than `--until`, and a duration too large for a time,
//!   are usage errors (exit 2) for `scan` and `report`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use assert_cmd::Command;

/// A tool name that would retitle a terminal (OSC 0 … BEL) and then read
/// right to left (U+202E).
const HOSTILE_TOOL: &str = "invoice\u{1b}]0;pwned\u{7}\u{202e}fdp.exe";
/// How [`HOSTILE_TOOL`] must be shown.
const HOSTILE_SHOWN: &str = "invoice\\u{1b}]0;pwned\\u{7}\\u{202e}fdp.exe";

fn mcpwatch(cwd: &Path) -> Command {
    let mut c = Command::cargo_bin("mcpwatch").unwrap();
    c.current_dir(cwd)
        .env("MCPWATCH_NOW", "2026-11-21T12:00:00Z")
        .env_remove("RUST_LOG");
    c
}

/// A temp dir holding `audit/tool-usage.log` with one call of
/// [`HOSTILE_TOOL`] by a user whose id also carries a bidi override.
fn hostile_audit() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let audit = d.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    let line = serde_json::json!({
        "ts": "2026-11-20T10:00:00Z",
        "user_id": "u\u{2067}-1",
        "server_name": "files",
        "tool_name": HOSTILE_TOOL,
    });
    std::fs::write(audit.join("tool-usage.log"), format!("{line}\n")).unwrap();
    (d, audit)
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn assert_no_raw_controls(what: &str, text: &str) {
    for c in ['\u{1b}', '\u{7}', '\u{202e}', '\u{2067}'] {
        assert!(
            !text.contains(c),
            "{what}: raw U+{:04X} in:\n{text}",
            c as u32
        );
    }
}

#[test]
fn scan_table_shows_controls_and_bidi_overrides_escaped() {
    let (d, audit) = hostile_audit();
    let text = stdout_of(
        mcpwatch(d.path())
            .args(["scan", "--format", "table"])
            .arg(&audit),
    );
    assert_no_raw_controls("scan --format table", &text);
    assert!(text.contains("new_tool_usage"), "{text}");
    assert!(text.contains(HOSTILE_SHOWN), "{text}");
}

#[test]
fn text_report_shows_controls_and_bidi_overrides_escaped() {
    let (d, audit) = hostile_audit();
    let text = stdout_of(mcpwatch(d.path()).arg("report").arg("--dir").arg(&audit));
    assert_no_raw_controls("report", &text);
    assert!(text.contains(HOSTILE_SHOWN), "{text}");
    assert!(text.contains("u\\u{2067}-1"), "{text}");
}

#[test]
fn csv_report_cells_show_controls_and_bidi_overrides_escaped() {
    let (d, audit) = hostile_audit();
    let text = stdout_of(
        mcpwatch(d.path())
            .args(["report", "--format", "csv", "--dir"])
            .arg(&audit),
    );
    assert_no_raw_controls("report --format csv", &text);
    let row = text
        .lines()
        .find(|l| l.starts_with("files,"))
        .unwrap_or_else(|| panic!("no row for server files in:\n{text}"));
    assert!(
        row.starts_with(&format!("files,{HOSTILE_SHOWN},1,")),
        "{row}"
    );
}

/// A one-connection SMTP server on loopback that offers AUTH PLAIN and
/// answers it with a 535 quoting the whole command, blob and all. Returns
/// its port; the thread ends with the connection.
fn echoing_smtp_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        let _ = w.write_all(b"220 fake.example ESMTP\r\n");
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            let cmd = line.trim_end().to_string();
            line.clear();
            let upper = cmd.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") {
                "250-fake.example\r\n250 AUTH PLAIN\r\n".to_string()
            } else if upper.starts_with("AUTH") {
                format!("535 5.7.8 Authentication credentials invalid: {cmd}\r\n")
            } else if upper.starts_with("QUIT") {
                let _ = w.write_all(b"221 bye\r\n");
                return;
            } else {
                "502 5.5.2 not implemented\r\n".to_string()
            };
            if w.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    });
    port
}

#[test]
fn test_alert_redacts_an_auth_plain_blob_the_server_echoes() {
    use base64::Engine as _;
    const USER: &str = "alerts@example.com";
    const PASS: &str = "echo-me-Pa55-9Zq";
    let blob = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASS}"));
    let port = echoing_smtp_server();
    let d = tempfile::tempdir().unwrap();
    let settings = d.path().join("mcpwatch.toml");
    std::fs::write(
        &settings,
        format!(
            r#"
[[channels.email]]
name = "secops"
smtp_host = "127.0.0.1"
smtp_port = {port}
tls = "none"
allow_plaintext = true
username = "{USER}"
password_env = "SMALL_FIXES_SMTP_PASSWORD"
from = "mcpwatch@example.com"
to = ["security@example.com"]
"#
        ),
    )
    .unwrap();
    let out = mcpwatch(d.path())
        .arg("test-alert")
        .arg("--settings")
        .arg(&settings)
        .env("SMALL_FIXES_SMTP_PASSWORD", PASS)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.starts_with("secops: 535"), "{stdout}");
    assert!(stdout.contains("[redacted]"), "{stdout}");
    for secret in [blob.as_str(), blob.trim_end_matches('='), PASS] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} shown:\n{stdout}{stderr}"
        );
    }
}

#[test]
fn check_warns_about_plain_http_webhooks_to_remote_hosts() {
    let d = tempfile::tempdir().unwrap();
    let settings = d.path().join("mcpwatch.toml");
    std::fs::write(
        &settings,
        r#"
[[channels.webhook]]
name = "siem"
url = "http://siem.example.com:8080/hooks/T0KEN-in-path?key=abc"

[[channels.webhook]]
name = "local-relay"
url = "http://127.0.0.1:9000/hook"

[[channels.webhook]]
name = "v6-relay"
url = "http://[::1]:9000/hook"

[[channels.webhook]]
name = "tls"
url = "https://siem.example.com/hooks"
"#,
    )
    .unwrap();
    let config = d.path().join("security-config.json");
    std::fs::write(
        &config,
        r#"{"approvalMode": "always_ask",
"incidentResponse": {"escalationWebhook": "http://pager.example.net/escalate"}}"#,
    )
    .unwrap();
    let out = mcpwatch(d.path())
        .arg("check")
        .arg("--settings")
        .arg(&settings)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "warning: webhook \"siem\": http://siem.example.com:8080/… sends alerts and \
             signatures unencrypted to a non-loopback host; use https://"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "warning: incidentResponse.escalationWebhook: http://pager.example.net/… sends \
             critical alerts unencrypted to a non-loopback host; use https://"
        ),
        "{stderr}"
    );
    // Loopback and https:// are fine; the path (it may hold a token) is never shown.
    for quiet in ["local-relay", "v6-relay", "\"tls\"", "T0KEN", "key=abc"] {
        assert!(!stderr.contains(quiet), "{quiet} in:\n{stderr}");
    }
}

/// `args` after `scan`/`report` exit 2 with every `want` on stderr.
fn usage_error(d: &Path, args: &[&str], want: &[&str]) {
    let out = mcpwatch(d).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    for w in want {
        assert!(stderr.contains(w), "{args:?}: missing {w:?} in {stderr}");
    }
}

#[test]
fn since_later_than_until_is_a_usage_error_naming_both() {
    let (d, audit) = hostile_audit();
    let audit = audit.to_str().unwrap();
    let want = [
        "--since 2026-11-21T00:00:00Z (2026-11-21T00:00:00.000Z) is later than --until 48h (2026-11-19T12:00:00.000Z)",
    ];
    usage_error(
        d.path(),
        &[
            "report",
            "--dir",
            audit,
            "--since",
            "2026-11-21T00:00:00Z",
            "--until",
            "48h",
        ],
        &want,
    );
    usage_error(
        d.path(),
        &[
            "scan",
            audit,
            "--since",
            "2026-11-21T00:00:00Z",
            "--until",
            "2026-11-19T00:00:00Z",
        ],
        &[
            "--since 2026-11-21T00:00:00Z",
            "is later than --until 2026-11-19T00:00:00Z",
        ],
    );
}

#[test]
fn a_duration_too_large_for_a_time_is_a_usage_error_not_unbounded() {
    let (d, audit) = hostile_audit();
    let audit = audit.to_str().unwrap();
    let want = ["--since: duration \"99999999999h\" is too large"];
    usage_error(d.path(), &["scan", audit, "--since", "99999999999h"], &want);
    usage_error(
        d.path(),
        &["report", "--dir", audit, "--since", "99999999999h"],
        &want,
    );
    usage_error(
        d.path(),
        &["report", "--dir", audit, "--until", "99999999999999999d"],
        &["--until: "],
    );
}
