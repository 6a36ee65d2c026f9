//! The bodies of a webhook in each `format` of SPEC §5, "where people
//! already look": Slack, Microsoft Teams (an Adaptive Card), PagerDuty
//! Events API v2 and OCSF Detection Findings for SIEMs, beside mcpwatch's
//! own body ([`super::webhook::body`]).
//!
//! Every text that comes from a log line (key values, messages, evidence
//! file names) is escaped for the receiving format: in Slack `&`, `<` and
//! `>`, so no field can mention `<!channel>` or plant a `<link|…>`; in
//! Teams every markdown character. JSON escaping is serde's.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Alert;
use crate::alert::format_ts;
use crate::config::{WebhookChannel, WebhookFormat};
use crate::event::{Millis, Severity};

/// Most alerts listed in one Slack message; the rest are counted.
pub(crate) const SLACK_MAX_ALERTS: usize = 20;
/// The OCSF schema version the findings follow.
pub(crate) const OCSF_VERSION: &str = "1.1.0";

/// The bodies to POST for one group: one, or one per alert for PagerDuty.
/// `routing_key` is PagerDuty's, read from its variable at send time.
pub(crate) fn bodies(
    channel: &WebhookChannel,
    alerts: &[Alert],
    routing_key: &str,
    now: Millis,
) -> Vec<Vec<u8>> {
    let one = |v: Value| vec![serde_json::to_vec(&v).unwrap_or_default()];
    match channel.format {
        WebhookFormat::Alertmanager => one(Value::Array(
            alerts
                .iter()
                .map(|a| alertmanager(a, &channel.resolve_after, now))
                .collect(),
        )),
        WebhookFormat::Mcpwatch => vec![super::webhook::body(alerts)],
        WebhookFormat::Slack => one(slack(alerts)),
        WebhookFormat::Teams => one(teams(alerts)),
        WebhookFormat::Ocsf => one(Value::Array(alerts.iter().map(ocsf).collect())),
        WebhookFormat::Pagerduty => alerts
            .iter()
            .map(|a| serde_json::to_vec(&pagerduty(a, routing_key)).unwrap_or_default())
            .collect(),
    }
}

/// The alerts most severe first (stable: event order within a severity).
fn by_severity(alerts: &[Alert]) -> Vec<&Alert> {
    let mut v: Vec<&Alert> = alerts.iter().collect();
    v.sort_by_key(|a| std::cmp::Reverse(a.severity));
    v
}

fn upper(s: Severity) -> String {
    s.as_str().to_ascii_uppercase()
}

/// `user_id=u-42, server_name=gmail` (raw; each format escapes it).
fn key_text(a: &Alert) -> String {
    a.key
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `tool-usage.log:1203` for each evidence line.
fn evidence_text(a: &Alert) -> String {
    a.evidence
        .iter()
        .map(|e| format!("{}:{}", e.file, e.line))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Slack's escaping of text: `&`, `<`, `>` (its control characters).
pub(crate) fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack(alerts: &[Alert]) -> Value {
    let sorted = by_severity(alerts);
    let head = sorted.first().map_or(String::new(), |a| {
        format!("[mcpwatch] {} {}: {}", upper(a.severity), a.rule, a.message)
    });
    let more = alerts.len().saturating_sub(1);
    let text = if more > 0 {
        format!("{} (+{more} more)", slack_escape(&head))
    } else {
        slack_escape(&head)
    };
    let mut blocks: Vec<Value> = sorted
        .iter()
        .take(SLACK_MAX_ALERTS)
        .map(|a| {
            json!({
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": format!(
                        "*{}* `{}` {}\nkey: {}\nevidence: {} (alert {})",
                        upper(a.severity),
                        slack_escape(&a.rule),
                        slack_escape(&a.message),
                        slack_escape(&key_text(a)),
                        slack_escape(&evidence_text(a)),
                        a.id
                    )
                }
            })
        })
        .collect();
    if alerts.len() > SLACK_MAX_ALERTS {
        blocks.push(json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": format!("+{} more", alerts.len() - SLACK_MAX_ALERTS)
            }]
        }));
    }
    json!({ "text": text, "blocks": blocks })
}

/// Backslash before every character Adaptive Card markdown gives a
/// meaning to, so a log field shows as typed.
pub(crate) fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_{}[]()<>#+-.!|~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn teams(alerts: &[Alert]) -> Value {
    let sorted = by_severity(alerts);
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": format!("mcpwatch: {} alert{}", alerts.len(), if alerts.len() == 1 { "" } else { "s" }),
        "weight": "Bolder",
        "size": "Medium",
        "wrap": true
    })];
    for a in sorted {
        body.push(json!({
            "type": "TextBlock",
            "text": format!(
                "**{}** {}: {}",
                upper(a.severity),
                markdown_escape(&a.rule),
                markdown_escape(&a.message)
            ),
            "wrap": true
        }));
        body.push(json!({
            "type": "FactSet",
            "facts": [
                {"title": "key", "value": markdown_escape(&key_text(a))},
                {"title": "time", "value": markdown_escape(&a.ts)},
                {"title": "evidence", "value": markdown_escape(&evidence_text(a))},
                {"title": "alert id", "value": a.id}
            ]
        }));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body
            }
        }]
    })
}

/// The alert's own fields beyond id, rule, severity, ts and message.
fn details(a: &Alert) -> Value {
    json!({
        "rule": a.rule,
        "key": a.key,
        "value": a.value,
        "threshold": a.threshold,
        "window": a.window,
        "suppressed": a.suppressed,
        "evidence": a.evidence,
        "id": a.id,
    })
}

fn pagerduty(a: &Alert, routing_key: &str) -> Value {
    let severity = match a.severity {
        Severity::Low => "info",
        Severity::Medium => "warning",
        Severity::High => "error",
        Severity::Critical => "critical",
    };
    // PagerDuty refuses summaries over 1,024 characters.
    let summary: String = format!("{}: {}", a.rule, a.message)
        .chars()
        .take(1024)
        .collect();
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": a.id,
        "payload": {
            "summary": summary,
            "source": host_name(),
            "severity": severity,
            "timestamp": a.ts,
            "class": a.rule,
            "custom_details": details(a),
        }
    })
}

fn ocsf(a: &Alert) -> Value {
    let (severity_id, severity) = match a.severity {
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    };
    let time = a.ts_millis();
    json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "time": time,
        "message": a.message,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "name": "mcpwatch",
                "vendor_name": "mcpwatch",
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "finding_info": {
            "uid": a.id,
            "title": a.rule,
            "desc": a.message,
            "created_time": time,
        },
        "unmapped": details(a),
    })
}

/// When an alert resolves by default, for a rule without a `realert`.
pub(crate) const RESOLVE_AFTER_DEFAULT: Millis = 3_600_000;

/// One alert as Alertmanager's `/api/v2/alerts` takes it: `labels`
/// (`alertname` = rule, `severity`, the key fields by canonical name,
/// `instance` = this host), string `annotations` (`summary`, `evidence`,
/// `id`), `startsAt` = the alert's ts and `endsAt` = the later of that and
/// now, plus the rule's resolve time, so an alert sent late does not
/// arrive resolved.
fn alertmanager(a: &Alert, resolve_after: &BTreeMap<String, Millis>, now: Millis) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), json!(a.rule));
    labels.insert("severity".into(), json!(a.severity.as_str()));
    for (k, v) in &a.key {
        labels.insert(k.clone(), json!(v));
    }
    labels.insert("instance".into(), json!(host_name()));
    let resolve = resolve_after
        .get(&a.rule)
        .copied()
        .unwrap_or(RESOLVE_AFTER_DEFAULT);
    let ends = a.ts_millis().max(now).saturating_add(resolve);
    json!({
        "labels": labels,
        "annotations": {
            "summary": a.message,
            "evidence": evidence_text(a),
            "id": a.id,
        },
        "startsAt": a.ts,
        "endsAt": format_ts(ends),
    })
}

/// This host's name (PagerDuty's `source`), `"mcpwatch"` if unknown.
pub(crate) fn host_name() -> String {
    // Asked once: every PagerDuty and Alertmanager alert carries it.
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(read_host_name).clone()
}

fn read_host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match (rc, std::str::from_utf8(&buf[..end])) {
        (0, Ok(name)) if !name.is_empty() => name.to_string(),
        _ => "mcpwatch".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::router::tests::alert;

    fn hostile() -> Alert {
        let mut a = alert("new_tool_usage", Severity::Low, "id-1");
        a.key.insert(
            "tool_name".into(),
            "<!channel> *x* [y](http://e.vil)".into(),
        );
        a.message = "tool <!here> & <http://e.vil|click> called".into();
        a
    }

    fn channel(format: WebhookFormat) -> WebhookChannel {
        WebhookChannel {
            format,
            ..crate::alert::router::tests::webhook("w")
        }
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn slack_escapes_log_fields_and_caps_the_list_at_twenty_most_severe_first() {
        let mut alerts: Vec<Alert> = (0..25)
            .map(|i| alert("rapid_tool_usage", Severity::Medium, &format!("m{i}")))
            .collect();
        alerts.push(hostile());
        alerts.push(alert("disabled_tool", Severity::Critical, "crit"));
        let v = parse(&bodies(&channel(WebhookFormat::Slack), &alerts, "", 0)[0]);
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .starts_with("[mcpwatch] CRITICAL disabled_tool: ")
        );
        assert!(v["text"].as_str().unwrap().ends_with(" (+26 more)"));
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 21, "20 alerts and the count of the rest");
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("(alert crit)")
        );
        assert_eq!(blocks[20]["elements"][0]["text"], "+7 more");

        let v = parse(&bodies(&channel(WebhookFormat::Slack), &[hostile()], "", 0)[0]);
        let all = v.to_string();
        assert!(!all.contains("<!channel>") && !all.contains("<!here>"));
        assert!(!all.contains("<http://e.vil|click>"));
        assert!(all.contains("&lt;!channel&gt;"));
        assert!(all.contains("&amp; &lt;http://e.vil|click&gt;"));
    }

    #[test]
    fn teams_sends_an_adaptive_card_with_markdown_escaped() {
        let v = parse(&bodies(&channel(WebhookFormat::Teams), &[hostile()], "", 0)[0]);
        assert_eq!(v["type"], "message");
        let att = &v["attachments"][0];
        assert_eq!(
            att["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(att["content"]["type"], "AdaptiveCard");
        let body = att["content"]["body"].as_array().unwrap();
        assert_eq!(
            body[1]["text"],
            "**LOW** new\\_tool\\_usage: tool \\<\\!here\\> & \\<http://e\\.vil\\|click\\> called"
        );
        assert_eq!(
            body[2]["facts"][0]["value"],
            "tool\\_name=\\<\\!channel\\> \\*x\\* \\[y\\]\\(http://e\\.vil\\), user\\_id=u\\-42"
        );
        assert_eq!(body[2]["facts"][3]["value"], "id-1");
    }

    #[test]
    fn pagerduty_sends_one_trigger_per_alert_deduplicated_by_alert_id() {
        let alerts = [
            alert("approval_bypass", Severity::High, "a1"),
            alert("unusual_hours", Severity::Low, "a2"),
        ];
        let b = bodies(&channel(WebhookFormat::Pagerduty), &alerts, "R0UT1NG", 0);
        assert_eq!(b.len(), 2);
        let v = parse(&b[0]);
        assert_eq!(v["routing_key"], "R0UT1NG");
        assert_eq!(v["event_action"], "trigger");
        assert_eq!(v["dedup_key"], "a1");
        assert_eq!(v["payload"]["severity"], "error");
        assert_eq!(v["payload"]["timestamp"], alerts[0].ts);
        assert_eq!(v["payload"]["custom_details"]["id"], "a1");
        assert!(
            v["payload"]["summary"]
                .as_str()
                .unwrap()
                .starts_with("approval_bypass: ")
        );
        assert_eq!(parse(&b[1])["payload"]["severity"], "info");
    }

    #[test]
    fn ocsf_findings_carry_the_detection_finding_identity() {
        let a = alert("error_spike", Severity::Medium, "f1");
        let v = parse(
            &bodies(
                &channel(WebhookFormat::Ocsf),
                std::slice::from_ref(&a),
                "",
                0,
            )[0],
        );
        let f = &v[0];
        assert_eq!(
            (
                &f["class_uid"],
                &f["category_uid"],
                &f["activity_id"],
                &f["type_uid"],
                &f["severity_id"]
            ),
            (
                &json!(2004),
                &json!(2),
                &json!(1),
                &json!(200401),
                &json!(3)
            )
        );
        assert_eq!(f["time"], json!(a.ts_millis()));
        assert_eq!(f["metadata"]["version"], OCSF_VERSION);
        assert_eq!(f["metadata"]["product"]["name"], "mcpwatch");
        assert_eq!(f["finding_info"]["uid"], "f1");
        assert_eq!(f["finding_info"]["title"], "error_spike");
        assert_eq!(f["unmapped"]["key"], json!(a.key));
    }
}
