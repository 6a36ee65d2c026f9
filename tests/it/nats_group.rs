//! SPEC §10's high availability against real `nats-server`s and a real
//! webhook receiver: `run --input nats://… --group NAME` instances, one
//! holding the group's lease and detecting, the others standing by; the
//! checkpoint pointer fenced by revision; `MCPWATCH_ALERTS` as the
//! group's outbox; and the active instance killed with `kill -9`.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use async_nats::jetstream;

use crate::nats::{
    Forwarder, assert_said, call, detector, events_read, now_ms, rt, stop_cleanly, stream_len,
    write_live,
};
use crate::support::daemon::{BIN, Daemon, Project, signal};
use crate::support::delivery::{Hit, Receiver, Script, route_toml, webhook_toml};
use crate::support::nats::{NatsCluster, NatsServer};
use crate::support::{assert_logs, wait_until};

/// A detector project whose alerts go to `rx` at once (no grouping).
fn detector_project(rx: &Receiver) -> Project {
    let p = Project::new();
    let mut settings = webhook_toml("siem", &rx.url(), None, "5s");
    settings += &route_toml(&["siem"], "0s");
    std::fs::write(p.path().join("mcpwatch.toml"), settings).unwrap();
    p
}

/// `run --input <url> --group <group>` with `extra` flags.
fn member(p: &Project, url: &str, group: &str, extra: &[&str]) -> Daemon {
    let mut args = vec!["--group", group];
    args.extend_from_slice(extra);
    detector(p, url, &args)
}

fn active(d: &Daemon) -> bool {
    d.metric("mcpwatch_group_active") == 1.0
}

/// The group's checkpoint pointer as the bucket holds it: (revision, value).
fn pointer(url: &str, group: &str) -> Option<(u64, serde_json::Value)> {
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let kv = js
            .get_key_value(format!("mcpwatch_{group}_checkpoint"))
            .await
            .ok()?;
        let e = kv.entry("pointer").await.ok()??;
        Some((e.revision, serde_json::from_slice(&e.value).unwrap()))
    })
}

/// Alert ids the receiver accepted, each with the `Idempotency-Key`s of
/// the requests that carried it.
fn delivered(hits: &[Hit]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in hits {
        let key = h.header("Idempotency-Key").unwrap_or_default().to_string();
        for id in h.ids() {
            out.entry(id).or_default().push(key.clone());
        }
    }
    out
}

#[test]
fn group_without_a_nats_input_is_a_usage_error() {
    let p = Project::new();
    let out = Command::new(BIN)
        .current_dir(p.path())
        .args(["run", "--group", "g1"])
        .env_remove("MCPWATCH_INPUT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_said(&String::from_utf8_lossy(&out.stderr), "--input <URL>");
    let out = Command::new(BIN)
        .current_dir(p.path())
        .args([
            "run",
            "--input",
            "nats://127.0.0.1:1",
            "--group",
            "a.b",
            "--metrics-addr",
            "off",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_said(
        &String::from_utf8_lossy(&out.stderr),
        "mcpwatch run: --group \"a.b\": a group name is 1 to 64 of A-Z, a-z, 0-9, _ and -",
    );
}

#[test]
fn the_standby_neither_detects_nor_delivers_while_the_active_holds_the_lease() {
    let server = NatsServer::start();
    let url = server.url();
    let rx = Receiver::start(None, Script::default());
    let (pa, pb) = (detector_project(&rx), detector_project(&rx));
    let a = member(&pa, &url, "g1", &["--allowed-lateness", "1s"]);
    assert!(
        wait_until(Duration::from_secs(20), || active(&a)),
        "{}",
        a.stderr()
    );
    let b = member(&pb, &url, "g1", &["--allowed-lateness", "1s"]);
    assert!(
        wait_until(Duration::from_secs(10), || b.stderr().contains(
            "standing by in group g1: another instance holds the lease"
        )),
        "{}",
        b.stderr()
    );
    // A burst of 11 calls of one user within 11 s.
    let agent = Project::new();
    let t = now_ms() - 20_000;
    let lines: Vec<String> = (0..11)
        .map(|i| call(t + i * 1_000, "u-7", i as usize))
        .collect();
    agent.append("tool-usage.log", &lines);
    let mut f = Forwarder::start(&agent, &url, "h1", &[]);
    assert!(
        wait_until(Duration::from_secs(30), || pa.alerts().iter().any(
            |a| a["rule"] == "rapid_tool_usage" && a["key"]["user_id"] == "u-7"
        )),
        "{}",
        a.stderr()
    );
    let raised: Vec<String> = pa
        .alerts()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        wait_until(Duration::from_secs(10), || delivered(&rx.accepted())
            .into_keys()
            .collect::<Vec<_>>()
            .len()
            == raised.len()),
        "{}",
        a.stderr()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(events_read(&a), 11);
    assert_eq!(events_read(&b), 0, "the standby read nothing");
    assert!(pb.alerts().is_empty(), "the standby raised nothing");
    assert!(!active(&b));
    let once: BTreeMap<String, Vec<String>> = raised
        .iter()
        .map(|id| (id.clone(), vec![id.clone()]))
        .collect();
    assert_eq!(
        delivered(&rx.hits()),
        once,
        "each alert delivered once, by the active one (its own Idempotency-Key: no grouping)"
    );
    assert_eq!(
        stream_len(&url, "MCPWATCH_ALERTS"),
        raised.len() as u64,
        "the alerts are in the group's outbox stream"
    );
    // A clean stop hands the lease over at once; the new holder resumes
    // from the checkpoint and raises and delivers nothing again.
    stop_cleanly(a);
    assert!(
        wait_until(Duration::from_secs(5), || active(&b)
            && b.stderr().contains("resuming from the group's checkpoint")),
        "{}",
        b.stderr()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(events_read(&b), 0, "nothing read twice");
    assert!(pb.alerts().is_empty());
    assert_eq!(delivered(&rx.hits()), once, "nothing delivered again");
    assert!(f.stop().success());
    stop_cleanly(b);
}

#[test]
fn a_fenced_instance_cannot_write_the_checkpoint_pointer_and_steps_down() {
    let server = NatsServer::start();
    let url = server.url();
    let rx = Receiver::start(None, Script::default());
    let p = detector_project(&rx);
    let d = member(&p, &url, "g2", &["--allowed-lateness", "1s"]);
    assert!(
        wait_until(Duration::from_secs(20), || active(&d)),
        "{}",
        d.stderr()
    );
    let agent = Project::new();
    let mut f = Forwarder::start(&agent, &url, "h1", &[]);
    agent.append("tool-usage.log", &[call(now_ms() - 10_000, "u-1", 1)]);
    assert!(
        wait_until(Duration::from_secs(20), || pointer(&url, "g2")
            .is_some_and(|(_, v)| v["seq"] == 1)),
        "the active instance checkpoints to the group\n{}",
        d.stderr()
    );
    let (rev, mut value) = pointer(&url, "g2").unwrap();
    let term = value["term"].as_u64().unwrap();
    // Another holder claims the pointer (as a new lease holder would).
    value["term"] = (term + 1).into();
    value["holder"] = "test:1:claimed".into();
    let claimed = value.clone();
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(&url).await.unwrap());
        let kv = js.get_key_value("mcpwatch_g2_checkpoint").await.unwrap();
        kv.update("pointer", serde_json::to_vec(&claimed).unwrap().into(), rev)
            .await
            .unwrap();
    });
    // More lines: the instance tries to move its checkpoint, and is refused.
    agent.append("tool-usage.log", &[call(now_ms() - 5_000, "u-2", 2)]);
    assert_logs(
        Duration::from_secs(20),
        "lost the lease of group g2: fenced",
        || d.stderr(),
    );
    assert!(!active(&d), "stopped detecting");
    assert_eq!(
        pointer(&url, "g2").unwrap().1,
        claimed,
        "the stale write did not land"
    );
    // Once its own lease key expires it takes the lease again, as a
    // standby would, and claims the pointer with a later term.
    assert!(
        wait_until(Duration::from_secs(20), || active(&d)),
        "{}",
        d.stderr()
    );
    let (_, now) = pointer(&url, "g2").unwrap();
    assert!(now["term"].as_u64().unwrap() > term + 1, "{now}");
    assert_ne!(now["holder"], "test:1:claimed");
    assert_eq!(d.metric("mcpwatch_group_takeovers_total"), 2.0);
    assert!(f.stop().success());
    stop_cleanly(d);
}

/// The acceptance test of SPEC §10's fail-over: live traffic from two
/// hosts with bursts split across them, two members of a group on a
/// three-node cluster, the active one killed with `kill -9` mid-traffic.
#[test]
fn the_active_detector_killed_9_fails_over_with_every_burst_alerted_and_none_delivered_twice() {
    let cluster = NatsCluster::start();
    let url = cluster.url();
    // The test's own client talks to one node (the cluster serves all).
    let node = cluster.nodes[0].url();
    let rx = Receiver::start(None, Script::default());
    let (pa, pb) = (detector_project(&rx), detector_project(&rx));
    let flags = ["--allowed-lateness", "5s", "--replicas", "3"];
    let mut first = Some(member(&pa, &url, "ha", &flags));
    assert!(
        wait_until(Duration::from_secs(30), || first
            .as_ref()
            .is_some_and(active)),
        "{}",
        first.as_ref().unwrap().stderr()
    );
    let second = member(&pb, &url, "ha", &flags);
    // Two hosts log quiet calls stamped as they are written (about 8 s in
    // all); every 400 lines a user's burst of 11 calls is split, 6 on h1
    // and 5 on h2 (20 bursts, none visible to one host alone).
    let (ha, hb) = (Project::new(), Project::new());
    let t = now_ms();
    let (mut la, mut lb) = (Vec::new(), Vec::new());
    let mut want: Vec<String> = Vec::new();
    for i in 0..8_000usize {
        let ts = t + i as i64;
        if i % 400 == 200 {
            let u = format!("burst-{i}");
            for j in 0..11 {
                let l = call(ts + j, &u, 100_000 + i * 11 + j as usize);
                if j < 6 { la.push(l) } else { lb.push(l) }
            }
            want.push(u);
        }
        la.push(call(ts, &format!("qa-{i}"), i));
        lb.push(call(ts + 1, &format!("qb-{i}"), 50_000 + i));
    }
    let total = (la.len() + lb.len()) as u64;
    let mut fa = Forwarder::start(&ha, &url, "h1", &["--replicas", "3"]);
    let mut fb = Forwarder::start(&hb, &url, "h2", &["--replicas", "3"]);
    let write = |p: &Project, lines: Vec<String>| {
        write_live(
            p.log("tool-usage.log"),
            lines,
            200,
            Duration::from_millis(200),
        )
    };
    let (wa, wb) = (write(&ha, la), write(&hb, lb));
    // Kill the active one once it has alerted some bursts (some delivered,
    // more on their way) and the traffic goes on.
    let first_d = first.take().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || rx.accepted().len() >= 4),
        "{}",
        first_d.stderr()
    );
    assert!(!active(&second), "one holder at a time");
    let before_kill = rx.accepted().len();
    first_d.kill9();
    assert!(
        wait_until(Duration::from_secs(20), || active(&second)),
        "{}",
        second.stderr()
    );
    wa.join().unwrap();
    wb.join().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || stream_len(
            &node,
            "MCPWATCH_AUDIT"
        ) == total),
        "{} of {total} in the stream\n{}\n{}",
        stream_len(&node, "MCPWATCH_AUDIT"),
        fa.stderr(),
        fb.stderr()
    );
    // Every burst delivered; alerts the killed one held undelivered come
    // to the new holder after the stream's ack wait (15 s).
    let burst_users = || -> Vec<String> {
        let mut users: Vec<String> = rx
            .accepted()
            .iter()
            .flat_map(|h| h.json()["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["rule"] == "rapid_tool_usage")
            .map(|a| a["key"]["user_id"].as_str().unwrap().to_string())
            .collect();
        users.sort();
        users.dedup();
        users
    };
    want.sort();
    assert!(
        wait_until(Duration::from_secs(90), || burst_users() == want),
        "{} hits before the kill, {} now\n{}",
        before_kill,
        rx.accepted().len(),
        second.stderr()
    );
    std::thread::sleep(Duration::from_secs(20));
    let got = delivered(&rx.accepted());
    let twice: Vec<_> = got.iter().filter(|(_, keys)| keys.len() > 1).collect();
    println!(
        "{before_kill} requests before the kill, {} after; {} alerts, {} delivered twice",
        rx.accepted().len() - before_kill,
        got.len(),
        twice.len()
    );
    assert!(
        twice.len() <= 1,
        "at most one alert delivered twice (the kill mid-delivery): {twice:?}"
    );
    for (id, keys) in &twice {
        assert_eq!(keys.len(), 2, "{id}: {keys:?}");
        assert_eq!(
            keys[0], keys[1],
            "a duplicate carries the same Idempotency-Key"
        );
    }
    // What the group raised: each alert in one alert log only, and every
    // burst among them.
    let mut ids: Vec<String> = pa
        .alerts()
        .iter()
        .chain(pb.alerts().iter())
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no alert logged twice across the group");
    let mut bursts: Vec<String> = pa
        .alerts()
        .iter()
        .chain(pb.alerts().iter())
        .filter(|a| a["rule"] == "rapid_tool_usage")
        .map(|a| a["key"]["user_id"].as_str().unwrap().to_string())
        .collect();
    bursts.sort();
    assert_eq!(bursts, want, "every burst alerted once");
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        ids,
        "every alert raised was delivered"
    );
    assert_eq!(
        stream_len(&node, "MCPWATCH_ALERTS"),
        ids.len() as u64,
        "each alert once in the group's outbox"
    );
    // The new holder took every line: its checkpoint is at the stream's end.
    assert!(
        wait_until(Duration::from_secs(10), || pointer(&node, "ha")
            .is_some_and(|(_, p)| p["seq"] == total)),
        "{:?}",
        pointer(&node, "ha")
    );
    assert!(fa.stop().success());
    assert!(fb.stop().success());
    stop_cleanly(second);
}

#[test]
fn a_holder_paused_past_its_lease_steps_down_when_it_wakes_and_writes_nothing() {
    let server = NatsServer::start();
    let url = server.url();
    let rx = Receiver::start(None, Script::default());
    let (pa, pb, pc) = (
        detector_project(&rx),
        detector_project(&rx),
        detector_project(&rx),
    );
    let agent = Project::new();
    let mut f = Forwarder::start(&agent, &url, "h1", &[]);
    agent.append("tool-usage.log", &[call(now_ms() - 10_000, "u-1", 1)]);
    let a = member(&pa, &url, "g3", &["--allowed-lateness", "1s"]);
    assert!(
        wait_until(Duration::from_secs(20), || pointer(&url, "g3")
            .is_some_and(|(_, v)| v["seq"] == 1)),
        "{}",
        a.stderr()
    );
    let b = member(&pb, &url, "g3", &["--allowed-lateness", "1s"]);
    assert_logs(Duration::from_secs(10), "standing by in group g3", || {
        b.stderr()
    });
    // A stops renewing (paused): its key expires, B takes over.
    signal(a.child.id(), "STOP");
    assert!(
        wait_until(Duration::from_secs(15), || active(&b)
            && b.stderr().contains("resuming from the group's checkpoint")),
        "{}",
        b.stderr()
    );
    let (_, taken) = pointer(&url, "g3").unwrap();
    assert!(
        taken["holder"]
            .as_str()
            .unwrap()
            .contains(&b.child.id().to_string())
    );
    // More lines for B while A sleeps; then A wakes with lines of its own
    // to checkpoint, and stands by without writing.
    agent.append("tool-usage.log", &[call(now_ms() - 5_000, "u-2", 2)]);
    assert!(
        wait_until(Duration::from_secs(20), || pointer(&url, "g3")
            .is_some_and(|(_, v)| v["seq"] == 2)),
        "{}",
        b.stderr()
    );
    signal(a.child.id(), "CONT");
    assert_logs(
        Duration::from_secs(10),
        "lost the lease of group g3",
        || a.stderr(),
    );
    assert!(!active(&a));
    assert!(active(&b));
    std::thread::sleep(Duration::from_secs(2));
    let (_, now) = pointer(&url, "g3").unwrap();
    assert_eq!(now["holder"], taken["holder"], "the pointer is still B's");
    assert_eq!(now["seq"], 2);
    assert_eq!(events_read(&a), 1, "A read nothing after it woke");
    assert_eq!(
        events_read(&b),
        1,
        "B read the one line after A's checkpoint"
    );
    // A third member stands by, and a standby stops cleanly on SIGTERM.
    let c = member(&pc, &url, "g3", &["--allowed-lateness", "1s"]);
    assert_logs(Duration::from_secs(10), "standing by in group g3", || {
        c.stderr()
    });
    stop_cleanly(c);
    assert!(f.stop().success());
    stop_cleanly(b);
    stop_cleanly(a);
}

#[test]
fn a_reload_with_new_channels_keeps_the_active_instance_delivering_from_the_stream() {
    let server = NatsServer::start();
    let url = server.url();
    let (rx1, rx2) = (
        Receiver::start(None, Script::default()),
        Receiver::start(None, Script::default()),
    );
    let p = detector_project(&rx1);
    let d = member(&p, &url, "g4", &["--allowed-lateness", "1s"]);
    let agent = Project::new();
    let mut f = Forwarder::start(&agent, &url, "h1", &[]);
    let burst = |user: &str, from: i64| -> Vec<String> {
        (0..11)
            .map(|i| call(from + i * 1_000, user, i as usize))
            .collect()
    };
    let rapid_for = |rx: &Receiver, user: &str| {
        rx.accepted().iter().any(|h| {
            h.json()["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|a| a["rule"] == "rapid_tool_usage" && a["key"]["user_id"] == user)
            })
        })
    };
    agent.append("tool-usage.log", &burst("u-1", now_ms() - 40_000));
    assert!(
        wait_until(Duration::from_secs(30), || rapid_for(&rx1, "u-1")),
        "{}",
        d.stderr()
    );
    let mut settings = webhook_toml("siem2", &rx2.url(), None, "5s");
    settings += &route_toml(&["siem2"], "0s");
    std::fs::write(p.path().join("mcpwatch.toml"), settings).unwrap();
    signal(d.child.id(), "HUP");
    assert_logs(Duration::from_secs(10), "configuration reloaded", || {
        d.stderr()
    });
    agent.append("tool-usage.log", &burst("u-2", now_ms() - 20_000));
    assert!(
        wait_until(Duration::from_secs(30), || rapid_for(&rx2, "u-2")),
        "{}",
        d.stderr()
    );
    assert!(!rapid_for(&rx1, "u-2"), "the old channel is gone");
    assert!(active(&d));
    assert!(f.stop().success());
    stop_cleanly(d);
}
