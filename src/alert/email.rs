//! The email channel: one plain-text message per group, over SMTP (lettre).
//!
//! Everything in an alert may come from a log line, so nothing of it is
//! trusted near a header: the subject has its control characters replaced
//! (lettre then encodes it as a header value, never raw text), the body has
//! them escaped, and the message is built with lettre's typed builder, so a
//! `\r\nBcc: x` inside a user or tool name stays text. Recipients and sender
//! come only from the configuration.
//!
//! The SMTP password is read from the environment variable named by
//! `password_env` at each send and lives only in the transport for that send.
//! A server may quote what it was sent in its reply (`535 bad credentials
//! for AUTH PLAIN AHVzZXIAc2VjcmV0`), and that reply becomes the error that
//! `test-alert` prints and `run` logs: so every error of a send has the
//! password in each form it took on the wire replaced by `[redacted]`
//! ([`redact_credentials`]) before it leaves this module.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::Alert;
use super::error::SendError;
use crate::config::{EmailChannel, TlsMode};

/// Timeout of each SMTP command (connect, greeting, each reply).
pub(crate) const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound of one whole send, whatever the server does.
pub(crate) const SMTP_SEND_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest alert message quoted in a subject, in characters.
pub(crate) const SUBJECT_MESSAGE_CHARS: usize = 120;

/// Replaces control characters, Unicode line/paragraph separators and bidi
/// controls ([`crate::text::needs_escape`]) by U+FFFD: for any text that
/// ends up in a header value, where an escape would only make the subject
/// longer and a bidi override would reorder it in the inbox list.
pub(crate) fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if crate::text::needs_escape(c) {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Escapes text from log fields quoted in a body ([`crate::text::escape`]:
/// `\n`, `\r`, `\t`, `\\`, `\u{..}` for other controls and bidi
/// overrides): a reader sees exactly what the log held, and no log line can
/// fake a line of the message or reorder one.
pub(crate) fn body_safe(s: &str) -> String {
    crate::text::escape(s).into_owned()
}

/// The group's most severe alert (the first of them on a tie).
pub(crate) fn headline(alerts: &[Alert]) -> Option<&Alert> {
    let top = alerts.iter().map(|a| a.severity).max()?;
    alerts.iter().find(|a| a.severity == top)
}

/// `[mcpwatch] <SEVERITY> <rule>: <short message>` plus ` (+N more)`.
pub(crate) fn subject(alerts: &[Alert]) -> String {
    let Some(a) = headline(alerts) else {
        return "[mcpwatch] no alerts".to_string();
    };
    let mut msg: String = header_safe(&a.message)
        .chars()
        .take(SUBJECT_MESSAGE_CHARS)
        .collect();
    if a.message.chars().count() > SUBJECT_MESSAGE_CHARS {
        msg.push('…');
    }
    let mut s = format!(
        "[mcpwatch] {} {}: {}",
        a.severity.as_str().to_uppercase(),
        header_safe(&a.rule),
        msg
    );
    if alerts.len() > 1 {
        s.push_str(&format!(" (+{} more)", alerts.len() - 1));
    }
    s
}

/// What an operator should look at for each rule (each rule's type says
/// it: see `detect/rules/mod.rs`).
pub(crate) fn advice(rule: &str) -> &'static str {
    match crate::config::RuleName::parse(rule) {
        Some(r) => crate::detect::rules::advice(r),
        None if rule == "test_alert" => "Nothing: this is a test sent by `mcpwatch test-alert`.",
        None => "Review the evidence lines in the audit logs.",
    }
}

/// The plain-text body: every alert with what happened, key, when,
/// evidence and what to check.
pub(crate) fn body(group: &str, alerts: &[Alert]) -> String {
    use std::fmt::Write as _;
    let mut b = String::new();
    let n = alerts.len();
    let _ = writeln!(
        b,
        "mcpwatch raised {n} alert{} (group {group}).\n",
        if n == 1 { "" } else { "s" }
    );
    for (i, a) in alerts.iter().enumerate() {
        let _ = writeln!(
            b,
            "{}. [{}] {}",
            i + 1,
            a.severity.as_str().to_uppercase(),
            body_safe(&a.rule)
        );
        let _ = writeln!(b, "   What happened: {}", body_safe(&a.message));
        let key: Vec<String> = a
            .key
            .iter()
            .map(|(k, v)| format!("{}={}", body_safe(k), body_safe(v)))
            .collect();
        let _ = writeln!(
            b,
            "   Key:           {}",
            if key.is_empty() {
                "-".to_string()
            } else {
                key.join(", ")
            }
        );
        let _ = writeln!(b, "   When:          {} (event time)", body_safe(&a.ts));
        if let Some(v) = &a.value {
            let mut line = format!("   Value:         {}", number(v));
            if let Some(t) = &a.threshold {
                line.push_str(&format!(" (threshold {})", number(t)));
            }
            if let Some(w) = &a.window {
                line.push_str(&format!(" in {}", body_safe(w)));
            }
            let _ = writeln!(b, "{line}");
        }
        if a.suppressed > 0 {
            let _ = writeln!(
                b,
                "   Suppressed:    {} earlier hits since the last alert",
                a.suppressed
            );
        }
        for e in &a.evidence {
            let mut line = format!("   Evidence:      {}:{}", body_safe(&e.file), e.line);
            if let Some(r) = &e.request_id {
                line.push_str(&format!(" (request_id {})", body_safe(r)));
            }
            let _ = writeln!(b, "{line}");
        }
        let _ = writeln!(b, "   What to check: {}", advice(&a.rule));
        let _ = writeln!(b, "   Alert id:      {}\n", body_safe(&a.id));
    }
    b.push_str("-- \nSent by mcpwatch. Alerts are also appended to alerts.log.\n");
    b
}

fn number(n: &super::Number) -> String {
    match n {
        super::Number::Int(i) => i.to_string(),
        super::Number::Float(f) => f.to_string(),
    }
}

/// Builds the message. `Message-ID` is derived from the group id so a
/// receiver can recognise a retry of a message it already has.
pub(crate) fn build_message(
    ch: &EmailChannel,
    group: &str,
    alerts: &[Alert],
) -> Result<Message, SendError> {
    let from: Mailbox = ch
        .from
        .parse()
        .map_err(|e| SendError::permanent(format!("invalid from address: {e}")))?;
    let mut b = Message::builder()
        .from(from)
        .subject(subject(alerts))
        .message_id(Some(format!(
            "<{}.{}@mcpwatch>",
            header_safe(group),
            hex::encode(ch.name.as_bytes())
        )));
    for to in &ch.to {
        let mb: Mailbox = to
            .parse()
            .map_err(|e| SendError::permanent(format!("invalid to address: {e}")))?;
        b = b.to(mb);
    }
    b.header(ContentType::TEXT_PLAIN)
        .body(body(group, alerts))
        .map_err(|e| SendError::permanent(format!("cannot build message: {e}")))
}

/// Sends through one email channel.
#[derive(Clone, Debug)]
pub(crate) struct EmailSender {
    cfg: EmailChannel,
}

impl EmailSender {
    pub(crate) fn new(cfg: EmailChannel) -> EmailSender {
        EmailSender { cfg }
    }

    /// The password, read now from the environment (never stored).
    fn credentials(&self) -> Result<Option<Credentials>, SendError> {
        let Some(user) = &self.cfg.username else {
            return Ok(None);
        };
        let password = match &self.cfg.password_env {
            Some(var) => std::env::var(var).map_err(|_| {
                // Retryable: the alerts wait in the outbox for a restart
                // with the variable set instead of dying at once.
                SendError::retryable(format!("environment variable {var} is not set"))
            })?,
            None => String::new(),
        };
        Ok(Some(Credentials::new(user.clone(), password)))
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let c = &self.cfg;
        let tls_params = || {
            TlsParameters::new(c.smtp_host.clone())
                .map_err(|e| SendError::permanent(format!("TLS setup failed: {e}")))
        };
        let tls = match c.tls {
            TlsMode::StartTls => Tls::Required(tls_params()?),
            TlsMode::Tls => Tls::Wrapper(tls_params()?),
            TlsMode::None if c.allow_plaintext => Tls::None,
            TlsMode::None => {
                return Err(SendError::permanent(
                    "tls = \"none\" requires allow_plaintext = true".to_string(),
                ));
            }
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.smtp_host.clone())
            .port(c.smtp_port)
            .tls(tls)
            .timeout(Some(SMTP_COMMAND_TIMEOUT));
        if let Some(creds) = self.credentials()? {
            b = b.credentials(creds);
        }
        Ok(b.build())
    }

    /// One attempt: permanent SMTP replies (5xx) are not retryable;
    /// transient replies (4xx), timeouts and connection failures are. The
    /// error never holds the credentials ([`redact_credentials`]).
    pub(crate) async fn send(&self, group: &str, alerts: &[Alert]) -> Result<(), SendError> {
        let msg = build_message(&self.cfg, group, alerts)?;
        let transport = self.transport()?;
        let r = match tokio::time::timeout(SMTP_SEND_TIMEOUT, transport.send(msg)).await {
            Err(_) => Err(SendError::retryable(format!(
                "timed out after {}s",
                SMTP_SEND_TIMEOUT.as_secs()
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
        };
        r.map_err(|mut e| {
            if let Some(user) = &self.cfg.username {
                let password = self
                    .cfg
                    .password_env
                    .as_deref()
                    .and_then(|v| std::env::var(v).ok())
                    .unwrap_or_default();
                e.message = redact_credentials(&e.message, user, &password);
            }
            e
        })
    }
}

/// What replaces a credential in an error.
const REDACTED: &str = "[redacted]";

/// `msg` with the SMTP credentials removed in every form lettre sends them
/// in: the `AUTH PLAIN` blob (base64 of `\0user\0password`), the `AUTH
/// LOGIN` answers (base64 of the user and of the password), and the
/// password itself; each with and without its base64 padding, since a
/// server may quote either. Whatever follows `AUTH PLAIN` or `AUTH LOGIN`
/// in a quoted command is removed too, so even a blob cut short by the
/// server does not get through.
pub(crate) fn redact_credentials(msg: &str, user: &str, password: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut forms = vec![
        b64(&format!("\0{user}\0{password}")),
        b64(password),
        b64(user),
    ];
    forms.extend(
        forms
            .clone()
            .iter()
            .map(|f| f.trim_end_matches('=').to_string()),
    );
    forms.push(password.to_string());
    // Longest first, so no form is cut in half by a shorter one.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = super::delivery::redact(msg, &forms);
    for cmd in ["AUTH PLAIN ", "AUTH LOGIN "] {
        out = redact_after(&out, cmd);
    }
    out
}

/// Replaces the word after each (ASCII case-insensitive) `cmd` by
/// [`REDACTED`].
fn redact_after(msg: &str, cmd: &str) -> String {
    let lower = msg.to_ascii_lowercase();
    let needle = cmd.to_ascii_lowercase();
    let mut out = String::with_capacity(msg.len());
    let mut from = 0;
    while let Some(i) = lower[from..].find(&needle) {
        let start = from + i + needle.len();
        let end = msg[start..]
            .find(|c: char| c.is_whitespace())
            .map_or(msg.len(), |j| start + j);
        out.push_str(&msg[from..start]);
        if end > start && &msg[start..end] != REDACTED {
            out.push_str(REDACTED);
        } else {
            out.push_str(&msg[start..end]);
        }
        from = end;
    }
    out.push_str(&msg[from..]);
    out
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    use std::error::Error as _;
    if let Some(code) = e.status() {
        let text = e.source().map(|s| s.to_string()).unwrap_or_default();
        let msg = format!("{code} {text}").trim_end().to_string();
        return if e.is_permanent() {
            SendError::permanent(msg)
        } else {
            SendError::retryable(msg)
        };
    }
    if e.is_timeout() {
        return SendError::retryable(format!("timed out: {}", super::error::chain(e)));
    }
    let chain = super::error::chain(e);
    if chain.contains("STARTTLS is not supported") {
        // A plain relay: say what to change rather than retry in silence.
        return SendError::retryable(format!(
            "{chain}; this server does not offer STARTTLS: for a relay on a trusted network \
             set tls = \"none\" and allow_plaintext = true in this channel, or use tls = \"tls\" \
             if it listens with TLS (usually port 465)"
        ));
    }
    SendError::retryable(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Evidence;
    use crate::alert::router::tests::{alert, email};
    use crate::event::Severity;

    #[test]
    fn subject_from_most_severe_alert_with_count_of_others() {
        let a = alert("unusual_hours", Severity::Low, "a");
        let mut b = alert("disabled_tool", Severity::Critical, "b");
        b.message = "user u-1 called disabled tool gmail/delete_all".into();
        let c = alert("approval_bypass", Severity::Critical, "c");
        assert_eq!(
            subject(&[a.clone(), b, c]),
            "[mcpwatch] CRITICAL disabled_tool: user u-1 called disabled tool gmail/delete_all (+2 more)"
        );
        assert_eq!(
            subject(std::slice::from_ref(&a)),
            "[mcpwatch] LOW unusual_hours: unusual_hours fired"
        );
    }

    #[test]
    fn subject_replaces_control_characters_and_truncates() {
        let mut a = alert("rapid_tool_usage", Severity::Medium, "a");
        a.message = "user x\r\nBcc: evil@example.com made 11 calls".into();
        let s = subject(std::slice::from_ref(&a));
        assert!(!s.contains('\r') && !s.contains('\n'));
        assert!(s.contains("x\u{FFFD}\u{FFFD}Bcc: evil"));
        a.message = "m".repeat(500);
        let s = subject(&[a]);
        assert!(s.ends_with("m…"));
        assert!(s.chars().count() < 200);
    }

    #[test]
    fn body_escapes_control_characters_and_lists_what_to_check() {
        let mut a = alert("disabled_tool", Severity::Critical, "id1");
        a.key
            .insert("tool_name".into(), "x\r\nBcc: evil@example.com".into());
        a.evidence = vec![Evidence {
            file: "tool-usage.log".into(),
            line: 12,
            request_id: Some("r-1\n".into()),
        }];
        let b = body("id1", &[a]);
        assert!(b.contains("tool_name=x\\r\\nBcc: evil@example.com"));
        assert!(!b.contains("\r\nBcc"));
        assert!(!b.lines().any(|l| l.starts_with("Bcc")));
        assert!(b.contains("Evidence:      tool-usage.log:12 (request_id r-1\\n)"));
        assert!(b.contains("When:          2026-11-23T14:03:59.000Z"));
        assert!(b.contains(advice("disabled_tool")));
    }

    #[test]
    fn body_escapes_bidi_overrides_and_subject_replaces_them() {
        let mut a = alert("new_tool_usage", Severity::Low, "id1");
        a.message = "first call of gmail/invoice\u{202e}fdp.exe".into();
        a.key
            .insert("tool_name".into(), "invoice\u{202e}fdp.exe\u{2066}".into());
        let b = body("id1", std::slice::from_ref(&a));
        assert!(!b.contains('\u{202e}') && !b.contains('\u{2066}'), "{b}");
        assert!(
            b.contains("tool_name=invoice\\u{202e}fdp.exe\\u{2066}"),
            "{b}"
        );
        assert!(b.contains("What happened: first call of gmail/invoice\\u{202e}fdp.exe"));
        let s = subject(&[a]);
        assert!(!s.contains('\u{202e}'), "{s}");
        assert!(s.ends_with("gmail/invoice\u{FFFD}fdp.exe"), "{s}");
    }

    #[test]
    fn smtp_errors_never_show_the_auth_plain_or_login_blobs() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let (user, pass) = ("alerts@example.com", "s3cret-Pa55");
        let plain = b64(&format!("\0{user}\0{pass}"));
        for echo in [
            format!("535 5.7.8 authentication failed: AUTH PLAIN {plain}"),
            format!("535 5.7.8 bad blob {plain} rejected"),
            format!(
                "535 5.7.8 bad blob {} rejected",
                plain.trim_end_matches('=')
            ),
            format!("535 login failed for {} / {}", b64(user), b64(pass)),
            format!("535 password {pass} is wrong"),
            format!("535 cut short: auth plain {}", &plain[..12]),
            format!("535 cut short: AUTH LOGIN {}", &b64(pass)[..6]),
        ] {
            let r = redact_credentials(&echo, user, pass);
            assert!(r.contains("[redacted]"), "{r}");
            for secret in [plain.as_str(), plain.trim_end_matches('='), pass] {
                assert!(!r.contains(secret), "{secret} in {r}");
            }
            assert!(!r.contains(&b64(pass)) && !r.contains(&plain[..12]), "{r}");
            assert!(!r.contains(&b64(pass)[..6]), "{r}");
        }
        assert_eq!(
            redact_credentials("535 5.7.8 AUTH PLAIN x failed", user, pass),
            "535 5.7.8 AUTH PLAIN [redacted] failed"
        );
        assert_eq!(
            redact_credentials("421 try later", user, pass),
            "421 try later"
        );
    }

    #[test]
    fn message_has_no_injected_header() {
        let mut a = alert("rapid_tool_usage", Severity::Medium, "g1");
        a.message = "user u\r\nBcc: evil@example.com\r\n made calls".into();
        a.key
            .insert("user_id".into(), "u\r\nBcc: evil@example.com".into());
        let m = build_message(&email("secops"), "g1", &[a]).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
            "{head}"
        );
        assert!(head.contains("Message-ID: <g1.736563"));
    }

    #[test]
    fn plaintext_needs_allow_plaintext() {
        let mut c = email("secops");
        c.allow_plaintext = false;
        let e = EmailSender::new(c).transport().unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("allow_plaintext"));
    }
}
