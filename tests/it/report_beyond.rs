//! `mcpwatch report`'s figures beside the rules beyond fixed thresholds
//! (docs/report-json.md): each user's hourly calls (mean, sd) next to their
//! busiest hour, and the tools whose `tool_hash` changed, through the real
//! binary in JSON and text.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};

/// A call line; `hash` adds a `tool_hash` under `hash_key`.
fn call(ts: &str, user: &str, tool: &str, hash: Option<(&str, &str)>, n: u32) -> String {
    let mut v = json!({
        "ts": ts, "request_id": format!("r-{n}"), "user_id": user,
        "server_name": "crm", "tool_name": tool, "outcome": "success",
    });
    if let Some((key, h)) = hash {
        v[key] = json!(h);
    }
    v.to_string()
}

/// 2026-11-19 (before the period) and 2026-11-20:
/// - u-1: 3 calls at 10h, none at 11h, 1 at 12h, 2 at 13h (on the 20th);
/// - contact_search: hash h-old on the 19th, h-a at 10:00 on the 20th
///   (a change from the older data), h-b at 12:00 (alias
///   `definition_hash`), h-a again at 13:00;
/// - contact_update: always h-u (no change);
/// - u-2: one call without a hash.
fn project() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let audit = d.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    let lines = [
        call(
            "2026-11-19T09:00:00.000Z",
            "u-1",
            "contact_search",
            Some(("tool_hash", "h-old")),
            1,
        ),
        call(
            "2026-11-19T09:01:00.000Z",
            "u-1",
            "contact_update",
            Some(("tool_hash", "h-u")),
            2,
        ),
        call(
            "2026-11-20T10:00:00.000Z",
            "u-1",
            "contact_search",
            Some(("tool_hash", "h-a")),
            3,
        ),
        call(
            "2026-11-20T10:10:00.000Z",
            "u-1",
            "contact_search",
            Some(("tool_hash", "h-a")),
            4,
        ),
        call(
            "2026-11-20T10:20:00.000Z",
            "u-1",
            "contact_update",
            Some(("schema_hash", "h-u")),
            5,
        ),
        call("2026-11-20T11:30:00.000Z", "u-2", "contact_search", None, 6),
        call(
            "2026-11-20T12:00:00.000Z",
            "u-1",
            "contact_search",
            Some(("definition_hash", "h-b")),
            7,
        ),
        call(
            "2026-11-20T13:00:00.000Z",
            "u-1",
            "contact_search",
            Some(("tool_hash", "h-a")),
            8,
        ),
        call("2026-11-20T13:30:00.000Z", "u-1", "contact_search", None, 9),
    ];
    std::fs::write(audit.join("tool-usage.log"), lines.join("\n") + "\n").unwrap();
    (d, audit)
}

fn report(audit: &Path, format: &str) -> String {
    let out = Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(audit.parent().unwrap())
        .env("MCPWATCH_NOW", "2026-11-21T12:00:00Z")
        .env_remove("RUST_LOG")
        .args(["report", "--dir"])
        .arg(audit)
        .args(["--period", "daily", "--format", format])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn json_report_shows_each_users_hourly_mean_and_sd_next_to_the_busiest_hour() {
    let (_d, audit) = project();
    let j: Value = serde_json::from_str(&report(&audit, "json")).unwrap();
    let users = j["users"].as_array().unwrap();
    let u1 = &users[0];
    assert_eq!(u1["user"], "u-1");
    // Hours 10..13 of the 20th: 3, 0, 1, 2 calls.
    assert_eq!(
        u1["hourly_calls"],
        json!({"hours": 4, "mean": 1.5, "sd": 1.12})
    );
    assert_eq!(
        u1["busiest_hour"],
        json!({"hour": "2026-11-20T10:00:00.000Z", "calls": 3})
    );
    let u2 = &users[1];
    assert_eq!(
        u2["hourly_calls"],
        json!({"hours": 1, "mean": 1.0, "sd": 0.0})
    );
    assert_eq!(u2["busiest_hour"]["calls"], 1);
    assert_eq!(j["users_other"], Value::Null);
}

#[test]
fn json_report_lists_drifted_tools_with_first_and_last_hash_and_time() {
    let (_d, audit) = project();
    let j: Value = serde_json::from_str(&report(&audit, "json")).unwrap();
    assert_eq!(
        j["drifted_tools"],
        json!({
            "total": 1,
            "listed": [{
                "server": "crm",
                "tool": "contact_search",
                "first_hash": "h-old",
                "first_seen": "2026-11-19T09:00:00.000Z",
                "last_hash": "h-a",
                "last_changed": "2026-11-20T13:00:00.000Z",
                "changes": 3,
                "distinct_hashes": 3,
                "evidence": {"file": "tool-usage.log", "line": 8},
            }],
            "approximate": false,
        })
    );
}

#[test]
fn text_report_shows_the_hourly_figures_and_the_drifted_tools() {
    let (_d, audit) = project();
    let text = report(&audit, "text");
    let header = text
        .lines()
        .find(|l| l.trim_start().starts_with("USER"))
        .unwrap();
    for col in ["MEAN/H", "SD/H", "BUSIEST_HOUR", "BUSIEST_CALLS"] {
        assert!(header.contains(col), "{header}");
    }
    let u1 = text
        .lines()
        .find(|l| l.trim_start().starts_with("u-1 "))
        .unwrap();
    for cell in ["1.50", "1.12", "2026-11-20T10:00:00.000Z"] {
        assert!(u1.contains(cell), "{u1}");
    }
    assert!(
        text.contains("\nDrifted tools (tool_hash changed): 1\n"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("contact_search") && l.contains("h-old"))
        .unwrap_or_else(|| panic!("{text}"));
    for cell in ["h-a", "2026-11-20T13:00:00.000Z", "tool-usage.log:8"] {
        assert!(row.contains(cell), "{row}");
    }
}
