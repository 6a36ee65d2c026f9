//! SPEC §10 against a real `nats-server` with JetStream: the test servers
//! themselves, `mcpwatch forward` and `mcpwatch run --input nats://…`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;

use crate::support::daemon::Daemon;
use crate::support::daemon::{BIN, Project};
use crate::support::nats::{NatsCluster, NatsServer};
use crate::support::{assert_logs, wait_until};

/// A process said `text` on its `stderr`.
pub fn assert_said(stderr: &str, text: &str) {
    assert!(stderr.contains(text), "{text:?} not in\n{stderr}");
}

/// Stops the daemon with SIGTERM; it exits 0.
pub fn stop_cleanly(d: Daemon) {
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

/// The agent writing `lines` to `log`, `per` lines every `every`, as a
/// live agent would: the thread to join when all are written.
pub fn write_live(
    log: PathBuf,
    lines: Vec<String>,
    per: usize,
    every: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for c in lines.chunks(per) {
            let text: String = c.iter().map(|l| format!("{l}\n")).collect();
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            f.write_all(text.as_bytes()).unwrap();
            std::thread::sleep(every);
        }
    })
}

/// A current-thread runtime for the test's own NATS client.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_three_node_cluster_keeps_a_replicated_stream_when_a_node_dies() {
    let mut cluster = NatsCluster::start();
    let url = cluster.url();
    rt().block_on(async {
        let client = async_nats::connect(url.split(',').collect::<Vec<_>>())
            .await
            .unwrap();
        let js = jetstream::new(client);
        // The cluster's meta leader may take a moment to be elected.
        let mut created = None;
        for _ in 0..100 {
            match js
                .create_stream(jetstream::stream::Config {
                    name: "T".into(),
                    subjects: vec!["t.>".into()],
                    num_replicas: 3,
                    ..Default::default()
                })
                .await
            {
                Ok(s) => {
                    created = Some(s);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert!(created.is_some(), "no stream on the cluster");
        js.publish("t.a", "1".into()).await.unwrap().await.unwrap();
    });
    cluster.nodes[0].kill();
    let url = cluster.nodes[1].url();
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let mut ack = None;
        for _ in 0..100 {
            if let Ok(f) = js.publish("t.a", "2".into()).await
                && let Ok(a) = f.await
            {
                ack = Some(a);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(ack.expect("publish after a node died").sequence, 2);
    });
}

#[test]
fn a_single_node_restarts_on_its_store() {
    let mut server = NatsServer::start();
    let url = server.url();
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(&url).await.unwrap());
        js.create_stream(jetstream::stream::Config {
            name: "T".into(),
            subjects: vec!["t.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        js.publish("t.a", "1".into()).await.unwrap().await.unwrap();
    });
    server.restart();
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(&url).await.unwrap());
        let mut s = js.get_stream("T").await.unwrap();
        assert_eq!(s.info().await.unwrap().state.messages, 1);
    });
    assert!(server.store().join("jetstream").is_dir());
}

// ---- forward ----

/// One message of the audit stream as the test reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub seq: u64,
    pub subject: String,
    pub headers: BTreeMap<String, String>,
    pub payload: String,
}

/// Every message in `stream`, by sequence.
pub fn read_stream(url: &str, stream: &str) -> Vec<Got> {
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let mut s = js.get_stream(stream).await.unwrap();
        let state = s.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            let Ok(m) = s.get_raw_message(seq).await else {
                continue;
            };
            let headers = m
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        v.first().map(|x| x.to_string()).unwrap_or_default(),
                    )
                })
                .collect();
            out.push(Got {
                seq,
                subject: m.subject.to_string(),
                headers,
                payload: String::from_utf8(m.payload.to_vec()).unwrap(),
            });
        }
        out
    })
}

/// Messages in `stream` now (0 while it does not exist).
pub fn stream_len(url: &str, stream: &str) -> u64 {
    rt().block_on(async {
        let Ok(c) = async_nats::connect(url.split(',').collect::<Vec<_>>()).await else {
            return 0;
        };
        let js = jetstream::new(c);
        match js.get_stream(stream).await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        }
    })
}

/// `mcpwatch forward` running on a project's audit directory.
pub struct Forwarder {
    pub child: Child,
    pub stderr: PathBuf,
}

impl Forwarder {
    pub fn start(p: &Project, url: &str, host: &str, extra: &[&str]) -> Forwarder {
        let stderr = p.path().join(format!(
            "forward-{host}-{}.stderr",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let child = Command::new(BIN)
            .current_dir(p.path())
            .args(["forward", "--nats", url, "--host", host])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Forwarder { child, stderr }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The file identity of SPEC §10's `Nats-Msg-Id`: the first 8 bytes of the
/// SHA-256 of the file's first line (SPEC §8's fingerprint), in hex.
pub fn file_id(path: &Path) -> String {
    use sha2::Digest;
    let text = std::fs::read(path).unwrap();
    let end = memchr::memchr(b'\n', &text).unwrap();
    hex::encode(&sha2::Sha256::digest(&text[..end])[..8])
}

/// A tool call line at `ts` (epoch ms) of `user`.
pub fn call(ts: i64, user: &str, n: usize) -> String {
    format!(
        r#"{{"ts":{ts},"request_id":"r-{n}","user_id":"{user}","server_name":"gmail","tool_name":"email_read","outcome":"success"}}"#
    )
}

/// Lines of `(path, offset, line number, text)` for every line of `path`.
fn lines_with_offsets(path: &Path) -> Vec<(u64, u64, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut off = 0u64;
    let mut out = Vec::new();
    for (i, l) in text.split_inclusive('\n').enumerate() {
        out.push((off, i as u64 + 1, l.trim_end_matches('\n').to_string()));
        off += l.len() as u64;
    }
    out
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[test]
fn forward_publishes_each_accepted_line_once_with_the_headers_of_spec_10() {
    let server = NatsServer::start();
    let p = Project::new();
    let t = now_ms() - 60_000;
    p.append(
        "tool-usage.log",
        &[call(t, "u-1", 1), "not json".into(), call(t + 1, "u-2", 2)],
    );
    p.append(
        "approvals.log",
        &[format!(
            r#"{{"ts":{t},"request_id":"r-1","tool_name":"email_read","decision":"approve"}}"#
        )],
    );
    let mut f = Forwarder::start(&p, &server.url(), "agent-1", &[]);
    assert!(
        wait_until(Duration::from_secs(20), || stream_len(
            &server.url(),
            "MCPWATCH_AUDIT"
        ) >= 3),
        "{}",
        f.stderr()
    );
    // The stream as SPEC §10 creates it.
    let info = rt().block_on(async {
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        js.get_stream("MCPWATCH_AUDIT")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .config
            .clone()
    });
    assert_eq!(info.subjects, vec!["mcpwatch.audit.*".to_string()]);
    assert_eq!(info.storage, jetstream::stream::StorageType::File);
    assert_eq!(info.num_replicas, 1);
    assert_eq!(info.duplicate_window, Duration::from_secs(120));
    assert_eq!(info.max_age, Duration::from_secs(7 * 24 * 3600));

    // A checkpoint written once everything is acked, then a clean stop.
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(p.state().join("checkpoint.json"))
            .is_ok_and(|c| c.contains("\"offset\":"))
    }));
    assert!(f.stop().success(), "{}", f.stderr());
    assert_said(&f.stderr(), "tool-usage.log:2: line rejected (not_json)");

    let got = read_stream(&server.url(), "MCPWATCH_AUDIT");
    let calls = p.log("tool-usage.log");
    let approvals = p.log("approvals.log");
    let mut want = Vec::new();
    for (path, subject) in [
        (&calls, "mcpwatch.audit.tool_call"),
        (&approvals, "mcpwatch.audit.approval"),
    ] {
        let id = file_id(path);
        let name = path.file_name().unwrap().to_str().unwrap();
        for (off, n, text) in lines_with_offsets(path) {
            if text == "not json" {
                continue;
            }
            want.push((
                subject.to_string(),
                BTreeMap::from([
                    ("Nats-Msg-Id".to_string(), format!("agent-1/{id}/{off}")),
                    ("Mcpwatch-Host".to_string(), "agent-1".to_string()),
                    ("Mcpwatch-File".to_string(), name.to_string()),
                    ("Mcpwatch-Line".to_string(), n.to_string()),
                ]),
                text,
            ));
        }
    }
    let mut have: Vec<_> = got
        .iter()
        .map(|g| (g.subject.clone(), g.headers.clone(), g.payload.clone()))
        .collect();
    have.sort();
    want.sort();
    assert_eq!(have, want);
    // The third call line sits past the rejected one: offset, not line count.
    assert!(have.iter().any(|(_, h, _)| h["Mcpwatch-Line"] == "3"
        && h["Nats-Msg-Id"].ends_with(&format!(
            "/{}",
            call(t, "u-1", 1).len() + 1 + "not json".len() + 1
        ))));
}

#[test]
fn forward_killed_9_mid_stream_and_restarted_leaves_every_line_once_in_the_stream() {
    let server = NatsServer::start();
    let p = Project::new();
    let t = now_ms() - 3_600_000;
    let n = 30_000;
    let lines: Vec<String> = (0..n).map(|i| call(t + i as i64, "u-1", i)).collect();
    p.append("tool-usage.log", &lines);
    let mut f = Forwarder::start(&p, &server.url(), "agent-1", &["--read-limit", "65536"]);
    assert!(
        wait_until(Duration::from_secs(30), || stream_len(
            &server.url(),
            "MCPWATCH_AUDIT"
        ) >= 2_000),
        "{}",
        f.stderr()
    );
    f.kill9();
    let after_kill = stream_len(&server.url(), "MCPWATCH_AUDIT");
    assert!(
        after_kill < n as u64,
        "the kill came too late to test anything"
    );
    // More lines while it is down, then the restart.
    let more: Vec<String> = (n..n + 1_000)
        .map(|i| call(t + i as i64, "u-1", i))
        .collect();
    p.append("tool-usage.log", &more);
    let mut f = Forwarder::start(&p, &server.url(), "agent-1", &[]);
    assert!(
        wait_until(Duration::from_secs(60), || stream_len(
            &server.url(),
            "MCPWATCH_AUDIT"
        ) >= (n + 1_000) as u64),
        "{}",
        f.stderr()
    );
    assert!(f.stop().success());
    let got = read_stream(&server.url(), "MCPWATCH_AUDIT");
    let id = file_id(&p.log("tool-usage.log"));
    let want: Vec<(String, String)> = lines_with_offsets(&p.log("tool-usage.log"))
        .into_iter()
        .map(|(off, _, text)| (format!("agent-1/{id}/{off}"), text))
        .collect();
    let have: Vec<(String, String)> = got
        .into_iter()
        .map(|g| (g.headers["Nats-Msg-Id"].clone(), g.payload))
        .collect();
    assert_eq!(have.len(), want.len(), "every line exactly once");
    assert_eq!(have, want, "in file order");
}

#[test]
fn a_rotation_while_forwarding_loses_and_repeats_nothing() {
    let server = NatsServer::start();
    let p = Project::new();
    let t = now_ms() - 3_600_000;
    p.append(
        "tool-usage.log",
        &(0..500)
            .map(|i| call(t + i, "u-1", i as usize))
            .collect::<Vec<_>>(),
    );
    let mut f = Forwarder::start(&p, &server.url(), "agent-1", &[]);
    assert!(wait_until(Duration::from_secs(20), || stream_len(
        &server.url(),
        "MCPWATCH_AUDIT"
    ) >= 500));
    // Lines written just before the rename, then the rename rotation,
    // then a new file under the live name.
    p.append(
        "tool-usage.log",
        &(500..700)
            .map(|i| call(t + i, "u-1", i as usize))
            .collect::<Vec<_>>(),
    );
    std::fs::rename(p.log("tool-usage.log"), p.log("tool-usage.log.1")).unwrap();
    let mut live = std::fs::File::create(p.log("tool-usage.log")).unwrap();
    for i in 700..900 {
        writeln!(live, "{}", call(t + i, "u-1", i as usize)).unwrap();
    }
    drop(live);
    assert!(
        wait_until(Duration::from_secs(20), || stream_len(
            &server.url(),
            "MCPWATCH_AUDIT"
        ) >= 900),
        "{}",
        f.stderr()
    );
    assert!(f.stop().success());
    let got = read_stream(&server.url(), "MCPWATCH_AUDIT");
    assert_eq!(got.len(), 900);
    let payloads: Vec<String> = got.iter().map(|g| g.payload.clone()).collect();
    let want: Vec<String> = (0..900).map(|i| call(t + i, "u-1", i as usize)).collect();
    assert_eq!(payloads, want);
    let rotated_id = file_id(&p.log("tool-usage.log.1"));
    assert!(
        got[..700]
            .iter()
            .all(|g| g.headers["Nats-Msg-Id"].starts_with(&format!("agent-1/{rotated_id}/")))
    );
    assert_eq!(got[700].headers["Mcpwatch-File"], "tool-usage.log");
    assert_eq!(got[700].headers["Mcpwatch-Line"], "1");
}

#[test]
fn an_unreachable_nats_is_retried_then_exit_1_with_a_clear_error() {
    let p = Project::new();
    let port = crate::support::nats::free_port();
    let url = format!("nats://user:hunter2@127.0.0.1:{port}");
    let out = Command::new(BIN)
        .current_dir(p.path())
        .args(["forward", "--nats", &url, "--connect-timeout", "2s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("trying again"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "mcpwatch forward: NATS: cannot reach NATS at nats://***@127.0.0.1:{port} for 2s"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "a password was printed: {stderr}"
    );
}

#[test]
fn a_nats_that_comes_up_within_the_connect_timeout_is_used() {
    let p = Project::new();
    let t = now_ms() - 60_000;
    p.append("tool-usage.log", &[call(t, "u-1", 1)]);
    // Reserve a port, then start the server on it once forward is waiting.
    let mut server = NatsServer::start();
    let url = server.url();
    server.kill();
    let mut f = Forwarder::start(&p, &url, "agent-1", &["--connect-timeout", "60s"]);
    assert_logs(Duration::from_secs(20), "trying again", || f.stderr());
    server.restart();
    assert!(
        wait_until(Duration::from_secs(30), || stream_len(
            &url,
            "MCPWATCH_AUDIT"
        ) == 1),
        "{}",
        f.stderr()
    );
    assert!(f.stop().success());
}

// ---- run --input nats://… ----

/// The bundled example's project files copied into `p` (logs and policy).
pub fn copy_example(p: &Project) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    std::fs::copy(
        example.join("security-config.json"),
        p.path().join("security-config.json"),
    )
    .unwrap();
    for f in ["tool-usage.log", "approvals.log", "errors.log"] {
        std::fs::copy(example.join(".elevenlabs/audit").join(f), p.log(f)).unwrap();
    }
}

/// `scan`'s alerts over a project's logs (ndjson), parsed.
pub fn scan_alerts(p: &Project) -> Vec<serde_json::Value> {
    let out = Command::new(BIN)
        .current_dir(p.path())
        .args(["scan", ".elevenlabs/audit", "--format", "ndjson"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `run --input <url>` in `p` with `extra` flags.
pub fn detector(p: &Project, url: &str, extra: &[&str]) -> Daemon {
    let mut args = vec!["--input", url];
    args.extend_from_slice(extra);
    p.start(&args)
}

pub fn events_read(d: &Daemon) -> u64 {
    ["tool_call", "approval", "error"]
        .iter()
        .zip(["tool-usage.log", "approvals.log", "errors.log"])
        .map(|(k, f)| {
            d.metric(&format!(
                "mcpwatch_events_total{{file=\"{f}\",kind=\"{k}\"}}"
            ))
        })
        .sum::<f64>() as u64
}

/// Each alert with every `evidence[].file` given as `<host>:<file>` turned
/// back into scan's `<file>`; panics when one names another host.
fn strip_host(alerts: &[serde_json::Value], host: &str) -> Vec<serde_json::Value> {
    let mut alerts = alerts.to_vec();
    for a in &mut alerts {
        for e in a["evidence"].as_array_mut().unwrap() {
            let f = e["file"].as_str().unwrap();
            let bare = f
                .strip_prefix(&format!("{host}:"))
                .unwrap_or_else(|| panic!("evidence.file {f:?} does not name {host}"))
                .to_string();
            e["file"] = serde_json::Value::String(bare);
        }
    }
    alerts
}

#[test]
fn run_from_the_stream_alerts_exactly_as_scan_over_the_same_lines() {
    let server = NatsServer::start();
    let agent = Project::new();
    copy_example(&agent);
    let mut f = Forwarder::start(&agent, &server.url(), "h1", &[]);
    assert!(
        wait_until(Duration::from_secs(30), || stream_len(
            &server.url(),
            "MCPWATCH_AUDIT"
        ) == 4290),
        "{}",
        f.stderr()
    );
    assert!(f.stop().success());
    let want = scan_alerts(&agent);
    assert!(want.len() >= 10, "the example plants its anomalies");

    let det = Project::new();
    std::fs::copy(
        agent.path().join("security-config.json"),
        det.path().join("security-config.json"),
    )
    .unwrap();
    // The forwarder sent each log whole, one after the other: a lateness
    // longer than the example's span (but shorter than its age) lets the
    // detector put every line in ts order, as scan does.
    let d = detector(&det, &server.url(), &["--allowed-lateness", "240h"]);
    assert!(
        wait_until(Duration::from_secs(30), || det.alerts().len() >= want.len()
            && events_read(&d) == 4290),
        "{} of {} alerts\n{}",
        det.alerts().len(),
        want.len(),
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(500));
    stop_cleanly(d);
    assert_eq!(strip_host(&det.alerts(), "h1"), want);
    assert_eq!(
        det.alerts()[0]["evidence"][0]["file"]
            .as_str()
            .unwrap()
            .split_once(':')
            .unwrap()
            .0,
        "h1"
    );
}

#[test]
fn a_burst_split_across_two_hosts_fires_once() {
    let server = NatsServer::start();
    let (a, b) = (Project::new(), Project::new());
    let t = now_ms() - 30_000;
    // 11 calls of u-9 within 11 s: 6 on h1, 5 on h2. Each host alone
    // stays under rapid_tool_usage's threshold of 10.
    let lines = |range: std::ops::Range<i64>| -> Vec<String> {
        range
            .map(|i| call(t + i * 1_000, "u-9", i as usize))
            .collect()
    };
    a.append("tool-usage.log", &lines(0..6));
    b.append("tool-usage.log", &lines(6..11));
    let det = Project::new();
    let d = detector(&det, &server.url(), &["--allowed-lateness", "2s"]);
    let _fa = Forwarder::start(&a, &server.url(), "h1", &[]);
    let _fb = Forwarder::start(&b, &server.url(), "h2", &[]);
    assert!(
        wait_until(Duration::from_secs(30), || !det.alerts().is_empty()),
        "{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_secs(2));
    let alerts = det.alerts();
    let rapid: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "rapid_tool_usage")
        .collect();
    assert_eq!(rapid.len(), 1, "{alerts:?}");
    assert_eq!(rapid[0]["key"]["user_id"], "u-9");
    // The 11th call, on h2, line 5 of its file.
    assert_eq!(rapid[0]["evidence"][0]["file"], "h2:tool-usage.log");
    assert_eq!(rapid[0]["evidence"][0]["line"], 5);
    assert_eq!(events_read(&d), 11);
}

#[test]
fn a_malformed_message_is_counted_as_rejected_and_the_rest_goes_on() {
    let server = NatsServer::start();
    let agent = Project::new();
    let t = now_ms() - 60_000;
    agent.append("tool-usage.log", &[call(t, "u-1", 1)]);
    let mut f = Forwarder::start(&agent, &server.url(), "h1", &[]);
    assert!(wait_until(Duration::from_secs(20), || stream_len(
        &server.url(),
        "MCPWATCH_AUDIT"
    ) == 1));
    assert!(f.stop().success());
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        // No headers at all.
        js.publish("mcpwatch.audit.tool_call", call(t + 1, "u-1", 2).into())
            .await
            .unwrap()
            .await
            .unwrap();
        // The headers of SPEC §10 around a body that is not JSON.
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", "h9/00000000000000aa/0");
        h.insert("Mcpwatch-Host", "h9");
        h.insert("Mcpwatch-File", "tool-usage.log");
        h.insert("Mcpwatch-Line", "1");
        js.publish_with_headers("mcpwatch.audit.tool_call", h, "{not json".into())
            .await
            .unwrap()
            .await
            .unwrap();
        // Another host's line that is fine.
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", "h9/00000000000000aa/10");
        h.insert("Mcpwatch-Host", "h9");
        h.insert("Mcpwatch-File", "tool-usage.log");
        h.insert("Mcpwatch-Line", "2");
        js.publish_with_headers("mcpwatch.audit.tool_call", h, call(t + 2, "u-2", 3).into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    let det = Project::new();
    let d = detector(&det, &server.url(), &["--allowed-lateness", "0s"]);
    d.wait_metric(
        "mcpwatch_events_total{file=\"tool-usage.log\",kind=\"tool_call\"}",
        2.0,
        20,
    );
    d.wait_metric(
        "mcpwatch_lines_rejected_total{file=\"tool-usage.log\",reason=\"not_json\"}",
        1.0,
        20,
    );
    assert_eq!(
        d.metric("mcpwatch_lines_rejected_total{file=\"tool-usage.log\",reason=\"bad_message\"}"),
        1.0
    );
    assert_said(&d.stderr(), "h9:tool-usage.log:1: line rejected (not_json)");
    assert_said(&d.stderr(), "stream message 2 rejected (no Nats-Msg-Id)");
    stop_cleanly(d);
}

#[test]
fn the_stream_deleted_under_a_running_detector_is_a_clear_error_and_loses_nothing() {
    let server = NatsServer::start();
    let agent = Project::new();
    let t = now_ms() - 120_000;
    agent.append(
        "tool-usage.log",
        &(0..11)
            .map(|i| call(t + i * 1_000, "u-3", i as usize))
            .collect::<Vec<_>>(),
    );
    let mut f = Forwarder::start(&agent, &server.url(), "h1", &[]);
    assert!(wait_until(Duration::from_secs(20), || stream_len(
        &server.url(),
        "MCPWATCH_AUDIT"
    ) == 11));
    assert!(f.stop().success());
    let det = Project::new();
    let mut d = detector(&det, &server.url(), &["--allowed-lateness", "0s"]);
    assert!(
        wait_until(Duration::from_secs(20), || det
            .alerts()
            .iter()
            .any(|a| a["rule"] == "rapid_tool_usage")),
        "{}",
        d.stderr()
    );
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        js.delete_stream("MCPWATCH_AUDIT").await.unwrap();
    });
    let status = {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = d.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running: {}",
                d.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(status.code(), Some(1), "{}", d.stderr());
    assert_said(
        &d.stderr(),
        "NATS: the stream MCPWATCH_AUDIT no longer exists (deleted?)",
    );
    // On disk: the alert, and a checkpoint past all 11 lines.
    // (new_tool_usage for the first call, rapid_tool_usage for the 11th.)
    let rules: Vec<_> = det.alerts().iter().map(|a| a["rule"].clone()).collect();
    assert_eq!(rules, ["new_tool_usage", "rapid_tool_usage"]);
    let cp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(det.state().join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(cp["stream"]["stream"], "MCPWATCH_AUDIT");
    assert_eq!(cp["stream"]["seq"], 11);
    assert_eq!(cp["stream"]["highest"][0]["offset"].as_u64().unwrap(), {
        let text = std::fs::read_to_string(agent.log("tool-usage.log")).unwrap();
        (text.len() - text.lines().last().unwrap().len() - 1) as u64
    });

    // The stream made again by a forwarder with new lines: its sequences
    // start at 1 again, and the restarted detector reads them all.
    agent.append(
        "tool-usage.log",
        &(0..11)
            .map(|i| call(t + 20_000 + i * 1_000, "u-5", 100 + i as usize))
            .collect::<Vec<_>>(),
    );
    let mut f = Forwarder::start(&agent, &server.url(), "h1", &[]);
    assert!(wait_until(Duration::from_secs(20), || stream_len(
        &server.url(),
        "MCPWATCH_AUDIT"
    ) == 11));
    assert!(f.stop().success());
    let d = detector(&det, &server.url(), &["--allowed-lateness", "0s"]);
    assert!(
        wait_until(Duration::from_secs(20), || det
            .alerts()
            .iter()
            .any(|a| a["key"]["user_id"] == "u-5")),
        "{}",
        d.stderr()
    );
    assert_said(&d.stderr(), "was created again since the checkpoint");
    stop_cleanly(d);
}

#[test]
fn the_detector_killed_9_and_restarted_loses_and_repeats_no_alert() {
    let server = NatsServer::start();
    let agent = Project::new();
    let t = now_ms() - 6 * 3_600_000;
    // 10,000 calls of distinct users (no alert), with a planted burst of
    // 11 calls of one user every 500 lines: 20 alerts. The lateness of
    // 120 s holds 600 lines back, so a kill always lands with a burst's
    // lines read but not yet detected (taken again after the restart).
    let mut lines = Vec::new();
    let mut ts = t;
    for i in 0..10_000usize {
        ts += 200;
        if i % 500 == 250 {
            let u = format!("burst-{i}");
            for j in 0..11 {
                lines.push(call(ts + j, &u, i * 100 + j as usize));
            }
        }
        lines.push(call(ts, &format!("quiet-{i}"), i));
    }
    let total = lines.len() as u64;

    // Live: the detector reads while the forwarder still publishes.
    let det = Project::new();
    let d = detector(&det, &server.url(), &["--allowed-lateness", "120s"]);
    let mut f = Forwarder::start(&agent, &server.url(), "h1", &[]);
    // The agent writes 400 lines every 200 ms (about 5 s in all).
    let writer = write_live(
        agent.log("tool-usage.log"),
        lines,
        400,
        Duration::from_millis(200),
    );
    let cp = det.state().join("checkpoint.json");
    assert!(
        wait_until(Duration::from_secs(60), || events_read(&d) > 4_000
            && std::fs::read_to_string(&cp)
                .is_ok_and(|c| c.contains("\"seq\""))),
        "{}",
        d.stderr()
    );
    let read = events_read(&d);
    d.kill9();
    assert!(read < total, "the kill came after the last line");
    assert!(
        wait_until(Duration::from_secs(60), || stream_len(
            &server.url(),
            "MCPWATCH_AUDIT"
        ) == total),
        "{}",
        f.stderr()
    );
    assert!(f.stop().success());
    writer.join().unwrap();
    let scanned = scan_alerts(&agent);
    let want: Vec<String> = scanned
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let bursts = scanned.iter().filter(|a| a["rule"] == "rapid_tool_usage");
    assert_eq!(bursts.count(), 20);
    let d = detector(&det, &server.url(), &["--allowed-lateness", "120s"]);
    assert!(
        wait_until(Duration::from_secs(60), || det.alerts().len() >= want.len()),
        "{} alerts\n{}",
        det.alerts().len(),
        d.stderr()
    );
    std::thread::sleep(Duration::from_secs(2));
    stop_cleanly(d);
    let have: Vec<String> = det
        .alerts()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(have, want, "every burst alerted once, in order");
}

#[test]
fn a_line_sent_again_after_the_duplicate_window_is_dropped_by_its_offset() {
    let server = NatsServer::start();
    let t = now_ms() - 60_000;
    let stored = rt().block_on(async {
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        js.create_stream(jetstream::stream::Config {
            name: "MCPWATCH_AUDIT".into(),
            subjects: vec!["mcpwatch.audit.*".into()],
            duplicate_window: Duration::from_millis(100),
            ..Default::default()
        })
        .await
        .unwrap();
        let publish = |offset: u64, line: u64, body: String| {
            let js = js.clone();
            async move {
                let mut h = async_nats::HeaderMap::new();
                h.insert(
                    "Nats-Msg-Id",
                    format!("h1/00000000000000ff/{offset}").as_str(),
                );
                h.insert("Mcpwatch-Host", "h1");
                h.insert("Mcpwatch-File", "tool-usage.log");
                h.insert("Mcpwatch-Line", line.to_string().as_str());
                js.publish_with_headers("mcpwatch.audit.tool_call", h, body.into())
                    .await
                    .unwrap()
                    .await
                    .unwrap()
            }
        };
        publish(0, 1, call(t, "u-1", 1)).await;
        publish(100, 2, call(t + 1, "u-1", 2)).await;
        // A forwarder down for longer than the window sends both again.
        tokio::time::sleep(Duration::from_millis(300)).await;
        publish(0, 1, call(t, "u-1", 1)).await;
        publish(100, 2, call(t + 1, "u-1", 2)).await;
        publish(200, 3, call(t + 2, "u-1", 3)).await.sequence
    });
    assert_eq!(stored, 5, "the stream kept the lines sent again");
    let det = Project::new();
    let d = detector(&det, &server.url(), &["--allowed-lateness", "0s"]);
    d.wait_metric("mcpwatch_lines_resent_total", 2.0, 20);
    d.wait_metric(
        "mcpwatch_events_total{file=\"tool-usage.log\",kind=\"tool_call\"}",
        3.0,
        20,
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        d.metric("mcpwatch_events_total{file=\"tool-usage.log\",kind=\"tool_call\"}"),
        3.0
    );
    assert_eq!(d.metric("mcpwatch_lines_resent_total"), 2.0);
    stop_cleanly(d);
}

#[test]
fn a_nats_node_killed_under_traffic_loses_and_repeats_nothing() {
    let mut cluster = NatsCluster::start();
    let url = cluster.url();
    let agent = Project::new();
    let t = now_ms() - 3_600_000;
    // 6,000 quiet calls and a burst of 11 every 500 lines: 12 bursts.
    let mut lines = Vec::new();
    for i in 0..6_000usize {
        if i % 500 == 250 {
            for j in 0..11 {
                lines.push(call(
                    t + i as i64 * 100 + j,
                    &format!("burst-{i}"),
                    100_000 + i * 11 + j as usize,
                ));
            }
        }
        lines.push(call(t + i as i64 * 100, &format!("quiet-{i}"), i));
    }
    let total = lines.len() as u64;
    let det = Project::new();
    // The cluster's JetStream may still be electing its leader: both wait.
    let mut f = Forwarder::start(&agent, &url, "h1", &["--replicas", "3"]);
    let mut d = detector(&det, &url, &["--allowed-lateness", "1s"]);
    let writer = write_live(
        agent.log("tool-usage.log"),
        lines,
        300,
        Duration::from_millis(100),
    );
    assert!(
        wait_until(Duration::from_secs(60), || {
            if let Ok(Some(s)) = d.child.try_wait() {
                panic!("run exited ({s}): {}", d.stderr());
            }
            events_read(&d) > 1_000
        }),
        "{}\n{}",
        f.stderr(),
        d.stderr()
    );
    // The stream's leader goes down mid-traffic.
    let leader = rt().block_on(async {
        let js = jetstream::new(
            async_nats::connect(url.split(',').collect::<Vec<_>>())
                .await
                .unwrap(),
        );
        let mut s = js.get_stream("MCPWATCH_AUDIT").await.unwrap();
        let info = s.info().await.unwrap();
        info.cluster
            .as_ref()
            .and_then(|c| c.leader.clone())
            .unwrap()
    });
    let n: usize = leader.strip_prefix('n').unwrap().parse().unwrap();
    cluster.nodes[n].kill();
    writer.join().unwrap();
    assert!(
        wait_until(Duration::from_secs(90), || events_read(&d) >= total),
        "{} of {total} (the stream holds {}; {} dropped as sent again, {} late)\n{}\n{}",
        events_read(&d),
        stream_len(&url, "MCPWATCH_AUDIT"),
        d.metric("mcpwatch_lines_resent_total"),
        d.metric("mcpwatch_events_late_total"),
        f.stderr(),
        d.stderr()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(events_read(&d), total, "no line taken twice");
    stop_cleanly(d);
    assert!(f.stop().success());
    let want: Vec<String> = scan_alerts(&agent)
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let have: Vec<String> = det
        .alerts()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(have, want, "every burst alerted once");
    assert_eq!(
        det.alerts()
            .iter()
            .filter(|a| a["rule"] == "rapid_tool_usage")
            .count(),
        12
    );
}

#[test]
fn a_forwarder_killed_9_under_traffic_with_bursts_split_across_hosts_loses_and_repeats_nothing() {
    let server = NatsServer::start();
    let (a, b) = (Project::new(), Project::new());
    // Both hosts log 4,000 quiet calls each, stamped as they are written
    // (2 s in all, so a forwarder's outage puts its lines that far behind
    // in event time, within the lateness of 10 s); every 400 lines a
    // user's burst of 11 calls is split: 6 on h1, 5 on h2 (10 bursts, none
    // visible to one host alone).
    let t = now_ms();
    let (mut la, mut lb) = (Vec::new(), Vec::new());
    for i in 0..4_000usize {
        let ts = t + i as i64 / 2;
        if i % 400 == 200 {
            let u = format!("burst-{i}");
            for j in 0..11 {
                let l = call(ts + j, &u, 100_000 + i * 11 + j as usize);
                if j < 6 { la.push(l) } else { lb.push(l) }
            }
        }
        la.push(call(ts, &format!("qa-{i}"), i));
        lb.push(call(ts + 1, &format!("qb-{i}"), 50_000 + i));
    }
    let total = (la.len() + lb.len()) as u64;
    let det = Project::new();
    let d = detector(&det, &server.url(), &["--allowed-lateness", "10s"]);
    let mut fa = Forwarder::start(&a, &server.url(), "h1", &[]);
    let mut fb = Forwarder::start(&b, &server.url(), "h2", &[]);
    // Each agent writes 200 lines every 100 ms (about 2 s in all).
    let write = |p: &Project, lines: Vec<String>| {
        write_live(
            p.log("tool-usage.log"),
            lines,
            200,
            Duration::from_millis(100),
        )
    };
    let (wa, wb) = (write(&a, la), write(&b, lb));
    assert!(
        wait_until(Duration::from_secs(30), || stream_len(
            &server.url(),
            "MCPWATCH_AUDIT"
        ) > 1_500),
        "{}",
        fa.stderr()
    );
    fa.kill9();
    std::thread::sleep(Duration::from_millis(500));
    let mut fa = Forwarder::start(&a, &server.url(), "h1", &[]);
    wa.join().unwrap();
    wb.join().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || events_read(&d) >= total),
        "{} of {total}\n{}",
        events_read(&d),
        d.stderr()
    );
    // The last 10 s of event time go out once the clock has passed them.
    assert!(
        wait_until(Duration::from_secs(30), || det
            .alerts()
            .iter()
            .filter(|a| a["rule"] == "rapid_tool_usage")
            .count()
            >= 10),
        "{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(events_read(&d), total, "no line taken twice");
    assert_eq!(
        stream_len(&server.url(), "MCPWATCH_AUDIT"),
        total,
        "none stored twice"
    );
    stop_cleanly(d);
    assert!(fa.stop().success());
    assert!(fb.stop().success());
    let alerts = det.alerts();
    let mut bursts: Vec<String> = alerts
        .iter()
        .filter(|a| a["rule"] == "rapid_tool_usage")
        .map(|a| a["key"]["user_id"].as_str().unwrap().to_string())
        .collect();
    bursts.sort();
    let mut want: Vec<String> = (0..4_000)
        .filter(|i| i % 400 == 200)
        .map(|i| format!("burst-{i}"))
        .collect();
    want.sort();
    assert_eq!(bursts, want, "every burst alerted once");
    let ids: std::collections::HashSet<_> = alerts.iter().map(|a| a["id"].clone()).collect();
    assert_eq!(ids.len(), alerts.len(), "no alert twice");
}
