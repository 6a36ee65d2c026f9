//! Runs the real `mcpwatch run` binary in a temporary project directory and
//! talks to it: metrics over loopback HTTP, signals, the alert log.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mcpwatch");

/// A project root: `.elevenlabs/audit/` for logs, `.elevenlabs/mcpwatch/`
/// for state.
pub struct Project {
    pub root: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(".elevenlabs/audit")).unwrap();
        Project { root }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn audit(&self) -> PathBuf {
        self.path().join(".elevenlabs/audit")
    }

    pub fn state(&self) -> PathBuf {
        self.path().join(".elevenlabs/mcpwatch")
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.audit().join(name)
    }

    /// Appends lines (each gets a `\n`).
    pub fn append(&self, name: &str, lines: &[String]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(name))
            .unwrap();
        let mut buf = String::new();
        for l in lines {
            buf.push_str(l);
            buf.push('\n');
        }
        f.write_all(buf.as_bytes()).unwrap();
    }

    /// The alert log's lines parsed as JSON.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.log("alerts.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn start(&self, extra: &[&str]) -> Daemon {
        self.start_with_env(extra, &[])
    }

    pub fn start_with_env(&self, extra: &[&str], envs: &[(&str, &str)]) -> Daemon {
        let _ = std::fs::remove_file(self.state().join("metrics.addr"));
        let stderr_path = self.path().join(format!(
            "daemon-{}.stderr",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let child = Command::new(BIN)
            .current_dir(self.path())
            .args(["run", "--metrics-addr", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let mut d = Daemon {
            child,
            addr: None,
            stderr_path,
        };
        let addr_file = self.state().join("metrics.addr");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(a) = std::fs::read_to_string(&addr_file)
                && !a.is_empty()
            {
                d.addr = Some(a);
                break;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("daemon exited early ({status}): {}", d.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(d.addr.is_some(), "daemon did not start: {}", d.stderr());
        d
    }
}

pub struct Daemon {
    pub child: Child,
    pub addr: Option<String>,
    pub stderr_path: PathBuf,
}

impl Daemon {
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// GET a path from the metrics endpoint: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr.as_deref().unwrap(), path)
    }

    /// The value of one metric series in `/metrics` (0 when absent).
    pub fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        metric_in(&body, series)
    }

    /// Waits until `cond` holds on `/metrics`, or panics after `secs`.
    pub fn wait_metric(&self, series: &str, at_least: f64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.metric(series);
            if v >= at_least {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} = {v}, wanted >= {at_least}\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and wait; returns (exit code, how long it took).
    pub fn terminate(mut self) -> (Option<i32>, Duration) {
        let t = Instant::now();
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s.code(), t.elapsed());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("daemon ignored SIGTERM: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

pub fn metric_in(body: &str, series: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A tool call line at `ts_ms` for `user`.
pub fn call_line(ts_ms: i64, user: &str, seq: u64) -> String {
    let ts = chrono::DateTime::from_timestamp_millis(ts_ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ");
    format!(
        r#"{{"ts":"{ts}","request_id":"r-{seq}","user_id":"{user}","agent_id":"ag-1","server_name":"calendar","tool_name":"calendar_read","outcome":"success","duration_ms":42}}"#
    )
}

/// A policy naming the tools the helpers write, so only planted anomalies fire.
pub const POLICY: &str = r#"{
  "approvalMode": "fine_grained",
  "rules": {
    "autoApproved": { "patterns": ["*_read"], "tools": ["calendar_read"] },
    "requiresApproval": { "patterns": ["*_send"], "tools": ["email_send"] },
    "disabled": { "patterns": ["admin_*"], "tools": [] }
  }
}"#;
