//! Hostile input for the rules the seed's own settings switch on (issue
//! #18): a token id of 1 MiB, a server name with control characters and a
//! bidi override, between ordinary lines — each judged like any other,
//! shown escaped where a person reads it, and nothing around them lost.

use assert_cmd::Command;

/// 2026-11-23T12:00:00Z.
const T0: i64 = 1_795_435_200_000;

fn line(ts: i64, server: &str, agent: &str, token: Option<&str>, n: u64) -> String {
    let ts = mcpwatch::alert::format_ts(ts);
    let token = token.map_or(String::new(), |t| {
        format!(r#","token_id":{}"#, serde_json::to_string(t).unwrap())
    });
    format!(
        r#"{{"ts":"{ts}","request_id":"r-{n}","user_id":"u-{n}","agent_id":"{agent}","server_name":{},"tool_name":"calendar_read","outcome":"success"{token}}}"#,
        serde_json::to_string(server).unwrap()
    )
}

#[test]
fn a_1_mib_token_and_a_server_name_with_control_characters_are_judged_and_shown_escaped() {
    let d = tempfile::tempdir().unwrap();
    let audit = d.path().join("audit");
    std::fs::create_dir_all(&audit).unwrap();
    std::fs::write(
        d.path().join("security-config.json"),
        r#"{"approvalMode": "no_approval", "monitoring": {"healthCheckInterval": 60}}"#,
    )
    .unwrap();
    // Lines up to 2 MiB, so a 1 MiB token id is a valid line.
    std::fs::write(
        d.path().join("mcpwatch.toml"),
        "[input]\nmax_line_bytes = 2097152\n",
    )
    .unwrap();
    let rules = d.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("new_tool_usage.toml"), "enabled = false\n").unwrap();
    std::fs::write(rules.join("audit_silence.toml"), "enabled = false\n").unwrap();
    let hostile = "gm\u{1b}[2J\u{7}ail\u{202e}txt.exe";
    let big = "k".repeat(1 << 20);
    let mut lines = Vec::new();
    let mut n = 0;
    for i in 0..30 {
        n += 1;
        lines.push(line(T0 + i * 60_000, hostile, "ag-1", None, n));
        if i == 10 || i == 20 {
            // The 1 MiB token, used by two agents: token_shared.
            n += 1;
            let agent = if i == 10 { "ag-1" } else { "ag-2" };
            lines.push(line(T0 + i * 60_000 + 1, "drive", agent, Some(&big), n));
        }
    }
    // Past the hostile server's last call + 600 s: server_silence.
    n += 1;
    lines.push(line(T0 + 29 * 60_000 + 600_001, "drive", "ag-3", None, n));
    std::fs::write(audit.join("tool-usage.log"), lines.join("\n") + "\n").unwrap();

    let out = Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(d.path())
        .args(["scan", "audit", "--format", "ndjson"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("33 events"), "nothing lost around them: {err}");
    let alerts: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rules: Vec<&str> = alerts.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["token_shared", "server_silence"]);
    assert_eq!(
        alerts[0]["key"]["token_id"].as_str().unwrap().len(),
        1 << 20
    );
    assert_eq!(alerts[0]["evidence"][0]["line"], 23);
    assert_eq!(alerts[1]["key"]["server_name"], hostile);
    assert_eq!(alerts[1]["evidence"][0]["line"], 32);

    let table = Command::cargo_bin("mcpwatch")
        .unwrap()
        .current_dir(d.path())
        .args(["scan", "audit", "--format", "table"])
        .output()
        .unwrap();
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        !text
            .chars()
            .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{202e}'),
        "raw control characters reach the terminal"
    );
    assert!(
        text.contains(r"gm\u{1b}[2J\u{7}ail\u{202e}txt.exe"),
        "{text}"
    );
}
