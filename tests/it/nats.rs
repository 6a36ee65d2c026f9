//! SPEC §10 against a real `nats-server` with JetStream: the test servers
//! themselves, `mcpwatch forward` and `mcpwatch run --input nats://…`.

use std::time::Duration;

use async_nats::jetstream;

use crate::support::nats::{NatsCluster, NatsServer};

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

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::daemon::{BIN, Project};
use crate::support::wait_until;

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
        let Ok(c) = async_nats::connect(url).await else {
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

fn now_ms() -> i64 {
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
    assert!(
        f.stderr()
            .contains("tool-usage.log:2: line rejected (not_json)"),
        "{}",
        f.stderr()
    );

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
    assert!(
        wait_until(Duration::from_secs(20), || f
            .stderr()
            .contains("trying again")),
        "{}",
        f.stderr()
    );
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
