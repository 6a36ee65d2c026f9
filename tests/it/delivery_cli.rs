//! `mcpwatch test-alert` end to end: the real binary, a real `mcpwatch.toml`,
//! an aiosmtpd SMTP server and a webhook receiver on 127.0.0.1.

use std::process::Command;
use std::time::Duration;

use crate::support::delivery::{
    Receiver, Script, SmtpOptions, SmtpServer, email_toml, route_toml, webhook_toml,
};

const BIN: &str = env!("CARGO_BIN_EXE_mcpwatch");
const SMTP_USER: &str = "alerts@example.com";
const SMTP_PASS: &str = "cli-smtp-pass-7Hq2";
const WRONG_PASS: &str = "cli-wrong-pass-9Xk4";
const HOOK_SECRET: &str = "cli-whsec-3Lp8";

fn settings(smtp_port: u16, ok_url: &str, bad_url: &str) -> String {
    let mut s = String::new();
    s += &email_toml(
        "secops",
        smtp_port,
        Some((SMTP_USER, "MCPWATCH_SMTP_PASSWORD")),
        "security@example.com",
    );
    s += &email_toml(
        "backup",
        smtp_port,
        Some((SMTP_USER, "MCPWATCH_BACKUP_PASSWORD")),
        "backup@example.com",
    );
    s += &webhook_toml("siem", ok_url, Some("MCPWATCH_WEBHOOK_SECRET"), "5s");
    s += &webhook_toml("pager", bad_url, Some("MCPWATCH_WEBHOOK_SECRET"), "5s");
    s += &route_toml(&["secops", "siem"], "1s");
    s
}

fn test_alert(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .arg("test-alert")
        .args(args)
        .env("MCPWATCH_SMTP_PASSWORD", SMTP_PASS)
        .env("MCPWATCH_BACKUP_PASSWORD", WRONG_PASS)
        .env("MCPWATCH_WEBHOOK_SECRET", HOOK_SECRET)
        .env("RUST_LOG", "debug")
        .output()
        .expect("run mcpwatch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_alert_sends_through_each_channel_and_reports_without_secrets() {
    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some((SMTP_USER.into(), SMTP_PASS.into())),
        ..Default::default()
    });
    let ok = Receiver::start(Some(HOOK_SECRET), Script::default());
    let bad = Receiver::start(
        Some(HOOK_SECRET),
        Script {
            status: 503,
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mcpwatch.toml"),
        settings(smtp.port, &ok.url(), &bad.url()),
    )
    .unwrap();

    let (code, out, err) = test_alert(dir.path(), &[]);
    assert_eq!(
        out,
        "secops: ok\n\
         backup: 535 5.7.8 Authentication credentials invalid\n\
         siem: ok\n\
         pager: HTTP 503 Service Unavailable\n",
        "stderr: {err}"
    );
    assert_eq!(code, 1, "a channel failed");
    for secret in [SMTP_PASS, WRONG_PASS, HOOK_SECRET] {
        assert!(!out.contains(secret), "secret in stdout");
        assert!(!err.contains(secret), "secret in stderr");
    }
    let mails = smtp.wait_for(1, Duration::from_secs(5));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_tos(), vec!["security@example.com"]);
    assert!(
        mails[0]
            .subject()
            .starts_with("[mcpwatch] LOW test_alert: This is a test alert"),
        "{}",
        mails[0].subject()
    );
    assert!(
        mails[0]
            .body()
            .contains("this is a test sent by `mcpwatch test-alert`")
    );
    let hits = ok.accepted();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].signature_ok, Some(true));
    assert_eq!(hits[0].json()["alerts"][0]["rule"], "test_alert");
    assert_eq!(bad.hits().len(), 1, "test-alert tries once, no retries");

    let (code, out, _) = test_alert(dir.path(), &["--channel", "siem"]);
    assert_eq!((code, out.as_str()), (0, "siem: ok\n"));

    let (code, out, err) = test_alert(dir.path(), &["--channel", "nope"]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert!(
        err.contains("unknown channel \"nope\"; configured channels: secops, backup, siem, pager"),
        "{err}"
    );
}

#[test]
fn a_plain_relay_refusing_starttls_is_explained_with_the_setting_to_change() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let dir = tempfile::tempdir().unwrap();
    // The default TLS mode, STARTTLS, against a relay that offers none.
    let channel = email_toml("relay", smtp.port, None, "security@example.com")
        .replace("tls = \"none\"\nallow_plaintext = true\n", "");
    std::fs::write(dir.path().join("mcpwatch.toml"), channel).unwrap();
    let (code, out, err) = test_alert(dir.path(), &[]);
    assert_eq!(code, 1, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("STARTTLS is not supported"), "{all}");
    assert!(
        all.contains("set tls = \"none\" and allow_plaintext = true in this channel"),
        "{all}"
    );
    assert!(smtp.messages().is_empty());
}

/// Each webhook `format` through `test-alert` to a real receiver: the
/// bodies field by field, the header and routing key from the environment,
/// and neither secret in any output.
#[test]
fn webhook_formats_reach_slack_teams_pagerduty_and_siem_receivers_as_they_expect() {
    const TOKEN: &str = "Bearer tok-5Jk9-never-printed";
    const ROUTING: &str = "pd-routing-key-Q7w2";
    let rx = Receiver::start(None, Script::default());
    let dir = tempfile::tempdir().unwrap();
    let mut settings = String::new();
    for format in ["slack", "teams", "pagerduty", "ocsf"] {
        settings += &format!(
            "[[channels.webhook]]\nname = \"{format}\"\nurl = \"{}\"\nformat = \"{format}\"\n\
             headers_env = {{ \"Authorization\" = \"MCPWATCH_TEST_FORMATS_TOKEN\" }}\n",
            rx.url()
        );
        if format == "pagerduty" {
            settings += "routing_key_env = \"MCPWATCH_TEST_FORMATS_ROUTING\"\n";
        }
        settings += "\n";
    }
    std::fs::write(dir.path().join("mcpwatch.toml"), settings).unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .arg("test-alert")
        .env("MCPWATCH_TEST_FORMATS_TOKEN", TOKEN)
        .env("MCPWATCH_TEST_FORMATS_ROUTING", ROUTING)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(!said.contains(TOKEN) && !said.contains(ROUTING), "{said}");

    let hits = rx.wait_hits(4, Duration::from_secs(10));
    assert_eq!(hits.len(), 4);
    for h in &hits {
        assert_eq!(h.header("authorization"), Some(TOKEN));
        assert_eq!(h.header("content-type"), Some("application/json"));
    }
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        hits.iter()
            .map(|h| h.json())
            .find(|v| pred(v))
            .unwrap_or_else(|| panic!("no body matched among {hits:?}"))
    };
    let slack = find(&|v| v.get("blocks").is_some());
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("[mcpwatch] LOW ")
    );
    assert_eq!(slack["blocks"][0]["type"], "section");
    assert_eq!(slack["blocks"][0]["text"]["type"], "mrkdwn");

    let teams = find(&|v| v["type"] == "message");
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["version"], "1.4");

    let pd = find(&|v| v.get("routing_key").is_some());
    assert_eq!(pd["routing_key"], ROUTING);
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["payload"]["severity"], "info");
    let id = pd["dedup_key"].as_str().unwrap().to_string();
    assert_eq!(pd["payload"]["custom_details"]["id"], id.as_str());
    let pd_hit = hits
        .iter()
        .find(|h| h.json().get("routing_key").is_some())
        .unwrap();
    assert_eq!(pd_hit.header("idempotency-key"), Some(id.as_str()));

    let ocsf = find(&|v| v.is_array());
    let f = &ocsf[0];
    assert_eq!(f["class_uid"], 2004);
    assert_eq!(f["type_uid"], 200401);
    assert_eq!(f["severity_id"], 2);
    assert_eq!(f["finding_info"]["uid"], id.as_str(), "the same test alert");
    assert!(f["time"].as_i64().unwrap() > 1_700_000_000_000);
}

#[test]
fn a_pagerduty_webhook_without_routing_key_env_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mcpwatch.toml"),
        "[[channels.webhook]]\nname = \"pd\"\nurl = \"https://events.pagerduty.com/v2/enqueue\"\nformat = \"pagerduty\"\n\n\
         [[channels.webhook]]\nname = \"x\"\nurl = \"https://example.com/hook\"\nformat = \"splunk\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .arg("check")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("mcpwatch.toml:4:10: channels.webhook[0].routing_key_env: format \"pagerduty\" needs routing_key_env"), "{err}");
    assert!(err.contains("channels.webhook[1].format: unknown format \"splunk\"; expected mcpwatch, slack, teams, pagerduty or ocsf"), "{err}");
}
