//! `mcpwatch outbox [retry [--dead] [ID...]]` end to end (SPEC §7, §9):
//! the real binary, the real daemon and a webhook receiver on 127.0.0.1
//! that refuses (HTTP 400, a permanent error: dead at the first attempt)
//! until the test fixes it. A dead letter is listed with the receiver's
//! answer, put back, and delivered exactly once under its group's
//! `Idempotency-Key`: with the daemon stopped (applied directly) and
//! while it runs (it takes the request without a restart).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::daemon::{BIN, Daemon, POLICY, Project, call_line};
use crate::support::delivery::{Receiver, Script, route_toml, webhook_toml};
use crate::support::wait_until;

/// 2026-11-20T12:00:00Z: an ordinary hour, so only the planted bursts alert.
const BASE: i64 = 1_795_176_000_000;

/// Eleven calls by `user` within 10 s: one `rapid_tool_usage`.
fn burst(p: &Project, user: &str, t: i64) {
    let lines: Vec<String> = (0..11)
        .map(|i| call_line(t + i * 1000, user, (t / 1000 + i) as u64))
        .collect();
    p.append("tool-usage.log", &lines);
}

fn settings(channel: &str, url: &str) -> String {
    webhook_toml(channel, url, None, "5s") + &route_toml(&[channel], "200ms")
}

/// A project whose `siem` webhook is `rx`, refusing with 400 for now.
fn project(rx: &Receiver) -> Project {
    rx.set_script(Script {
        status: 400,
        answer: "bad payload".into(),
        ..Default::default()
    });
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), POLICY).unwrap();
    std::fs::write(p.path().join("mcpwatch.toml"), settings("siem", &rx.url())).unwrap();
    p
}

fn dead_letters(p: &Project) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p.state().join("dead-letter.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Starts the daemon, plants one alert and waits for its dead letter;
/// returns the daemon and the alert's id.
fn one_dead_letter(p: &Project, rx: &Receiver) -> (Daemon, String) {
    let d = p.start(&[]);
    burst(p, "u-1", BASE);
    assert!(
        wait_until(Duration::from_secs(20), || dead_letters(p).len() == 1),
        "the refused alert is dead: {:?}\n{}",
        rx.hits(),
        d.stderr()
    );
    let id = dead_letters(p)[0]["group"].as_str().unwrap().to_string();
    assert_eq!(p.alerts()[0]["id"], id.as_str());
    (d, id)
}

/// `mcpwatch outbox ARGS` in the project: (exit code, stdout, stderr).
fn outbox(p: &Project, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .current_dir(p.path())
        .arg("outbox")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn listing(p: &Project) -> Vec<serde_json::Value> {
    let (code, out, err) = outbox(p, &["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// Every file of the state directory but the lock, with its bytes.
fn state_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.file_name() != "lock" {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The hits the receiver accepted, as (Idempotency-Key, alert ids).
fn accepted(rx: &Receiver) -> Vec<(String, Vec<String>)> {
    rx.accepted()
        .iter()
        .map(|h| {
            (
                h.header("idempotency-key").unwrap_or("").to_string(),
                h.ids(),
            )
        })
        .collect()
}

#[test]
fn a_dead_letter_is_listed_requeued_while_stopped_and_delivered_once() {
    let rx = Receiver::start(None, Script::default());
    let p = project(&rx);
    let (d, id) = one_dead_letter(&p, &rx);
    assert_eq!(d.terminate().0, Some(0));

    let entries = listing(&p);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["channel"], "siem");
    assert_eq!(e["state"], "dead");
    assert_eq!(e["group"], id.as_str());
    assert_eq!(e["alerts"], serde_json::json!([id]));
    assert_eq!(e["rule"], "rapid_tool_usage");
    assert_eq!(e["severity"], "medium");
    assert_eq!(e["attempts"], 1);
    assert_eq!(e["reason"], "permanent");
    assert_eq!(e["last_error"], "HTTP 400 Bad Request: bad payload");
    assert_eq!(e["died"], dead_letters(&p)[0]["ts"]);
    let (code, table, _) = outbox(&p, &[]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("CHANNEL  STATE             GROUP"),
        "{table}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "siem     dead (permanent)  {id}  1       rapid_tool_usage  medium    1 "
        )),
        "{table}"
    );
    assert!(
        lines[1].ends_with("  HTTP 400 Bad Request: bad payload"),
        "{table}"
    );

    rx.set_script(Script::default());
    let (code, out, err) = outbox(&p, &["retry", "--dead", &id]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        format!("requeued: siem {id} (1 alert, rapid_tool_usage medium)\n")
    );
    assert!(dead_letters(&p).is_empty(), "out of the dead letters");
    let entries = listing(&p);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["state"], "pending");
    assert_eq!(entries[0]["attempts"], 0);
    assert_eq!(entries[0]["last_error"], serde_json::Value::Null);

    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || !rx.accepted().is_empty()),
        "delivered after the restart: {}",
        d.stderr()
    );
    assert!(wait_until(Duration::from_secs(10), || listing(&p).is_empty()));
    assert_eq!(outbox(&p, &[]).1, "nothing pending, no dead letters\n");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(accepted(&rx), vec![(id.clone(), vec![id.clone()])], "once");
    let hits = rx.hits();
    assert_eq!(hits.len(), 2, "the refused attempt and the accepted one");
    assert_eq!(hits[0].header("idempotency-key"), Some(id.as_str()));
    assert_eq!(d.terminate().0, Some(0));
}

#[test]
fn a_running_daemon_takes_a_retry_without_restart_and_a_listing_disturbs_nothing() {
    let rx = Receiver::start(None, Script::default());
    let p = project(&rx);
    let (d, id) = one_dead_letter(&p, &rx);
    d.wait_metric("mcpwatch_dead_letters_total{channel=\"siem\"}", 1.0, 10);
    assert_eq!(
        d.metric("mcpwatch_outbox_requeued_total{channel=\"siem\",from=\"dead\"}"),
        0.0
    );

    // Listing beside the running daemon reads and writes nothing of its.
    let before = state_files(&p.state());
    let (code, table, err) = outbox(&p, &[]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        table.contains(&format!("siem     dead (permanent)  {id}")),
        "{table}"
    );
    assert_eq!(
        state_files(&p.state()),
        before,
        "the listing changed the state"
    );

    rx.set_script(Script::default());
    let (code, out, err) = outbox(&p, &["retry", "--dead"]);
    assert_eq!((code, err.as_str()), (0, ""), "{}", d.stderr());
    assert_eq!(
        out,
        format!(
            "requeued: siem {id} (1 alert, rapid_tool_usage medium)\napplied by the running daemon\n"
        )
    );
    assert!(
        wait_until(Duration::from_secs(20), || !rx.accepted().is_empty()),
        "the running daemon delivers it: {}",
        d.stderr()
    );
    assert_eq!(
        d.metric("mcpwatch_outbox_requeued_total{channel=\"siem\",from=\"dead\"}"),
        1.0
    );
    // A new alert still goes out as usual.
    burst(&p, "u-2", BASE + 120_000);
    assert!(
        wait_until(Duration::from_secs(20), || rx.accepted().len() == 2),
        "{}",
        d.stderr()
    );
    assert!(wait_until(Duration::from_secs(10), || listing(&p).is_empty()));
    std::thread::sleep(Duration::from_millis(1500));
    let got = accepted(&rx);
    assert_eq!(got.len(), 2, "each once: {got:?}");
    assert_eq!(got[0], (id.clone(), vec![id.clone()]));
    assert_ne!(got[1].0, id);
    assert!(
        !p.state()
            .join("outbox/requests")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "the request is gone"
    );
    assert_eq!(d.terminate().0, Some(0));
}

#[test]
fn a_retry_of_an_unknown_id_or_a_removed_channel_is_refused_and_changes_nothing() {
    let rx = Receiver::start(None, Script::default());
    let p = project(&rx);
    let (d, id) = one_dead_letter(&p, &rx);
    assert_eq!(d.terminate().0, Some(0));
    let before = state_files(&p.state());

    let (code, out, err) = outbox(&p, &["retry", "--dead", "0badc0de"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "mcpwatch outbox: refused, nothing changed:\n  0badc0de: no dead letter has this group or alert id\n"
    );
    let (code, _, err) = outbox(&p, &["retry", &id]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "mcpwatch outbox: refused, nothing changed:\n  {id}: not pending but a dead letter (retry it with --dead)\n"
        )
    );

    // The channel is renamed: its dead letter has nowhere to go.
    std::fs::write(p.path().join("mcpwatch.toml"), settings("soc", &rx.url())).unwrap();
    for args in [
        vec!["retry", "--dead", id.as_str()],
        vec!["retry", "--dead"],
    ] {
        let (code, out, err) = outbox(&p, &args);
        assert_eq!((code, out.as_str()), (2, ""));
        assert_eq!(
            err,
            format!(
                "mcpwatch outbox: refused, nothing changed:\n  dead {id}: channel \"siem\": \
                 refused while no channel of that name exists (configured: soc)\n"
            )
        );
    }
    assert_eq!(state_files(&p.state()), before, "nothing changed");
    assert_eq!(listing(&p)[0]["state"], "dead");
    assert_eq!(rx.hits().len(), 1, "no attempt since");
}

#[test]
fn a_retry_interrupted_before_its_request_is_removed_delivers_once_after_restart() {
    let rx = Receiver::start(None, Script::default());
    let p = project(&rx);
    let (d, id) = one_dead_letter(&p, &rx);
    assert_eq!(d.terminate().0, Some(0));
    let dead_file = p.state().join("dead-letter.ndjson");
    let dead_line = std::fs::read(&dead_file).unwrap();
    let died = dead_letters(&p)[0]["ts"].as_str().unwrap().to_string();

    rx.set_script(Script::default());
    let (code, _, err) = outbox(&p, &["retry", "--dead", &id]);
    assert_eq!(code, 0, "{err}");
    // What a kill -9 right after the requeue was journaled leaves: the
    // dead letter still in its file and the request not yet removed.
    std::fs::write(&dead_file, &dead_line).unwrap();
    let requests = p.state().join("outbox/requests");
    std::fs::create_dir_all(&requests).unwrap();
    let request = serde_json::json!({"dead": [{"channel": "siem", "group": id, "ts": died}]});
    std::fs::write(requests.join("000000000000001-1.json"), request.to_string()).unwrap();

    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || !rx.accepted().is_empty()),
        "{}",
        d.stderr()
    );
    assert!(wait_until(Duration::from_secs(10), || listing(&p).is_empty()));
    assert!(!requests.read_dir().unwrap().any(|_| true), "request done");
    // The same again while the daemon runs, after the delivery (as if
    // taking the dead letter out had failed, e.g. on a full disk): the
    // request is applied once more and queues nothing.
    std::fs::write(&dead_file, &dead_line).unwrap();
    std::fs::write(requests.join("000000000000002-1.json"), request.to_string()).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !requests
            .read_dir()
            .unwrap()
            .any(|_| true)),
        "{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(accepted(&rx), vec![(id.clone(), vec![id.clone()])], "once");
    assert!(dead_letters(&p).is_empty());
    assert!(listing(&p).is_empty());
    assert_eq!(d.terminate().0, Some(0));
}
