//! Peak memory and time of `mcpwatch scan` with every key live at once
//! (issue "one identity, one node": ≤ 128 MiB with every rule on).
//!
//! The data: 1,000,000 `tool_call` lines from 1,000,000 distinct users,
//! each with a token of their own, within 10 minutes of event time, so no
//! rule's state expires while it is read; 25 servers, 200 tools. Beside it
//! the `security-config.json` of the `seeded` scan bench (every seed-driven
//! rule on) and four rules directories: `none/` (every rule off: parsing
//! and the merge), `first-seven/`, `thirteen/` and `all/`.
//!
//! Each configuration runs the release binary as a child process once and
//! prints its peak RSS (`wait4`'s `ru_maxrss`) and wall time. Memory is a
//! count, not a timing: one run is enough, and the figures go to
//! `docs/performance.md`.
//!
//! `cargo bench --bench memory`; `MCPWATCH_BENCH_LINES` changes the number
//! of users (and lines). The data is cached under `target/bench-data/`.

#[path = "common/seeded.rs"]
mod seeded;

use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use mcpwatch::config::RuleName;

/// 2026-11-23T00:00:00Z, the first ts of every bench set.
const DAY0: &str = "2026-11-23T00:";
/// Event time the lines span: 10 minutes.
const SPAN_MS: u64 = 600_000;

/// `target/bench-data/live-users-<n>/`: the log, the policy and the rules
/// directories.
fn data(n: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(format!("live-users-{n}"));
    let log = root.join("audit/tool-usage.log");
    if log.exists() {
        return root;
    }
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&log).unwrap());
    let mut line = String::with_capacity(320);
    // A fixed xorshift: every machine gets the same bytes.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ms = i as u64 * SPAN_MS / n.max(1) as u64;
        line.clear();
        let _ = write!(
            line,
            r#"{{"ts":"{DAY0}{:02}:{:02}.{:03}Z","request_id":"r-{:012x}","user_id":"user-{i:07}","token_id":"tk-{i:07}","agent_id":"ag-{:02}","conversation_id":"c-{:012x}","server_name":"srv-{:04}","tool_name":"tool_{:05}","outcome":"success","duration_ms":{},"args_bytes":{}}}"#,
            ms / 60_000,
            ms / 1000 % 60,
            ms % 1000,
            x >> 16,
            i % 17,
            x >> 20,
            x % 25,
            (x >> 8) % 200,
            x % 2000,
            (x >> 4) % 4000,
        );
        line.push('\n');
        w.write_all(line.as_bytes()).unwrap();
    }
    w.flush().unwrap();
    seeded::write_policy_and_rules(
        &root,
        &[
            ("none", 0),
            ("first-seven", 7),
            ("thirteen", 13),
            ("all", RuleName::COUNT),
        ],
    );
    root
}

/// Runs `mcpwatch scan` over `root` with the rules directory `rules`;
/// returns (peak RSS in KiB, wall seconds). The child is reaped by
/// `wait4` (for its own rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn scan(root: &Path, rules: &str) -> (i64, f64) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_mcpwatch"))
        .arg("scan")
        .args(["--format", "ndjson", "--config"])
        .arg(root.join("security-config.json"))
        .arg("--rules")
        .arg(root.join(rules))
        .arg(root.join("audit"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mcpwatch scan");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 reaps our own child and writes only the two out-params.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "mcpwatch scan --rules {rules} failed: {status}"
    );
    (usage.ru_maxrss, started.elapsed().as_secs_f64())
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks configurations.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n = seeded::bench_lines();
    let root = data(n);
    println!("{n} calls from {n} distinct users within 10 minutes, one token each");
    for rules in ["none", "first-seven", "thirteen", "all"] {
        if !filter.is_empty() && !filter.iter().any(|f| rules.contains(f.as_str())) {
            continue;
        }
        let (kib, secs) = scan(&root, rules);
        println!(
            "memory/live_users/{rules:<12} peak RSS {:>7.1} MiB ({:>5} bytes a user)  {secs:.2} s",
            kib as f64 / 1024.0,
            kib * 1024 / n.max(1) as i64,
        );
    }
}
