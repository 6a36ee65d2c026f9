//! forward → JetStream → run (SPEC §10) on one `nats-server`, all on this
//! machine, release binaries.
//!
//! 1. Throughput: `MCPWATCH_NATS_LINES` (default 2,000,000) `tool_call`
//!    lines of ~250 bytes written beforehand; a detector
//!    (`run --input nats://…`) already waiting; then `forward` starts. The
//!    figure is lines / (time from the forwarder's start to the detector
//!    having taken the last line), and the forwarder's own time to the
//!    last acked publish beside it.
//! 2. Latency: `MCPWATCH_NATS_RATE` lines/s (default 20,000) for
//!    `MCPWATCH_NATS_SECS` (default 20) with a planted `rapid_tool_usage`
//!    burst every second; the harness's write of each burst's 11th line to
//!    its alert in the detector's `alerts.log`, with `--allowed-lateness
//!    0s` (the default 5 s adds 5 s by design: events wait for it).
//!
//! 3. Run first, the ceiling: `nats-server` alone, fed the same messages
//!    by a minimal publisher (`MCPWATCH_NATS_CEILING` messages, default
//!    500,000; 0 skips it).
//!
//! `cargo bench --bench nats`. Needs `nats-server` (`.ci/run` installs it).
//! Not a test: it asserts only that every burst alerted once.

#[path = "common/live.rs"]
mod live;

use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use live::{env_or, get, line, now_ms, pct};

const BIN: &str = env!("CARGO_BIN_EXE_mcpwatch");
const TICK: Duration = Duration::from_millis(10);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metric(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A project directory: audit logs, state, the policy.
fn project(root: &Path, name: &str) -> PathBuf {
    let p = root.join(name);
    std::fs::create_dir_all(p.join(".elevenlabs/audit")).unwrap();
    std::fs::create_dir_all(p.join("rules")).unwrap();
    // Wall-clock timestamps: keep the hour of the run from mattering.
    std::fs::write(p.join("rules/unusual_hours.toml"), "enabled = false\n").unwrap();
    std::fs::write(
        p.join("security-config.json"),
        r#"{"approvalMode":"fine_grained","rules":{"autoApproved":{"tools":["calendar_read","calendar_write","email_read","email_send","file_read","file_write"]}}}"#,
    )
    .unwrap();
    p
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{}.stderr", args[0]))).unwrap())
        .spawn()
        .unwrap()
}

/// Starts `run` with metrics and returns it with its metrics address.
fn detector(dir: &Path, url: &str, extra: &[&str]) -> (Child, String) {
    let mut args = vec!["run", "--metrics-addr", "127.0.0.1:0", "--input", url];
    args.extend_from_slice(extra);
    let child = spawn(dir, &args);
    let addr_file = dir.join(".elevenlabs/mcpwatch/metrics.addr");
    let t0 = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
            && !a.is_empty()
        {
            break a;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "run did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    (child, addr)
}

fn stop(mut c: Child) {
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let _ = c.wait();
}

fn events(addr: &str) -> f64 {
    metric(
        &get(addr, "/metrics"),
        "mcpwatch_events_total{file=\"tool-usage.log\",kind=\"tool_call\"}",
    )
}

/// One `nats-server -js` on a free port with its store under `root`.
fn nats_server(root: &Path, name: &str) -> (Child, String) {
    let port = free_port();
    let server_bin = if Path::new("/usr/sbin/nats-server").exists() {
        "/usr/sbin/nats-server"
    } else {
        "nats-server"
    };
    let server = Command::new(server_bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(root.join(name))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (apt-get install nats-server)");
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "nats-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    (server, format!("nats://127.0.0.1:{port}"))
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.split(' ').collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after "(comm) ".
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let root = tempfile::tempdir().unwrap();
    if env_or("MCPWATCH_NATS_CEILING", 1) > 0 {
        let (mut server, url) = nats_server(root.path(), "js-c");
        ceiling(&url, server.id());
        let _ = server.kill();
        let _ = server.wait();
    }
    if env_or("MCPWATCH_NATS_LINES", 1) > 0 {
        let (mut server, url) = nats_server(root.path(), "js-t");
        throughput(root.path(), &url, server.id());
        let _ = server.kill();
        let _ = server.wait();
    }
    let (mut server, url) = nats_server(root.path(), "js-l");
    latency(root.path(), &url);
    let _ = server.kill();
    let _ = server.wait();
}

/// What `nats-server` alone takes: the messages SPEC §10 makes of lines
/// (one per line: a ~250-byte payload, `Nats-Msg-Id` and the three
/// `Mcpwatch-*` headers) from a minimal publisher in this process, 8,192
/// acks in flight as `forward` keeps, into a file-backed stream with the
/// same 2 min duplicate window; nothing tailed, parsed or consumed. No
/// forwarder and detector beside it can go faster than this.
fn ceiling(url: &str, server_pid: u32) {
    use async_nats::jetstream::{self, message::PublishMessage, stream};
    let n = env_or("MCPWATCH_NATS_CEILING", 500_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server0, own0) = (cpu_secs(server_pid), cpu_secs(std::process::id()));
    let start = Instant::now();
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = jetstream::ContextBuilder::new()
            .max_ack_inflight(8192)
            .backpressure_on_inflight(true)
            .build(client);
        js.get_or_create_stream(stream::Config {
            name: "CEILING".into(),
            subjects: vec!["ceiling.*".into()],
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .unwrap();
        let payload = bytes::Bytes::from(line(now_ms(), "u-1", 1));
        let (tx, mut rx) = tokio::sync::mpsc::channel(8192);
        let acker = tokio::spawn(async move {
            while let Some(ack) = rx.recv().await {
                let ack: jetstream::context::PublishAckFuture = ack;
                ack.await.unwrap();
            }
        });
        for i in 0..n {
            let msg = PublishMessage::build()
                .payload(payload.clone())
                .message_id(format!("h1/0123456789abcdef/{}", i * 250))
                .header("Mcpwatch-Host", "h1")
                .header("Mcpwatch-File", "tool-usage.log")
                .header("Mcpwatch-Line", (i + 1).to_string().as_str());
            let ack = js.send_publish("ceiling.tool_call", msg).await.unwrap();
            tx.send(ack).await.unwrap();
        }
        drop(tx);
        acker.await.unwrap();
    });
    let secs = start.elapsed().as_secs_f64();
    let per = |cpu: f64| cpu / n as f64 * 1e6;
    println!(
        "nats/ceiling: nats-server alone stored {n} messages of one line each in {secs:.2} s: {:.0} messages/s; CPU per message: nats-server {:.1} µs, the minimal publisher {:.1} µs",
        n as f64 / secs,
        per(cpu_secs(server_pid) - server0),
        per(cpu_secs(std::process::id()) - own0),
    );
}

fn throughput(root: &Path, url: &str, server_pid: u32) {
    let n = env_or("MCPWATCH_NATS_LINES", 2_000_000);
    let agent = project(root, "agent-t");
    let det = project(root, "det-t");
    // Historical ts (24 h from 2026-11-23), 5,000 users, 200 tools.
    mcpwatch::testkit::write_bench_log(
        &agent.join(".elevenlabs/audit/tool-usage.log"),
        n as usize,
        5_000,
        200,
        7,
    )
    .unwrap();
    let bytes = std::fs::metadata(agent.join(".elevenlabs/audit/tool-usage.log"))
        .unwrap()
        .len();
    // The forwarder creates the stream; the detector waits for it.
    let start = Instant::now();
    let fw = spawn(&agent, &["forward", "--nats", url, "--host", "a1"]);
    let (d, addr) = detector(&det, url, &[]);
    let fw_cp = agent.join(".elevenlabs/mcpwatch/checkpoint.json");
    let mut fw_done = None;
    let mut last_print = Instant::now();
    loop {
        let got = events(&addr) as u64;
        if fw_done.is_none()
            && std::fs::read_to_string(&fw_cp)
                .is_ok_and(|c| c.contains(&format!("\"offset\":{bytes}")))
        {
            fw_done = Some(start.elapsed());
        }
        if got >= n {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  … {got} of {n} lines detected after {:.1?}",
                start.elapsed()
            );
            last_print = Instant::now();
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "stalled at {got} of {n}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let all = start.elapsed();
    println!(
        "nats/throughput: {n} lines ({:.0} MiB) forward → JetStream → run in {:.2} s: {:.0} lines/s end to end",
        bytes as f64 / 1048576.0,
        all.as_secs_f64(),
        n as f64 / all.as_secs_f64()
    );
    if let Some(f) = fw_done {
        println!(
            "nats/throughput: the forwarder's checkpoint reached the end (all acked) after {:.2} s: {:.0} lines/s published",
            f.as_secs_f64(),
            n as f64 / f.as_secs_f64()
        );
    }
    println!(
        "nats/throughput: CPU seconds used: forward {:.1}, nats-server {:.1}, run {:.1} (2 cores: {:.1} available)",
        cpu_secs(fw.id()),
        cpu_secs(server_pid),
        cpu_secs(d.id()),
        2.0 * all.as_secs_f64()
    );
    stop(fw);
    stop(d);
}

fn latency(root: &Path, url: &str) {
    let rate = env_or("MCPWATCH_NATS_RATE", 20_000);
    let secs = env_or("MCPWATCH_NATS_SECS", 20);
    let agent = project(root, "agent-l");
    let det = project(root, "det-l");
    let log_path = agent.join(".elevenlabs/audit/tool-usage.log");
    std::fs::write(&log_path, b"").unwrap();
    let fw = spawn(&agent, &["forward", "--nats", url, "--host", "a1"]);
    let (d, _addr) = detector(&det, url, &["--allowed-lateness", "0s"]);
    let alerts_path = det.join(".elevenlabs/audit/alerts.log");
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<(String, Instant)>();
    let halt = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let halt = halt.clone();
        std::thread::spawn(move || {
            let mut pos = 0usize;
            while !halt.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(&alerts_path) {
                    let done = text[pos.min(text.len())..].rfind('\n').map(|i| pos + i + 1);
                    if let Some(end) = done {
                        let now = Instant::now();
                        for l in text[pos..end].lines() {
                            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
                            if let Some(u) = v["key"]["user_id"].as_str() {
                                let _ = seen_tx.send((u.to_string(), now));
                            }
                        }
                        pos = end;
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
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
            // 400,000 background users: ~3 calls a minute each at 20,000
            // lines/s, below the rapid-usage threshold.
            buf.push_str(&line(ts, &format!("u-{}", seq % 400_000), seq));
        }
        let burst = (tick % ticks_per_sec == 50).then(|| format!("burst-{tick}"));
        if let Some(u) = &burst {
            for _ in 0..11 {
                seq += 1;
                buf.push_str(&line(ts, u, seq));
            }
        }
        f.write_all(buf.as_bytes()).unwrap();
        if let Some(u) = burst {
            written_at.insert(u, Instant::now());
        }
    }
    let bursts = written_at.len();
    let mut lat = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen: HashMap<String, usize> = HashMap::new();
    while lat.len() < bursts && Instant::now() < deadline {
        if let Ok((u, at)) = seen_rx.recv_timeout(Duration::from_millis(100)) {
            *seen.entry(u.clone()).or_default() += 1;
            if let Some(w) = written_at.get(&u)
                && seen[&u] == 1
            {
                lat.push(at.saturating_duration_since(*w).as_secs_f64() * 1000.0);
            }
        }
    }
    halt.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watcher.join();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "nats/latency: {rate} lines/s for {secs} s, {} of {bursts} bursts alerted ({} twice); line written → alert in alerts.log: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        seen.values().filter(|&&n| n > 1).count(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    assert_eq!(lat.len(), bursts, "every burst alerted");
    assert!(seen.values().all(|&n| n == 1), "no burst alerted twice");
    stop(fw);
    stop(d);
}
