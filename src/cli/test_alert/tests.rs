//! `test-alert`'s core ([`run_with`]) against real servers on 127.0.0.1:
//! per-channel lines, exit codes, and no secret in any output. The command
//! belongs to the binary, so these tests live here; the servers are the
//! integration tests' own (`tests/it/support/delivery.rs`), compiled in.

use std::time::Duration;

use mcpwatch::alert::router::DeliveryConfig;
use mcpwatch::config::TlsMode;

use super::run_with;
use support::{
    HOOK_SECRET, Receiver, RefusingPort, SMTP_PASS, SMTP_PASS_ENV, SMTP_USER, Script, SmtpOptions,
    SmtpServer, WRONG_PASS, WRONG_PASS_ENV, email_channel, init_env, webhook_channel,
};

/// The integration tests' SMTP server and webhook receiver; these tests
/// use only part of it.
#[allow(dead_code)]
#[path = "../../../tests/it/support/delivery.rs"]
mod support;

/// `test-alert`'s core: per-channel lines, exit codes, and no secret in
/// any output, error or file.
#[test]
fn test_alert_reports_each_channel_and_never_prints_secrets() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some((SMTP_USER.into(), SMTP_PASS.into())),
        ..Default::default()
    });
    let ok_rx = Receiver::start(Some(HOOK_SECRET), Script::default());
    let bad_rx = Receiver::start(
        Some(HOOK_SECRET),
        Script {
            status: 401,
            ..Default::default()
        },
    );
    let cfg = DeliveryConfig {
        email: vec![
            email_channel("secops", smtp.port, SMTP_PASS_ENV),
            email_channel("wrongpass", smtp.port, WRONG_PASS_ENV),
        ],
        webhook: vec![
            webhook_channel("siem", &ok_rx.url(), 5_000),
            webhook_channel("strict", &bad_rx.url(), 5_000),
        ],
        ..Default::default()
    };
    let run = |channel: Option<&str>| {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(&cfg, channel, &mut out, &mut err).unwrap();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    };
    let (code, out, err) = run(None);
    assert_eq!(code, 1, "a channel failed: {out}{err}");
    assert_eq!(
        out,
        "secops: ok\n\
         wrongpass: 535 5.7.8 Authentication credentials invalid\n\
         siem: ok\n\
         strict: HTTP 401 Unauthorized\n"
    );
    for secret in [SMTP_PASS, WRONG_PASS, HOOK_SECRET] {
        assert!(!out.contains(secret) && !err.contains(secret));
    }
    let mails = smtp.wait_for(1, Duration::from_secs(5));
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]
            .subject()
            .starts_with("[mcpwatch] LOW test_alert: This is a test alert")
    );
    let hit = &ok_rx.accepted()[0];
    assert_eq!(hit.signature_ok, Some(true));
    assert_eq!(hit.json()["alerts"][0]["rule"], "test_alert");
    assert_eq!(hit.json()["alerts"][0]["severity"], "low");

    let (code, out, _) = run(Some("siem"));
    assert_eq!((code, out.as_str()), (0, "siem: ok\n"));

    let (code, out, err) = run(Some("nope"));
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "mcpwatch test-alert: unknown channel \"nope\"; configured channels: \
         secops, wrongpass, siem, strict\n"
    );

    let (code, _, err) = run_empty();
    assert_eq!(code, 2);
    assert!(err.contains("no channel configured"));
}

fn run_empty() -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(&DeliveryConfig::default(), None, &mut out, &mut err).unwrap();
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// `tls = "starttls"` or `"tls"` never falls back to plain SMTP: against a
/// server without TLS the send fails and neither password nor mail leaves.
#[test]
fn tls_modes_never_fall_back_to_plaintext() {
    init_env();
    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some((SMTP_USER.into(), SMTP_PASS.into())),
        ..Default::default()
    });
    for (mode, name) in [(TlsMode::StartTls, "starttls"), (TlsMode::Tls, "implicit")] {
        let mut ch = email_channel(name, smtp.port, SMTP_PASS_ENV);
        ch.tls = mode;
        ch.allow_plaintext = false;
        let cfg = DeliveryConfig {
            email: vec![ch],
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(&cfg, None, &mut out, &mut err).unwrap();
        let out = String::from_utf8(out).unwrap();
        eprintln!("{out}");
        assert_eq!(code, 1, "{out}");
        assert!(out.starts_with(&format!("{name}: ")) && !out.contains(": ok"));
        assert!(!out.contains(SMTP_PASS));
    }
    assert!(smtp.messages().is_empty(), "nothing sent in plaintext");
}

/// Chat-style webhook URLs carry a token in their path: errors never show
/// the URL.
#[test]
fn webhook_errors_never_show_the_url() {
    init_env();
    let refusing = RefusingPort::new();
    let closed = refusing.addr;
    let cfg = DeliveryConfig {
        webhook: vec![webhook_channel(
            "chat",
            &format!("http://{closed}/services/T0KEN-in-path-42"),
            1_000,
        )],
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(&cfg, None, &mut out, &mut err).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 1);
    assert!(out.starts_with("chat: connection failed: "), "{out}");
    assert!(!out.contains("T0KEN") && !out.contains("services"), "{out}");
}
