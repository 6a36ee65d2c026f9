//! The daemon rotating its own logs while a writer appends 10,000 lines/s:
//! no event lost, none read twice, every planted burst alerted once, and
//! every archive a valid zstd file.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::daemon::{POLICY, Project, call_line};

/// 2026-11-20T12:00:00Z.
const BASE: i64 = 1_795_176_000_000;
const TOOL_EVENTS: &str = r#"mcpwatch_events_total{file="tool-usage.log",kind="tool_call"}"#;

#[test]
fn rotation_under_load_loses_no_event_and_duplicates_none() {
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), POLICY).unwrap();
    std::fs::write(
        p.path().join("mcpwatch.toml"),
        "[rotation]\nmax_size = \"256KiB\"\nrotate_wait = \"1s\"\n",
    )
    .unwrap();
    let d = p.start(&["--rotate-every", "200ms"]);

    // 10,000 lines/s in 10 ms ticks for 4 s; a burst every 500 ms. Steady
    // traffic comes from 2,000 users (well under 10 calls a minute each).
    let mut seq = 0u64;
    let mut bursts = 0;
    let start = Instant::now();
    for tick in 0..400u64 {
        let due = start + Duration::from_millis(tick * 10);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        // Each tick is one second of event time: 3 calls a minute per user.
        let t = BASE + tick as i64 * 1000;
        let mut lines: Vec<String> = (0..100)
            .map(|_| {
                seq += 1;
                call_line(t, &format!("u-{}", seq % 2000), seq)
            })
            .collect();
        if tick % 50 == 25 {
            bursts += 1;
            for _ in 0..11 {
                seq += 1;
                lines.push(call_line(t, &format!("burst-{tick}"), seq));
            }
        }
        p.append("tool-usage.log", &lines);
    }
    d.wait_metric(TOOL_EVENTS, seq as f64, 60);
    // Let the rotator compress what is consumed: every rotated generation
    // becomes an archive once read, `rotate_wait` old, and the writer has
    // moved on (SPEC §6: a file exists again under the log's name). On a
    // loaded machine the last rotation can come after the last write, so
    // the writer moves on as a real one would, with an empty live log.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !uncompressed(&p).is_empty() {
        let live = p.audit().join("tool-usage.log");
        if !live.exists() {
            std::fs::File::create(&live).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        uncompressed(&p).is_empty(),
        "rotated generations left uncompressed: {:?}; the daemon said:\n{}",
        uncompressed(&p),
        d.stderr()
    );
    assert_eq!(
        d.metric(TOOL_EVENTS),
        seq as f64,
        "every line read exactly once"
    );
    assert_eq!(d.terminate().0, Some(0));

    let alerts = p.alerts();
    let ids: HashSet<&str> = alerts.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), alerts.len());
    let burst_alerts = alerts
        .iter()
        .filter(|a| a["rule"] == "rapid_tool_usage")
        .count();
    assert_eq!(burst_alerts, bursts, "each burst alerts once");

    let mut archives = 0;
    for e in std::fs::read_dir(p.audit()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("tool-usage.log.") && name.ends_with(".zst") {
            archives += 1;
            let ok = std::process::Command::new("zstd")
                .arg("-tq")
                .arg(p.audit().join(&name))
                .status()
                .expect("zstd CLI installed (.ci/run installs it)")
                .success();
            assert!(ok, "{name} fails zstd -t");
        }
    }
    assert!(
        archives >= 2,
        "expected several rotations, got {archives}: {:?}",
        std::fs::read_dir(p.audit())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>()
    );
    // Every line written is in the live log or an archive, once.
    let out = std::process::Command::new(support::daemon::BIN)
        .current_dir(p.path())
        .args(["scan", ".elevenlabs/audit"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("tool_call {seq}")),
        "scan over live log + archives: {err}"
    );
}

/// Rotated generations of the tool log not yet compressed.
fn uncompressed(p: &Project) -> Vec<String> {
    std::fs::read_dir(p.audit())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tool-usage.log.") && !n.ends_with(".zst"))
        .collect()
}
