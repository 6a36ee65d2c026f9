//! Delivery through the real daemon (`mcpwatch run`): an outage with a
//! `kill -9` in the middle loses nothing, and a slow webhook delays neither
//! email nor detection. Real servers on 127.0.0.1 only.

use std::collections::BTreeSet;
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::support::daemon::{POLICY, Project, call_line};
use crate::support::delivery::{
    Receiver, Script, SmtpOptions, SmtpServer, email_toml, route_toml, webhook_toml,
};
use crate::support::wait_until;

/// 2026-11-20T12:00:00Z: in the past, at an ordinary hour (so only the
/// planted bursts alert).
const BASE: i64 = 1_795_176_000_000;
const SECRET_ENV: &str = "MCPWATCH_TEST_DAEMON_WEBHOOK_SECRET";
const SECRET: &str = "daemon-whsec-8Rt3";
const SMTP_PASS_ENV: &str = "MCPWATCH_TEST_DAEMON_SMTP_PASSWORD";
const SMTP_PASS: &str = "daemon-smtp-pass-2Wq6";
const SMTP_USER: &str = "alerts@example.com";

/// The daemon inherits this process's environment: set the secrets once,
/// before any thread reads the environment.
fn init_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| unsafe {
        std::env::set_var(SECRET_ENV, SECRET);
        std::env::set_var(SMTP_PASS_ENV, SMTP_PASS);
    });
}

/// Eleven calls by `user` within 10 s from `t`: one `rapid_tool_usage`.
fn burst(user: &str, t: i64, seq: &mut u64) -> Vec<String> {
    (0..11)
        .map(|i| {
            *seq += 1;
            call_line(t + i * 1000, user, *seq)
        })
        .collect()
}

fn project(settings: &str) -> Project {
    let p = Project::new();
    std::fs::write(p.path().join("security-config.json"), POLICY).unwrap();
    std::fs::write(p.path().join("mcpwatch.toml"), settings).unwrap();
    p
}

fn alert_ids(p: &Project) -> BTreeSet<String> {
    p.alerts()
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn outage_with_kill_9_and_restart_delivers_every_alert_signed() {
    init_env();
    let rx = Receiver::start(
        Some(SECRET),
        Script {
            fail_until: Some(Instant::now() + Duration::from_secs(8)),
            fail_status: 503,
            ..Default::default()
        },
    );
    let mut settings = webhook_toml("siem", &rx.url(), Some(SECRET_ENV), "5s");
    settings += &route_toml(&["siem"], "500ms");
    let p = project(&settings);
    let mut seq = 0;
    for (i, user) in ["u-1", "u-2", "u-3"].iter().enumerate() {
        p.append(
            "tool-usage.log",
            &burst(user, BASE + i as i64 * 60_000, &mut seq),
        );
    }
    let d = p.start(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || alert_ids(&p).len() == 3),
        "three alerts detected: {:?}\n{}",
        p.alerts(),
        d.stderr()
    );
    assert!(
        !rx.wait_hits(1, Duration::from_secs(10)).is_empty(),
        "a delivery was attempted during the outage"
    );
    assert!(rx.accepted().is_empty(), "still in the outage");
    d.kill9();

    // More alerts while the first ones wait in the outbox.
    p.append("tool-usage.log", &burst("u-4", BASE + 600_000, &mut seq));
    let d = p.start(&[]);
    let want = {
        assert!(
            wait_until(Duration::from_secs(20), || alert_ids(&p).len() == 4),
            "fourth alert detected after the restart: {}",
            d.stderr()
        );
        alert_ids(&p)
    };
    let delivered = || -> Vec<String> { rx.accepted().iter().flat_map(|h| h.ids()).collect() };
    assert!(
        wait_until(Duration::from_secs(45), || {
            delivered().into_iter().collect::<BTreeSet<_>>() == want
        }),
        "every alert arrives after the outage; got {:?} of {want:?}\n{}",
        delivered(),
        d.stderr()
    );
    for hit in rx.hits() {
        assert_eq!(hit.signature_ok, Some(true), "every request is signed");
    }
    std::thread::sleep(Duration::from_millis(500));
    let all = delivered();
    assert_eq!(all.len(), want.len(), "each alert accepted once: {all:?}");

    let (_, metrics) = d.get("/metrics");
    assert!(metrics.contains("mcpwatch_deliveries_total{channel=\"siem\",result=\"ok\"}"));
    let (code, took) = d.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10));
    for f in std::fs::read_dir(p.path()).unwrap().flatten() {
        if f.file_name().to_string_lossy().ends_with(".stderr") {
            let log = std::fs::read_to_string(f.path()).unwrap();
            assert!(!log.contains(SECRET), "secret in the daemon's log");
        }
    }
    assert!(!metrics.contains(SECRET));
}

#[test]
fn slow_webhook_delays_neither_email_nor_detection() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some((SMTP_USER.into(), SMTP_PASS.into())),
        ..Default::default()
    });
    let rx = Receiver::start(
        Some(SECRET),
        Script {
            delay: Duration::from_secs(10),
            ..Default::default()
        },
    );
    let mut settings = email_toml(
        "secops",
        smtp.port,
        Some((SMTP_USER, SMTP_PASS_ENV)),
        "security@example.com",
    );
    settings += &webhook_toml("siem", &rx.url(), Some(SECRET_ENV), "20s");
    settings += &route_toml(&["siem", "secops"], "500ms");
    let p = project(&settings);
    let mut seq = 0;
    p.append("tool-usage.log", &burst("u-1", BASE, &mut seq));
    let d = p.start(&[]);
    assert_eq!(
        smtp.wait_for(1, Duration::from_secs(15)).len(),
        1,
        "first email: {}",
        d.stderr()
    );
    // The webhook's first POST now hangs for 10 s.
    assert!(wait_until(Duration::from_secs(5), || {
        d.metric("mcpwatch_outbox_pending") >= 1.0
    }));
    let t0 = unix_now();
    let start = Instant::now();
    p.append("tool-usage.log", &burst("u-2", BASE + 120_000, &mut seq));
    assert!(
        wait_until(Duration::from_secs(5), || alert_ids(&p).len() == 2),
        "detection goes on"
    );
    let detected = start.elapsed();
    let mails = smtp.wait_for(2, Duration::from_secs(8));
    assert_eq!(mails.len(), 2, "second email while the webhook hangs");
    let mail_delay = mails[1].received() - t0;
    assert!(
        detected < Duration::from_secs(4),
        "detection took {detected:?}"
    );
    assert!(mail_delay < 5.0, "email took {mail_delay:.1}s");
    assert!(
        rx.hits().is_empty(),
        "the webhook has not answered yet, so it did not hold the email"
    );
    assert!(
        mails[1]
            .subject()
            .starts_with("[mcpwatch] MEDIUM rapid_tool_usage: ")
    );
    let (code, took) = d.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    for f in std::fs::read_dir(p.path()).unwrap().flatten() {
        if f.file_name().to_string_lossy().ends_with(".stderr") {
            let log = std::fs::read_to_string(f.path()).unwrap();
            assert!(!log.contains(SECRET) && !log.contains(SMTP_PASS));
        }
    }
}
