//! `[[channels.alertmanager]]` against a real Alertmanager (Debian's
//! `prometheus-alertmanager`, started here on a free loopback port with
//! its own configuration and storage, clustering off): the alert the
//! daemon raises shows in Alertmanager's own API with `alertname`,
//! `severity`, the key labels and the annotations, still active.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::daemon::{POLICY, Project, call_line, http_get};
use crate::support::wait_until;

const BIN: &str = "prometheus-alertmanager";
/// 2026-11-20T12:00:00Z: an ordinary hour in the past.
const BASE: i64 = 1_795_176_000_000;

struct Alertmanager {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_alertmanager() -> Option<Alertmanager> {
    if Command::new(BIN).arg("--version").output().is_err() {
        eprintln!("{BIN} is not installed here (.ci/run installs it); skipped");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(BIN)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let am = Alertmanager {
        child,
        addr,
        _dir: dir,
    };
    let ready = wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(&am.addr).is_ok() && http_get(&am.addr, "/-/ready").0 == 200
    });
    assert!(ready, "alertmanager did not start on {}", am.addr);
    Some(am)
}

#[test]
fn an_alert_reaches_a_real_alertmanager_with_its_labels_and_stays_active() {
    let Some(am) = start_alertmanager() else {
        return;
    };
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), POLICY).unwrap();
    std::fs::write(
        p.path().join("mcpwatch.toml"),
        format!(
            "[[channels.alertmanager]]\nname = \"am\"\nurls = [\"http://{}/\"]\n\n\
             [[routes]]\nchannels = [\"am\"]\nmin_severity = \"low\"\ngroup_wait = \"100ms\"\n",
            am.addr
        ),
    )
    .unwrap();
    // Eleven calls in ten seconds, three days ago: one rapid_tool_usage,
    // sent long after its ts (endsAt must still be in the future).
    let lines: Vec<String> = (0..11)
        .map(|i| call_line(BASE + i * 1000, "u-1", i as u64))
        .collect();
    p.append("tool-usage.log", &lines);
    let d = p.start(&[]);
    let alerts = || -> Vec<serde_json::Value> {
        let (code, body) = http_get(&am.addr, "/api/v2/alerts");
        if code != 200 {
            return Vec::new();
        }
        serde_json::from_str::<Vec<serde_json::Value>>(&body).unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(20), || !alerts().is_empty()),
        "no alert in Alertmanager\n{}",
        d.stderr()
    );
    let got = alerts();
    assert_eq!(got.len(), 1, "{got:?}");
    let a = &got[0];
    assert_eq!(a["labels"]["alertname"], "rapid_tool_usage");
    assert_eq!(a["labels"]["severity"], "medium");
    assert_eq!(a["labels"]["user_id"], "u-1");
    assert!(
        a["labels"]["instance"]
            .as_str()
            .is_some_and(|h| !h.is_empty())
    );
    assert_eq!(
        a["annotations"]["summary"],
        "user u-1 made 11 tool calls in 60s (threshold 10)"
    );
    let id = p.alerts()[0]["id"].as_str().unwrap().to_string();
    assert_eq!(a["annotations"]["id"], id.as_str());
    assert_eq!(a["annotations"]["evidence"], "tool-usage.log:11");
    assert_eq!(a["status"]["state"], "active", "not resolved on arrival");
    assert_eq!(a["startsAt"], "2026-11-20T12:00:10.000Z");
    let ends = chrono::DateTime::parse_from_rfc3339(a["endsAt"].as_str().unwrap()).unwrap();
    assert!(ends > chrono::Utc::now(), "endsAt {ends} is in the future");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}
