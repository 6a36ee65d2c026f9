//! `mcpwatch run` while the real `logrotate` rotates the log under it, in
//! `copytruncate` and in `create` mode, with a `kill -9` and restart in
//! between: every planted burst alerts exactly once, no alert id appears
//! twice, and the events counters of the process lifetimes account for
//! every line written.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::daemon::{POLICY, Project, call_line};

const BASE: i64 = 1_795_176_000_000;
const TOOL_EVENTS: &str = r#"mcpwatch_events_total{file="tool-usage.log",kind="tool_call"}"#;
const CHECKPOINTS: &str = "mcpwatch_checkpoint_writes_total";

fn logrotate() -> &'static str {
    for p in [
        "/usr/sbin/logrotate",
        "/usr/bin/logrotate",
        "/sbin/logrotate",
    ] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("logrotate is not installed (apt-get install logrotate; .ci/run does it)");
}

/// Runs logrotate once, forced, with `directives` for tool-usage.log.
fn rotate(p: &Project, directives: &str) {
    let conf = p.path().join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{} {{\n  rotate 5\n  missingok\n  nocompress\n{directives}\n}}\n",
            p.log("tool-usage.log").display()
        ),
    )
    .unwrap();
    let out = Command::new(logrotate())
        .arg("-f")
        .arg("-s")
        .arg(p.path().join("logrotate.state"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Burst `k`: 11 calls by user `burst-k` within 10 s, plus 4 quiet calls.
fn write_burst(p: &Project, k: i64, seq: &mut u64) -> u64 {
    let t = BASE + k * 20 * 60_000;
    let mut lines: Vec<String> = (0..11)
        .map(|i| {
            *seq += 1;
            call_line(t + i * 900, &format!("burst-{k}"), *seq)
        })
        .collect();
    for i in 0..4 {
        *seq += 1;
        lines.push(call_line(t + 30_000 + i * 60_000, "steady", *seq));
    }
    p.append("tool-usage.log", &lines);
    lines.len() as u64
}

/// Waits until the daemon has read `n` lines in this lifetime and the
/// checkpoint on disk covers them: every tool log the checkpoint follows is
/// consumed to its end, and it follows the live log. (Counting checkpoint
/// writes raced: the write covering the last lines could land before the
/// count was first read, and none came after it.)
fn settle(p: &Project, d: &support::daemon::Daemon, n: u64) {
    d.wait_metric(TOOL_EVENTS, n as f64, 30);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !checkpoint_covers_every_line(p) {
        assert!(
            Instant::now() < deadline,
            "no checkpoint covering every line read ({} written); checkpoint: {}\n{}",
            d.metric(CHECKPOINTS),
            std::fs::read_to_string(p.state().join("checkpoint.json")).unwrap_or_default(),
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `checkpoint.json` has a position on the live tool log, and every
/// tool log it has a position on (by inode) is consumed to its size.
fn checkpoint_covers_every_line(p: &Project) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(text) = std::fs::read_to_string(p.state().join("checkpoint.json")) else {
        return false;
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    let positions: Vec<(u64, u64)> = (doc["tail"]["files"].as_array().into_iter().flatten())
        .filter_map(|f| Some((f["ino"].as_u64()?, f["offset"].as_u64()?)))
        .collect();
    let mut live_followed = false;
    for e in std::fs::read_dir(p.audit()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("tool-usage.log") {
            continue;
        }
        let Ok(meta) = e.metadata() else {
            return false;
        };
        for &(ino, offset) in positions.iter().filter(|(ino, _)| *ino == meta.ino()) {
            if offset != meta.len() {
                return false;
            }
            live_followed |= name == "tool-usage.log" && ino == meta.ino();
        }
    }
    live_followed
}

#[test]
fn logrotate_copytruncate_and_create_with_kill_9_lose_and_duplicate_nothing() {
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), POLICY).unwrap();
    let mut seq = 0;
    let mut written = 0;
    let mut lifetimes = 0.0;

    // Lifetime 1: bursts 0-2, copytruncate, bursts 3-5, then kill -9.
    for k in 0..3 {
        written += write_burst(&p, k, &mut seq);
    }
    let d = p.start(&[]);
    let mut read = written;
    settle(&p, &d, read);
    rotate(&p, "  copytruncate");
    for k in 3..6 {
        written += write_burst(&p, k, &mut seq);
    }
    read = written;
    settle(&p, &d, read);
    lifetimes += d.metric(TOOL_EVENTS);
    d.kill9();

    // Lifetime 2: written while down, then create-mode rotation.
    for k in 6..8 {
        written += write_burst(&p, k, &mut seq);
    }
    let d = p.start(&[]);
    settle(&p, &d, written - read);
    rotate(&p, "  create");
    for k in 8..10 {
        written += write_burst(&p, k, &mut seq);
    }
    settle(&p, &d, written - read);
    lifetimes += d.metric(TOOL_EVENTS);
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));

    // The kill came after a checkpoint covering everything read, so the
    // lifetimes together read each line exactly once.
    assert_eq!(lifetimes as u64, written);
    let alerts = p.alerts();
    let ids: HashSet<&str> = alerts.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), alerts.len(), "an alert id appears twice");
    let mut users: Vec<String> = alerts
        .iter()
        .filter(|a| a["rule"] == "rapid_tool_usage")
        .map(|a| a["key"]["user_id"].as_str().unwrap().to_string())
        .collect();
    users.sort();
    let mut expected: Vec<String> = (0..10).map(|k| format!("burst-{k}")).collect();
    expected.sort();
    assert_eq!(users, expected);
}
