//! Regression tests for the smaller items of issue #23 ("Nothing lost under
//! bad luck"), each run against the real binary:
//!
//! - log text reaches a terminal or spreadsheet escaped (SPEC §8): `scan
//!   --format table`, the text report and CSV cells show ESC, BEL and bidi
//!   overrides as visible escapes;

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
