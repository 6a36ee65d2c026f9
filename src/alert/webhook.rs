//! The webhook channel: one signed JSON POST per group (reqwest, rustls),
//! in the channel's `format` ([`super::formats`]).
//!
//! Body `{"version":"1","alerts":[...]}`; headers `Content-Type`,
//! `Idempotency-Key` (the group's first alert id, the same on every retry)
//! and, when the channel has a secret, `Mcpwatch-Signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, made
//! fresh at each attempt so receivers can refuse stale replays. Header
//! values never carry log content; the URL is never shown in errors (it may
//! embed a token, as chat webhooks do).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::Alert;
use super::error::{SendError, chain};
use crate::config::{WebhookChannel, WebhookFormat};

/// The webhook body of SPEC §5.
#[derive(serde::Serialize)]
struct Payload<'a> {
    version: &'static str,
    alerts: &'a [Alert],
}

/// The exact bytes POSTed (and signed).
pub(crate) fn body(alerts: &[Alert]) -> Vec<u8> {
    serde_json::to_vec(&Payload {
        version: "1",
        alerts,
    })
    .unwrap_or_default()
}

/// The `Mcpwatch-Signature` value for `body` sent at unix second `t`.
pub(crate) fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// How much of a refusing receiver's answer an error keeps.
const ANSWER_KEPT: usize = 1024;

/// Sends through one webhook channel.
#[derive(Clone, Debug)]
pub(crate) struct WebhookSender {
    cfg: WebhookChannel,
    client: Result<reqwest::Client, String>,
}

impl WebhookSender {
    pub(crate) fn new(cfg: WebhookChannel) -> WebhookSender {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout.max(1) as u64))
            .user_agent(concat!("mcpwatch/", env!("CARGO_PKG_VERSION")))
            // A redirected POST turns into a GET elsewhere: refuse instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| chain(&e.without_url()));
        WebhookSender { cfg, client }
    }

    /// One attempt at unix time `now_secs`: retryable on connection
    /// failures, timeouts, 5xx and 429; any other non-2xx is permanent.
    /// PagerDuty's format posts one event per alert (each deduplicated by
    /// its alert id, so a retry of the group triggers nothing twice).
    pub(crate) async fn send(
        &self,
        group: &str,
        alerts: &[Alert],
        now_secs: i64,
    ) -> Result<(), SendError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| SendError::permanent(format!("HTTP client setup failed: {e}")))?;
        let headers = self.headers()?;
        let routing_key = match &self.cfg.routing_key_env {
            Some(var) => env_value(var)?,
            None => String::new(),
        };
        let bodies = super::formats::bodies(&self.cfg, alerts, &routing_key, now_secs * 1000);
        let per_alert = self.cfg.format == WebhookFormat::Pagerduty;
        for (i, body) in bodies.into_iter().enumerate() {
            let key = match (per_alert, alerts.get(i)) {
                (true, Some(a)) => a.id.as_str(),
                _ => group,
            };
            self.post(client, headers.clone(), key, body, now_secs)
                .await?;
        }
        Ok(())
    }

    /// The configured headers, those from environment variables read now.
    fn headers(&self) -> Result<reqwest::header::HeaderMap, SendError> {
        use reqwest::header::{HeaderName, HeaderValue};
        let mut headers = reqwest::header::HeaderMap::new();
        let from_env = self
            .cfg
            .headers_env
            .iter()
            .map(|(k, var)| Ok((k, env_value(var)?)));
        let plain = self.cfg.headers.iter().map(|(k, v)| Ok((k, v.clone())));
        let authorization = "Authorization".to_string();
        let auth = match (&self.cfg.basic_auth, &self.cfg.bearer_token_env) {
            (Some((user, var)), _) => {
                use base64::Engine as _;
                let pass = env_value(var)?;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                Some(Ok((&authorization, format!("Basic {token}"))))
            }
            (None, Some(var)) => {
                Some(env_value(var).map(|t| (&authorization, format!("Bearer {t}"))))
            }
            (None, None) => None,
        };
        for pair in plain.chain(from_env).chain(auth) {
            let (k, v): (&String, String) = pair?;
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| SendError::permanent(format!("invalid header name {k:?}")))?;
            // The value may be a token: never in an error.
            let value = HeaderValue::from_str(&v)
                .map_err(|_| SendError::permanent(format!("invalid value for header {k}")))?;
            headers.insert(name, value);
        }
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(headers)
    }

    async fn post(
        &self,
        client: &reqwest::Client,
        mut headers: reqwest::header::HeaderMap,
        idempotency_key: &str,
        body: Vec<u8>,
        now_secs: i64,
    ) -> Result<(), SendError> {
        let key = reqwest::header::HeaderValue::from_str(idempotency_key)
            .map_err(|_| SendError::permanent("invalid group id".to_string()))?;
        headers.insert("idempotency-key", key);
        if let Some(var) = &self.cfg.secret_env {
            // Never send unsigned when a secret was configured.
            let secret = env_value(var)?;
            let sig = signature(secret.as_bytes(), now_secs, &body);
            let value = reqwest::header::HeaderValue::from_str(&sig)
                .map_err(|_| SendError::permanent("invalid signature header".to_string()))?;
            headers.insert("mcpwatch-signature", value);
        }
        let resp = client
            .post(&self.cfg.url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        match resp {
            Ok(mut r) => {
                let status = r.status();
                if status.is_success() {
                    return Ok(());
                }
                // What the receiver said, for the dead letter: its first
                // KiB, escaped (it is the receiver's text, not ours).
                let mut said = Vec::new();
                while said.len() < ANSWER_KEPT {
                    match r.chunk().await {
                        Ok(Some(c)) => said.extend_from_slice(&c),
                        _ => break,
                    }
                }
                said.truncate(ANSWER_KEPT);
                let said = String::from_utf8_lossy(&said);
                let msg = match said.trim() {
                    "" => format!("HTTP {status}"),
                    t => format!("HTTP {status}: {}", crate::text::escape(t)),
                };
                if status.is_server_error() || status.as_u16() == 429 {
                    Err(SendError::retryable(msg))
                } else {
                    Err(SendError::permanent(msg))
                }
            }
            Err(e) => {
                let e = e.without_url();
                if e.is_timeout() {
                    Err(SendError::retryable(format!(
                        "timed out after {}",
                        crate::alert::delivery::fmt_millis(self.cfg.timeout)
                    )))
                } else if e.is_builder() {
                    Err(SendError::permanent(chain(&e)))
                } else if e.is_connect() {
                    Err(SendError::retryable(format!(
                        "connection failed: {}",
                        chain(&e)
                    )))
                } else {
                    Err(SendError::retryable(chain(&e)))
                }
            }
        }
    }
}

/// The value of a secret's variable; unset is retryable (it may be set
/// before `max_age`), and only the name is ever shown.
fn env_value(var: &str) -> Result<String, SendError> {
    std::env::var(var)
        .map_err(|_| SendError::retryable(format!("environment variable {var} is not set")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::router::tests::alert;
    use crate::event::Severity;

    #[test]
    fn signature_is_hmac_sha256_of_t_dot_body() {
        // Computed independently with Python:
        // hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest()
        let sig = signature(b"s3cret", 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "t=1700000000,v1=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
        );
        assert_ne!(signature(b"other", 1_700_000_000, b"{}"), sig);
        assert_ne!(signature(b"s3cret", 1_700_000_001, b"{}"), sig);
    }

    #[test]
    fn body_is_versioned_list_of_alerts_in_spec_field_order() {
        let a = alert("rapid_tool_usage", Severity::Medium, "abc");
        let b = String::from_utf8(body(&[a])).unwrap();
        assert!(b.starts_with("{\"version\":\"1\",\"alerts\":[{\"id\":\"abc\",\"rule\":\"rapid_tool_usage\",\"severity\":\"medium\",\"ts\":"));
    }
}
