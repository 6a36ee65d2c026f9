//! Alert delivery (SPEC §5) against real servers on 127.0.0.1: an aiosmtpd
//! SMTP server and an axum webhook receiver. Drives the library's delivery
//! core directly (the daemon's way in), so each test states one rule.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::delivery::{
    HOOK_SECRET, Receiver, RefusingPort, SMTP_PASS, SMTP_PASS_ENV, SMTP_USER, Script, SmtpOptions,
    SmtpServer, WRONG_PASS, WRONG_PASS_ENV, email_channel, init_env, webhook_channel,
};
use mcpwatch::alert::delivery::{Delivery, DeliveryHandle, DeliveryOptions};
use mcpwatch::alert::outbox::Backoff;
use mcpwatch::alert::router::DeliveryConfig;
use mcpwatch::alert::{Alert, Evidence, alert_id};
use mcpwatch::config::Route;
use mcpwatch::event::Severity;
use mcpwatch::metrics::Metrics;
use tokio::task::JoinHandle;

fn alert(rule: &str, severity: Severity, user: &str, tool: &str, line: u64) -> Alert {
    let key: BTreeMap<String, String> = [
        ("tool_name".to_string(), tool.to_string()),
        ("user_id".to_string(), user.to_string()),
    ]
    .into();
    let raw = format!(
        "{{\"ts\":\"2026-11-23T14:03:07.412Z\",\"user_id\":{user:?},\"tool_name\":{tool:?},\"n\":{line}}}"
    );
    Alert {
        id: alert_id(rule, &key, raw.as_bytes()),
        rule: rule.to_string(),
        severity,
        ts: "2026-11-23T14:03:07.412Z".to_string(),
        key,
        value: None,
        threshold: None,
        window: None,
        suppressed: 0,
        message: format!("user {user} called {tool}"),
        evidence: vec![Evidence {
            file: "tool-usage.log".to_string(),
            line,
            request_id: Some(format!("r-{line}")),
        }],
        line_fields: Default::default(),
    }
}

fn route(channels: &[&str], group_wait: i64) -> Route {
    Route {
        channels: channels.iter().map(|s| s.to_string()).collect(),
        min_severity: Severity::Low,
        rules: vec![],
        group_wait,
    }
}

fn fast_backoff() -> DeliveryOptions {
    DeliveryOptions {
        backoff: Backoff {
            base: 100,
            max: 400,
        },
        ..Default::default()
    }
}

fn start(
    cfg: &DeliveryConfig,
    state: &Path,
    opts: DeliveryOptions,
) -> (DeliveryHandle, JoinHandle<()>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let (h, j) = Delivery::start_with(cfg, state, metrics.clone(), opts).expect("start delivery");
    (h, j, metrics)
}

/// Polls (without blocking the runtime) until `f` holds.
async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

fn dead_letters(state: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(state.join("dead-letter.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("dead letter is JSON"))
        .collect()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_subject_body_and_headers_as_received() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some((SMTP_USER.into(), SMTP_PASS.into())),
        ..Default::default()
    });
    let state = tempfile::tempdir().unwrap();
    let cfg = DeliveryConfig {
        email: vec![email_channel("secops", smtp.port, SMTP_PASS_ENV)],
        routes: vec![route(&["secops"], 300)],
        ..Default::default()
    };
    let (h, _j, m) = start(&cfg, state.path(), DeliveryOptions::default());
    let a = alert(
        "rapid_tool_usage",
        Severity::Medium,
        "u-42",
        "email_send",
        12,
    );
    let b = alert("disabled_tool", Severity::Critical, "u-7", "delete_all", 13);
    h.submit(&a).unwrap();
    h.submit(&b).unwrap();
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1, "one message for the group");
    let mail = &mails[0];
    assert_eq!(
        mail.subject(),
        "[mcpwatch] CRITICAL disabled_tool: user u-7 called delete_all (+1 more)"
    );
    assert_eq!(mail.header("From"), vec!["mcpwatch@example.com"]);
    assert_eq!(mail.header("To"), vec!["security@example.com"]);
    assert_eq!(mail.rcpt_tos(), vec!["security@example.com"]);
    assert_eq!(mail.json["auth_login"], SMTP_USER);
    assert!(mail.header("Content-Type")[0].starts_with("text/plain"));
    assert!(
        mail.header("Message-ID")[0].starts_with(&format!("<{}.", a.id)),
        "Message-ID carries the group id: {:?}",
        mail.header("Message-ID")
    );
    let body = mail.body();
    for needle in [
        "1. [MEDIUM] rapid_tool_usage",
        "2. [CRITICAL] disabled_tool",
        "What happened: user u-42 called email_send",
        "Key:           tool_name=email_send, user_id=u-42",
        "When:          2026-11-23T14:03:07.412Z (event time)",
        "Evidence:      tool-usage.log:12 (request_id r-12)",
        "Evidence:      tool-usage.log:13 (request_id r-13)",
        "What to check: A disabled tool ran",
        &format!("Alert id:      {}", b.id),
    ] {
        assert!(body.contains(needle), "body lacks {needle:?}:\n{body}");
    }
    assert!(
        eventually(Duration::from_secs(2), || h.pending() == 0).await,
        "outbox drained"
    );
    assert_eq!(
        m.counter(
            "mcpwatch_deliveries_total",
            &[("channel", "secops"), ("result", "ok")]
        ),
        1
    );
    assert_eq!(m.gauge("mcpwatch_outbox_pending", &[]), 0.0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_and_bcc_in_user_and_tool_names_add_no_header() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions::default());
    let state = tempfile::tempdir().unwrap();
    let mut ch = email_channel("secops", smtp.port, SMTP_PASS_ENV);
    ch.username = None;
    let cfg = DeliveryConfig {
        email: vec![ch],
        routes: vec![route(&["secops"], 100)],
        ..Default::default()
    };
    let (h, _j, _m) = start(&cfg, state.path(), DeliveryOptions::default());
    let evil_user = "u-1\r\nBcc: evil@example.com";
    let evil_tool = "send\r\nBcc: evil2@example.com\r\nX-Injected: yes\nSubject: pwned";
    let a = alert("disabled_tool", Severity::Critical, evil_user, evil_tool, 5);
    h.submit(&a).unwrap();
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(
        mail.rcpt_tos(),
        vec!["security@example.com"],
        "no extra recipient"
    );
    for name in mail.header_names() {
        let n = name.to_ascii_lowercase();
        assert!(n != "bcc" && n != "x-injected", "injected header {name}");
    }
    assert_eq!(mail.header("Subject").len(), 1);
    for line in mail.raw_head().lines() {
        let l = line.to_ascii_lowercase();
        assert!(
            !l.starts_with("bcc") && !l.starts_with("x-injected"),
            "raw header line {line:?}"
        );
    }
    let subject = mail.subject();
    assert!(!subject.contains('\r') && !subject.contains('\n'));
    assert!(subject.starts_with("[mcpwatch] CRITICAL disabled_tool: user u-1\u{FFFD}\u{FFFD}Bcc: evil@example.com called send"));
    let body = mail.body();
    assert!(
        body.contains("user_id=u-1\\r\\nBcc: evil@example.com"),
        "escaped in body:\n{body}"
    );
    assert!(!body.lines().any(|l| l.starts_with("Bcc:")));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_alerts_within_group_wait_are_one_signed_post_keyed_by_first_id() {
    init_env();
    let rx = Receiver::start(Some(HOOK_SECRET), Script::default());
    let state = tempfile::tempdir().unwrap();
    let cfg = DeliveryConfig {
        webhook: vec![webhook_channel("siem", &rx.url(), 5_000)],
        routes: vec![route(&["siem"], 2_000)],
        ..Default::default()
    };
    let (h, _j, _m) = start(&cfg, state.path(), DeliveryOptions::default());
    let alerts: Vec<Alert> = (1..=3)
        .map(|i| alert("rapid_tool_usage", Severity::Medium, "u-42", "t", i))
        .collect();
    for a in &alerts {
        h.submit(a).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hits = rx.wait_accepted(1, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits = if hits.is_empty() { hits } else { rx.hits() };
    assert_eq!(hits.len(), 1, "exactly one POST");
    let hit = &hits[0];
    assert_eq!(
        hit.ids(),
        alerts.iter().map(|a| a.id.clone()).collect::<Vec<_>>()
    );
    assert_eq!(hit.header("idempotency-key"), Some(alerts[0].id.as_str()));
    assert_eq!(hit.header("content-type"), Some("application/json"));
    assert_eq!(hit.header("x-team"), Some("secops"));
    assert!(
        hit.header("user-agent")
            .is_some_and(|u| u.starts_with("mcpwatch/"))
    );
    assert_eq!(hit.signature_ok, Some(true), "valid, fresh signature");
    let json = hit.json();
    assert_eq!(json["version"], "1");
    assert_eq!(json["alerts"][0]["rule"], "rapid_tool_usage");
    assert_eq!(json["alerts"][0]["evidence"][0]["line"], 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_503_and_429_are_retried_then_delivered() {
    init_env();
    for status in [503u16, 429] {
        let rx = Receiver::start(
            Some(HOOK_SECRET),
            Script {
                fail_first: 2,
                fail_status: status,
                ..Default::default()
            },
        );
        let state = tempfile::tempdir().unwrap();
        let cfg = DeliveryConfig {
            webhook: vec![webhook_channel("siem", &rx.url(), 5_000)],
            routes: vec![route(&["siem"], 0)],
            ..Default::default()
        };
        let (h, _j, m) = start(&cfg, state.path(), fast_backoff());
        let a = alert("error_spike", Severity::Medium, "u", "t", 1);
        h.submit(&a).unwrap();
        let ok = rx.wait_accepted(1, Duration::from_secs(10));
        assert_eq!(ok.len(), 1, "{status}: delivered after retries");
        let hits = rx.hits();
        assert_eq!(hits.len(), 3, "{status}: two refusals, then success");
        for hit in &hits {
            assert_eq!(hit.header("idempotency-key"), Some(a.id.as_str()));
            assert_eq!(hit.signature_ok, Some(true));
        }
        assert!(eventually(Duration::from_secs(2), || h.pending() == 0).await);
        assert_eq!(
            m.counter("mcpwatch_delivery_retries_total", &[("channel", "siem")]),
            2
        );
        assert_eq!(
            m.counter(
                "mcpwatch_deliveries_total",
                &[("channel", "siem"), ("result", "retry")]
            ),
            2
        );
        assert!(dead_letters(state.path()).is_empty());
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_400_is_not_retried_and_goes_to_dead_letter() {
    init_env();
    let rx = Receiver::start(
        Some(HOOK_SECRET),
        Script {
            status: 400,
            ..Default::default()
        },
    );
    let state = tempfile::tempdir().unwrap();
    let cfg = DeliveryConfig {
        webhook: vec![webhook_channel("siem", &rx.url(), 5_000)],
        routes: vec![route(&["siem"], 0)],
        ..Default::default()
    };
    let (h, _j, m) = start(&cfg, state.path(), fast_backoff());
    let a = alert("error_spike", Severity::Medium, "u", "t", 1);
    h.submit(&a).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || !dead_letters(state.path())
            .is_empty())
        .await,
        "dead letter written"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.hits().len(), 1, "no retry on 400");
    let dl = dead_letters(state.path());
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0]["channel"], "siem");
    assert_eq!(dl[0]["error"], "HTTP 400 Bad Request");
    assert_eq!(dl[0]["reason"], "permanent");
    assert_eq!(dl[0]["alerts"][0]["id"], a.id.as_str());
    assert_eq!(h.pending(), 0);
    assert_eq!(
        m.counter(
            "mcpwatch_deliveries_total",
            &[("channel", "siem"), ("result", "failed")]
        ),
        1
    );
    assert_eq!(
        m.counter("mcpwatch_dead_letters_total", &[("channel", "siem")]),
        1
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_5xx_goes_to_dead_letter_at_once() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions {
        fail_first: 100,
        fail_reply: Some("554 5.7.1 Message rejected".into()),
        ..Default::default()
    });
    let state = tempfile::tempdir().unwrap();
    let mut ch = email_channel("secops", smtp.port, SMTP_PASS_ENV);
    ch.username = None;
    let cfg = DeliveryConfig {
        email: vec![ch],
        routes: vec![route(&["secops"], 0)],
        ..Default::default()
    };
    let (h, _j, _m) = start(&cfg, state.path(), fast_backoff());
    h.submit(&alert("disabled_tool", Severity::Critical, "u", "t", 1))
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || !dead_letters(state.path())
            .is_empty())
        .await,
        "dead letter written"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.data_commands(), 1, "no retry on a permanent reply");
    let dl = dead_letters(state.path());
    assert_eq!(dl[0]["error"], "554 5.7.1 Message rejected");
    assert_eq!(dl[0]["reason"], "permanent");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_4xx_is_retried_then_delivered() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions {
        fail_first: 2,
        fail_reply: Some("451 4.3.0 Try again later".into()),
        ..Default::default()
    });
    let state = tempfile::tempdir().unwrap();
    let mut ch = email_channel("secops", smtp.port, SMTP_PASS_ENV);
    ch.username = None;
    let cfg = DeliveryConfig {
        email: vec![ch],
        routes: vec![route(&["secops"], 0)],
        ..Default::default()
    };
    let (h, _j, m) = start(&cfg, state.path(), fast_backoff());
    h.submit(&alert("disabled_tool", Severity::Critical, "u", "t", 1))
        .unwrap();
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert_eq!(smtp.data_commands(), 3);
    assert!(dead_letters(state.path()).is_empty());
    assert_eq!(
        m.counter("mcpwatch_delivery_retries_total", &[("channel", "secops")]),
        2
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_webhook_does_not_delay_email() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions::default());
    // Longer than the whole test can take on a loaded machine (it failed
    // under load when a 10 s answer arrived before the shutdown).
    let rx = Receiver::start(
        Some(HOOK_SECRET),
        Script {
            delay: Duration::from_secs(60),
            ..Default::default()
        },
    );
    let state = tempfile::tempdir().unwrap();
    let mut ch = email_channel("secops", smtp.port, SMTP_PASS_ENV);
    ch.username = None;
    let cfg = DeliveryConfig {
        email: vec![ch],
        webhook: vec![webhook_channel("siem", &rx.url(), 15_000)],
        routes: vec![route(&["siem", "secops"], 200)],
        ..Default::default()
    };
    let (h, _j, _m) = start(&cfg, state.path(), DeliveryOptions::default());
    // Occupy the webhook first: its attempt hangs (until its 15 s timeout).
    h.submit(&alert("error_spike", Severity::Medium, "u", "t", 1))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let submitted = unix_now();
    let started = Instant::now();
    h.submit(&alert("error_spike", Severity::Medium, "u", "t", 2))
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "submit does not wait for a channel"
    );
    let mails = smtp.wait_for(2, Duration::from_secs(8));
    assert_eq!(
        mails.len(),
        2,
        "both emails arrived while the webhook hangs"
    );
    let late = mails[1].received() - submitted;
    assert!(
        late < 3.0,
        "second email arrived {late:.1}s after submit, webhook stalled it"
    );
    assert!(rx.hits().is_empty(), "the webhook has not answered yet");
    // The server stores a mail before it answers 250: wait until the second
    // email's success is recorded too, so that only the webhook's groups are
    // pending at shutdown (under load it could still be in flight).
    let _ = eventually(Duration::from_secs(5), || h.pending() == 2).await;
    // Shutdown abandons the hanging attempt quickly; it stays pending.
    let t = Instant::now();
    h.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(7),
        "shutdown took {:?}",
        t.elapsed()
    );
    // A clean restart resumes the webhook's pending groups.
    rx.set_script(Script::default());
    let restarted = unix_now();
    let (h, _j, _m) = start(&cfg, state.path(), DeliveryOptions::default());
    assert_eq!(h.pending(), 2, "both webhook groups survived the shutdown");
    let resumed = rx.wait_accepted(2, Duration::from_secs(8));
    assert!(
        resumed.iter().filter(|x| x.at >= restarted).count() >= 2,
        "resent after the restart"
    );
    assert!(eventually(Duration::from_secs(5), || h.pending() == 0).await);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_survives_crash_and_delivers_each_group_once() {
    init_env();
    let rx = Receiver::start(
        Some(HOOK_SECRET),
        Script {
            status: 503,
            ..Default::default()
        },
    );
    let state = tempfile::tempdir().unwrap();
    let cfg = DeliveryConfig {
        webhook: vec![webhook_channel("siem", &rx.url(), 5_000)],
        routes: vec![route(&["siem"], 200)],
        ..Default::default()
    };
    let alerts: Vec<Alert> = (1..=2)
        .map(|i| alert("rapid_tool_usage", Severity::Medium, "u", "t", i))
        .collect();
    {
        let (h, j, _m) = start(&cfg, state.path(), fast_backoff());
        for a in &alerts {
            h.submit(a).unwrap();
        }
        assert!(!rx.wait_hits(2, Duration::from_secs(10)).is_empty());
        // Crash: no shutdown, no snapshot; tasks die mid-flight.
        j.abort();
        let _ = j.await;
        drop(h);
    }
    let refused = rx.hits();
    assert!(refused.iter().all(|x| x.status == 503));
    rx.set_script(Script::default());
    let (h, _j, _m) = start(&cfg, state.path(), fast_backoff());
    assert_eq!(h.pending(), 1, "the group is still pending after restart");
    // The daemon may hand the same alerts again after a crash.
    for a in &alerts {
        h.submit(a).unwrap();
    }
    let ok = rx.wait_accepted(1, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let ok_now = rx.accepted();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok_now.len(), 1, "delivered once");
    assert_eq!(
        ok_now[0].ids(),
        alerts.iter().map(|a| a.id.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        ok_now[0].header("idempotency-key"),
        refused[0].header("idempotency-key"),
        "the group kept its id across the restart"
    );
    assert_eq!(ok_now[0].signature_ok, Some(true));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_alerts_reach_escalation_webhook_and_notification_emails() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions::default());
    let esc = Receiver::start(None, Script::default());
    let state = tempfile::tempdir().unwrap();
    let mut ch = email_channel("secops", smtp.port, SMTP_PASS_ENV);
    ch.username = None;
    let cfg = DeliveryConfig {
        email: vec![ch],
        routes: vec![route(&["secops"], 100)],
        notification_emails: vec!["ciso@example.com".to_string()],
        escalation_webhook: Some(esc.url()),
        ..Default::default()
    };
    let (h, _j, m) = start(&cfg, state.path(), DeliveryOptions::default());
    let crit = alert("disabled_tool", Severity::Critical, "u", "t", 2);
    // A backlog is handed over in one call (one fsync).
    h.submit_all(&[
        alert("unusual_hours", Severity::Low, "u", "t", 1),
        crit.clone(),
    ])
    .unwrap();
    let hits = esc.wait_accepted(1, Duration::from_secs(10));
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].ids(),
        vec![crit.id.clone()],
        "only the critical alert"
    );
    assert_eq!(
        hits[0].header("mcpwatch-signature"),
        None,
        "no secret: unsigned"
    );
    let mails = smtp.wait_for(2, Duration::from_secs(10));
    assert_eq!(mails.len(), 2);
    let to_ciso: Vec<_> = mails
        .iter()
        .filter(|m| m.rcpt_tos() == vec!["ciso@example.com"])
        .collect();
    assert_eq!(
        to_ciso.len(),
        1,
        "notification email sent through secops' server"
    );
    assert!(
        to_ciso[0]
            .subject()
            .starts_with("[mcpwatch] CRITICAL disabled_tool")
    );
    assert!(eventually(Duration::from_secs(2), || h.pending() == 0).await);
    for ch in ["escalation_webhook", "notification_emails", "secops"] {
        assert!(
            m.counter(
                "mcpwatch_deliveries_total",
                &[("channel", ch), ("result", "ok")]
            ) >= 1,
            "{ch}"
        );
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_beyond_max_per_hour_waits_to_fold_into_next_message() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions::default());
    let state = tempfile::tempdir().unwrap();
    let mut ch = email_channel("secops", smtp.port, SMTP_PASS_ENV);
    ch.username = None;
    ch.max_per_hour = 1;
    let cfg = DeliveryConfig {
        email: vec![ch],
        routes: vec![route(&["secops"], 100)],
        ..Default::default()
    };
    let (h, _j, _m) = start(&cfg, state.path(), DeliveryOptions::default());
    h.submit(&alert("error_spike", Severity::Medium, "u", "t", 1))
        .unwrap();
    assert_eq!(smtp.wait_for(1, Duration::from_secs(10)).len(), 1);
    h.submit(&alert("error_spike", Severity::Medium, "u", "t", 2))
        .unwrap();
    h.submit(&alert("error_spike", Severity::Medium, "u", "t", 3))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        smtp.messages().len(),
        1,
        "second message held by max_per_hour"
    );
    assert_eq!(h.pending(), 1, "both later alerts wait in one group");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_dead_letters_metrics_or_errors() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some((SMTP_USER.into(), SMTP_PASS.into())),
        ..Default::default()
    });
    let rx = Receiver::start(
        Some(HOOK_SECRET),
        Script {
            status: 403,
            // A receiver that quotes what it got, the signature included,
            // and answers with a control character.
            answer: format!("token {HOOK_SECRET} refused\x1b[2J for this route"),
            ..Default::default()
        },
    );
    let state = tempfile::tempdir().unwrap();
    let cfg = DeliveryConfig {
        email: vec![email_channel("wrongpass", smtp.port, WRONG_PASS_ENV)],
        webhook: vec![webhook_channel("siem", &rx.url(), 5_000)],
        routes: vec![route(&["wrongpass", "siem"], 0)],
        ..Default::default()
    };
    let (h, _j, m) = start(&cfg, state.path(), fast_backoff());
    h.submit(&alert("disabled_tool", Severity::Critical, "u", "t", 1))
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || dead_letters(state.path()).len()
            == 2)
        .await,
        "535 and 403 are permanent"
    );
    let dl = std::fs::read_to_string(state.path().join("dead-letter.ndjson")).unwrap();
    assert!(dl.contains("535 5.7.8 Authentication credentials invalid"));
    // The dead letter keeps the receiver's status and answer, escaped,
    // its secret redacted.
    assert!(
        dl.contains(r"HTTP 403 Forbidden: token [redacted] refused\\u{1b}[2J for this route"),
        "{dl}"
    );
    h.shutdown().await;
    let mut everything = dl;
    everything.push_str(&m.render());
    for entry in walk(state.path()) {
        everything.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    for secret in [SMTP_PASS, WRONG_PASS, HOOK_SECRET] {
        assert!(!everything.contains(secret), "secret leaked");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_connection_failures_and_timeouts_are_retried() {
    init_env();
    // A port nobody listens on, held for the whole test.
    let refusing = RefusingPort::new();
    let closed = refusing.addr;
    let slow = Receiver::start(
        Some(HOOK_SECRET),
        Script {
            delay: Duration::from_secs(2),
            ..Default::default()
        },
    );
    let state = tempfile::tempdir().unwrap();
    let cfg = DeliveryConfig {
        webhook: vec![
            webhook_channel("down", &format!("http://{closed}/hook"), 1_000),
            webhook_channel("slow", &slow.url(), 300),
        ],
        routes: vec![route(&["down", "slow"], 0)],
        ..Default::default()
    };
    let (h, _j, m) = start(&cfg, state.path(), fast_backoff());
    h.submit(&alert("error_spike", Severity::Medium, "u", "t", 1))
        .unwrap();
    let retries = |c: &str| m.counter("mcpwatch_delivery_retries_total", &[("channel", c)]);
    assert!(
        eventually(Duration::from_secs(10), || retries("down") >= 2
            && retries("slow") >= 2)
        .await,
        "down: {}, slow: {}",
        retries("down"),
        retries("slow")
    );
    assert!(dead_letters(state.path()).is_empty());
    // The slow receiver speeds up: the pending group goes through.
    slow.set_script(Script::default());
    assert_eq!(slow.wait_accepted(1, Duration::from_secs(10)).len(), 1);
    assert!(
        eventually(Duration::from_secs(5), || h.pending() == 1).await,
        "only `down` left"
    );
    h.shutdown().await;
}
