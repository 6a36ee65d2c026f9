//! Soak: `mcpwatch run` (the release binary) under a steady 50,000 lines/s
//! for 30 s with a planted `rapid_tool_usage` burst every second.
//!
//! Reports the daemon's own line-to-alert latency (read of the firing line
//! to the alert's append, `mcpwatch_alert_latency_seconds`) and the
//! end-to-end latency this harness sees (write of the firing line to the
//! alert appearing in `alerts.log`). Goal: p99 ≤ 25 ms.
//!
//! `cargo bench --bench soak`; `MCPWATCH_SOAK_SECS` and `MCPWATCH_SOAK_RATE`
//! change the duration and the rate. Not a test: it asserts only that every
//! burst alerted once.

#[path = "common/live.rs"]
mod live;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use live::{env_or, get, line, now_ms, pct};

const BIN: &str = env!("CARGO_BIN_EXE_mcpwatch");
/// Distinct background users: at 50,000 lines/s each makes ~7.5 calls a
/// minute, below the rapid-usage threshold, so only bursts alert.
const USERS: u64 = 400_000;
const TICK: Duration = Duration::from_millis(10);

fn metric(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// The q-quantile of a histogram family in `/metrics`, as Prometheus's
/// `histogram_quantile` estimates it: linear within the bucket that holds
/// it (so p99 is known to the bucket, e.g. "between 10 and 20 ms").
fn histogram_quantile(body: &str, family: &str, q: f64) -> f64 {
    let prefix = format!("{family}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = body
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, n) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, n.trim().parse().ok()?))
        })
        .collect();
    let Some(&(_, total)) = buckets.last() else {
        return f64::NAN;
    };
    let rank = q * total;
    let (mut lo, mut below) = (0.0, 0.0);
    for (le, n) in buckets {
        if n >= rank && n > below {
            if le.is_infinite() {
                return lo;
            }
            return lo + (le - lo) * (rank - below) / (n - below);
        }
        (lo, below) = (le, n);
    }
    f64::NAN
}

fn main() {
    let secs = env_or("MCPWATCH_SOAK_SECS", 30);
    let rate = env_or("MCPWATCH_SOAK_RATE", 50_000);
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join(".elevenlabs/audit");
    std::fs::create_dir_all(&audit).unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    // Wall-clock timestamps: keep the hour of the run from mattering.
    std::fs::write(
        dir.path().join("rules/unusual_hours.toml"),
        "enabled = false\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("security-config.json"),
        r#"{"approvalMode":"fine_grained","rules":{"autoApproved":{"tools":["calendar_read"]}}}"#,
    )
    .unwrap();
    let log_path = audit.join("tool-usage.log");
    std::fs::write(&log_path, b"").unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["run", "--metrics-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr_file = dir.path().join(".elevenlabs/mcpwatch/metrics.addr");
    let t0 = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
            && !a.is_empty()
        {
            break a;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    // Watch alerts.log for burst alerts: user -> time seen.
    let alerts_path = audit.join("alerts.log");
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<(String, Instant)>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut pos = 0u64;
            let mut partial = String::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut f) = std::fs::File::open(&alerts_path) {
                    use std::io::Seek;
                    let _ = f.seek(std::io::SeekFrom::Start(pos));
                    let mut r = std::io::BufReader::new(f);
                    let mut l = String::new();
                    while r.read_line(&mut l).unwrap_or(0) > 0 {
                        pos += l.len() as u64;
                        partial.push_str(&l);
                        if partial.ends_with('\n') {
                            let v: serde_json::Value =
                                serde_json::from_str(&partial).unwrap_or_default();
                            if let Some(u) = v["key"]["user_id"].as_str() {
                                let _ = seen_tx.send((u.to_string(), Instant::now()));
                            }
                            partial.clear();
                        }
                        l.clear();
                    }
                }
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };

    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .unwrap();
    let per_tick = (rate as u128 * TICK.as_millis() / 1000) as u64;
    let ticks_per_sec = 1000 / TICK.as_millis() as u64;
    let mut written_at: HashMap<String, Instant> = HashMap::new();
    let mut seq = 0u64;
    let start = Instant::now();
    let mut buf = String::with_capacity(per_tick as usize * 260);
    for tick in 0..secs * ticks_per_sec {
        let due = start + TICK * tick as u32;
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        buf.clear();
        let ts = now_ms();
        for _ in 0..per_tick {
            seq += 1;
            buf.push_str(&line(ts, &format!("u-{}", seq % USERS), seq));
        }
        let burst = (tick % ticks_per_sec == ticks_per_sec / 2)
            .then(|| format!("burst-{}", tick / ticks_per_sec));
        if let Some(user) = &burst {
            for _ in 0..11 {
                seq += 1;
                buf.push_str(&line(ts, user, seq));
            }
        }
        f.write_all(buf.as_bytes()).unwrap();
        if let Some(user) = burst {
            written_at.insert(user, Instant::now());
        }
    }
    let wrote = seq;
    let elapsed = start.elapsed();
    // Let the daemon catch up, then read its numbers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let body = get(&addr, "/metrics");
        let n = metric(
            &body,
            "mcpwatch_events_total{file=\"tool-usage.log\",kind=\"tool_call\"}",
        );
        if n as u64 >= wrote || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(200));
    let body = get(&addr, "/metrics");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    let mut e2e: Vec<f64> = Vec::new();
    let mut alerted = 0;
    for (user, at) in seen_rx.try_iter() {
        if let Some(w) = written_at.get(&user) {
            alerted += 1;
            e2e.push(at.saturating_duration_since(*w).as_secs_f64() * 1000.0);
        }
    }
    e2e.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |x: f64| histogram_quantile(&body, "mcpwatch_alert_latency_seconds", x) * 1000.0;
    // Peak memory, checkpoints included (a snapshot holds the nodes
    // detection has written since it was taken).
    let peak = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            l.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0);
    terminate(child.id());
    let _ = child.wait();

    println!(
        "soak: wrote {wrote} lines in {:.1}s ({:.0} lines/s), daemon read {events}",
        elapsed.as_secs_f64(),
        wrote as f64 / elapsed.as_secs_f64()
    );
    println!(
        "soak: bursts {} alerted {alerted} (each once: {})",
        written_at.len(),
        alerted == written_at.len()
    );
    println!(
        "soak: daemon line-to-alert latency (from the histogram's buckets) p50 {:.2} ms, p99 {:.2} ms",
        q(0.5),
        q(0.99),
    );
    println!("soak: daemon peak RSS {peak:.0} MiB");
    println!(
        "soak: checkpoint write p50 {:.1} ms, p99 {:.1} ms",
        histogram_quantile(&body, "mcpwatch_checkpoint_seconds", 0.5) * 1000.0,
        histogram_quantile(&body, "mcpwatch_checkpoint_seconds", 0.99) * 1000.0,
    );
    println!(
        "soak: end-to-end write-to-alert-log latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&e2e, 0.5),
        pct(&e2e, 0.99),
        pct(&e2e, 1.0)
    );
    assert_eq!(alerted, written_at.len(), "every burst alerts exactly once");
}

fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}
