//! `security-config.json` (the seed's format, unknown keys ignored) and the
//! audit directory's `config.json`.

use std::sync::Arc;

use super::rules::{
    DEFAULT_INTERVAL_DAYS, DEFAULT_NOTIFY_BEFORE_DAYS, MAX_DAYS, SEEDED_RATE_LIMIT,
    SEEDED_RATE_WHAT,
};
use super::tree::{Ctx, Entry, Node, Pos, Val, one_of};
use super::{Monitoring, RateLimiting, Retention, SecurityExtras, TokenRotation};
use crate::event::{ApprovalMode, Millis};
use crate::policy::{Policy, ToolList, compile_glob};

/// What `security-config.json` yields.
pub(crate) struct SecurityFile {
    pub(crate) policy: Arc<Policy>,
    pub(crate) extras: SecurityExtras,
    pub(crate) retention: RetentionPatch,
    pub(crate) warnings: Vec<String>,
}

/// Retention fields a file set (`None`: not set there).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RetentionPatch {
    pub(crate) days: Option<u32>,
    pub(crate) compress: Option<bool>,
}

impl RetentionPatch {
    pub(crate) fn apply(self, r: &mut Retention) {
        if let Some(d) = self.days {
            r.days = d;
        }
        if let Some(c) = self.compress {
            r.compress = c;
        }
    }
}

const MODES: [&str; 3] = ["always_ask", "fine_grained", "no_approval"];
const LISTS: [&str; 3] = ["autoApproved", "requiresApproval", "disabled"];

/// Upper bound for `retention.days`: 100 years keeps archive-name arithmetic
/// far from overflow.
const MAX_RETENTION_DAYS: i64 = 36_500;

pub(crate) fn check_security(root: &Node, cx: &mut Ctx) -> SecurityFile {
    let mut out = SecurityFile {
        policy: Arc::new(Policy::with_mode(ApprovalMode::AlwaysAsk)),
        extras: SecurityExtras {
            timeout_is_denial: true,
            anomaly_detection: true,
            audit_logging: true,
            ..SecurityExtras::default()
        },
        retention: RetentionPatch::default(),
        warnings: Vec::new(),
    };
    let Some(entries) = cx.obj(root, "(root)") else {
        return out;
    };
    let mut mode = ApprovalMode::AlwaysAsk;
    let mut lists: [ToolList; 3] = Default::default();
    for e in entries {
        let (k, v) = (e.key.as_str(), &e.val);
        match k {
            "approvalMode" => {
                let what = format!("a string: {}", one_of(&MODES));
                if let Some(s) = cx.str_(v, k, &what) {
                    match ApprovalMode::parse(s) {
                        Some(m) => mode = m,
                        None => cx.err(
                            v.pos,
                            k,
                            format!("unknown value {s:?}; expected {}", one_of(&MODES)),
                        ),
                    }
                }
            }
            "rules" => {
                if let Some(rules) = cx.obj(v, k) {
                    for r in rules {
                        match LISTS.iter().position(|l| *l == r.key) {
                            Some(i) => {
                                lists[i] = tool_list(
                                    &r.val,
                                    &format!("rules.{}", r.key),
                                    cx,
                                    &mut out.warnings,
                                )
                            }
                            None => out.warnings.push(format!(
                                "{}:{}:{}: rules.{}: unknown list ignored; expected {}",
                                cx.file,
                                r.key_pos.line,
                                r.key_pos.col,
                                r.key,
                                one_of(&LISTS)
                            )),
                        }
                    }
                }
            }
            "auditLogging" => match &v.val {
                Val::Str(_) => {}
                Val::Bool(b) => out.extras.audit_logging = *b,
                Val::Obj(a) => {
                    for e in a {
                        let f = format!("auditLogging.{}", e.key);
                        match e.key.as_str() {
                            "enabled" => {
                                if let Some(b) = cx.bool_(&e.val, &f) {
                                    out.extras.audit_logging = b;
                                }
                            }
                            "retention" => out.retention = retention(&e.val, &f, cx),
                            "logLevel" => {
                                cx.str_(&e.val, &f, "a string such as \"info\"");
                            }
                            "destinations" => {
                                cx.str_list(&e.val, &f, "a string such as \"file\"");
                            }
                            _ => {}
                        }
                    }
                }
                _ => {
                    cx.err(
                        v.pos,
                        k,
                        format!(
                            "expected an object with retention or a string such as \"required\", got {}",
                            v.type_name("an object")
                        ),
                    );
                }
            },
            "monitoring" => {
                let mut m = Monitoring {
                    enabled: true,
                    silence_after: None,
                };
                for_each(v, k, cx, |e, f, cx| match e.key.as_str() {
                    "anomalyDetection" => {
                        if let Some(b) = cx.bool_(&e.val, f) {
                            out.extras.anomaly_detection = b;
                        }
                    }
                    "enabled" => {
                        if let Some(b) = cx.bool_(&e.val, f) {
                            m.enabled = b;
                        }
                    }
                    "healthCheckInterval" => {
                        m.silence_after = cx
                            .num(
                                &e.val,
                                f,
                                f64::MIN_POSITIVE,
                                MAX_HEALTH_CHECK_SECS,
                                "a number of seconds > 0 (up to 1000000000)",
                            )
                            // `after` = 10 × it, in ms rounded down; at least
                            // 1 ms so it is a real silence.
                            .map(|secs| ((secs * 10_000.0).floor() as Millis).max(1));
                    }
                    "alertChannels" => {
                        cx.str_list(&e.val, f, "a string such as \"email\"");
                    }
                    _ => {}
                });
                out.extras.monitoring = Some(m);
            }
            "fallbackOnTimeout" => {
                if let Some(s) = cx.str_(v, k, "a string: deny or allow") {
                    match s {
                        "deny" => out.extras.timeout_is_denial = true,
                        "allow" => out.extras.timeout_is_denial = false,
                        _ => cx.err(
                            v.pos,
                            k,
                            format!("unknown value {s:?}; expected deny or allow"),
                        ),
                    }
                }
            }
            "incidentResponse" => {
                for_each(v, k, cx, |e, f, cx| match e.key.as_str() {
                    "notificationEmails" => {
                        for (i, (pos, s)) in cx
                            .str_list(&e.val, f, "an email address")
                            .into_iter()
                            .enumerate()
                        {
                            if is_email(s) {
                                out.extras.notification_emails.push(s.to_string());
                            } else {
                                cx.err(
                                    pos,
                                    &format!("{f}[{i}]"),
                                    format!("{s:?} is not an email address"),
                                );
                            }
                        }
                    }
                    "escalationWebhook" => {
                        if let Some(s) = cx.str_(&e.val, f, "an http:// or https:// URL") {
                            if is_http_url(s) {
                                out.extras.escalation_webhook = Some(s.to_string());
                            } else {
                                cx.err(
                                    e.val.pos,
                                    f,
                                    format!(
                                        "{s:?} is not a URL; expected http://... or https://..."
                                    ),
                                );
                            }
                        }
                    }
                    "autoDisableOnSuspicious" => {
                        if let Some(b) = cx.bool_(&e.val, f) {
                            out.extras.auto_disable = b;
                        }
                    }
                    _ => {}
                });
            }
            "approvalTimeout" => {
                if let Some(s) =
                    cx.num(v, k, f64::MIN_POSITIVE, 1e9, "a positive number of seconds")
                {
                    out.extras.approval_timeout = Some((s * 1000.0).round() as Millis);
                }
            }
            "rateLimiting" => {
                let mut rl = RateLimiting {
                    enabled: true,
                    ..RateLimiting::default()
                };
                for_each(v, k, cx, |e, f, cx| match e.key.as_str() {
                    "enabled" => {
                        if let Some(b) = cx.bool_(&e.val, f) {
                            rl.enabled = b;
                        }
                    }
                    "requestsPerMinute" => {
                        rl.requests_per_minute = cx
                            .int(&e.val, f, 1, SEEDED_RATE_LIMIT, SEEDED_RATE_WHAT)
                            .map(|n| n as u32);
                    }
                    "burstLimit" => {
                        rl.burst_limit = cx
                            .int(&e.val, f, 1, SEEDED_RATE_LIMIT, SEEDED_RATE_WHAT)
                            .map(|n| n as u32);
                    }
                    _ => {}
                });
                out.extras.rate_limiting = Some(rl);
            }
            "authentication" => {
                for_each(v, k, cx, |e, f, cx| match e.key.as_str() {
                    "method" => {
                        cx.str_(&e.val, f, "a string such as \"bearer_token\"");
                    }
                    "tokenRotation" => {
                        out.extras.token_rotation = Some(token_rotation(&e.val, f, cx));
                    }
                    _ => {}
                });
            }
            "warning" => {
                cx.str_(v, k, "a string");
            }
            _ => {}
        }
    }
    let [auto, req, dis] = lists;
    out.policy = Arc::new(Policy::new(mode, auto, req, dis));
    out
}

/// Seconds: `healthCheckInterval` up to about 31 years keeps `after` (10 ×
/// it, in ms) far from overflow.
const MAX_HEALTH_CHECK_SECS: f64 = 1e9;

/// `authentication.tokenRotation`: `intervalDays` > `notifyBeforeDays` ≥ 0
/// (each defaulting to SPEC §3's 30 and 7 when absent).
fn token_rotation(v: &Node, field: &str, cx: &mut Ctx) -> TokenRotation {
    let mut t = TokenRotation {
        enabled: true,
        interval_days: None,
        notify_before_days: None,
    };
    let mut notify_at = None;
    let mut interval_at = None;
    for_each(v, field, cx, |e, f, cx| match e.key.as_str() {
        "enabled" => {
            if let Some(b) = cx.bool_(&e.val, f) {
                t.enabled = b;
            }
        }
        "intervalDays" => {
            interval_at = Some((e.val.pos, f.to_string()));
            t.interval_days = cx
                .int(
                    &e.val,
                    f,
                    1,
                    MAX_DAYS,
                    "a whole number of days from 1 to 36500",
                )
                .map(|n| n as u32);
        }
        "notifyBeforeDays" => {
            notify_at = Some((e.val.pos, f.to_string()));
            t.notify_before_days = cx
                .int(
                    &e.val,
                    f,
                    0,
                    MAX_DAYS,
                    "a whole number of days from 0 to 36500",
                )
                .map(|n| n as u32);
        }
        _ => {}
    });
    let interval = t.interval_days.unwrap_or(DEFAULT_INTERVAL_DAYS);
    let notify = t.notify_before_days.unwrap_or(DEFAULT_NOTIFY_BEFORE_DAYS);
    let valid = (interval_at.is_none() || t.interval_days.is_some())
        && (notify_at.is_none() || t.notify_before_days.is_some());
    if valid
        && notify >= interval
        && let Some((pos, f)) = notify_at.or(interval_at)
    {
        cx.err(
            pos,
            &f,
            format!(
                "notifyBeforeDays ({notify}) must be less than intervalDays ({interval}); expected intervalDays > notifyBeforeDays ≥ 0"
            ),
        );
    }
    t
}

/// Calls `f` for each entry of an object at `v`, with its dotted field.
fn for_each(v: &Node, field: &str, cx: &mut Ctx, mut f: impl FnMut(&Entry, &str, &mut Ctx)) {
    if let Some(entries) = cx.obj(v, field) {
        for e in entries {
            let sub = format!("{field}.{}", e.key);
            f(e, &sub, cx);
        }
    }
}

fn tool_list(v: &Node, field: &str, cx: &mut Ctx, warnings: &mut Vec<String>) -> ToolList {
    let mut tools = Vec::new();
    let mut patterns = Vec::new();
    for_each(v, field, cx, |e, f, cx| match e.key.as_str() {
        "tools" => {
            tools = cx
                .str_list(&e.val, f, "a string (a tool name)")
                .into_iter()
                .map(|(_, s)| s.to_string())
                .collect();
        }
        "patterns" => {
            for (i, (pos, s)) in cx
                .str_list(&e.val, f, "a string (a shell glob such as \"admin_*\")")
                .into_iter()
                .enumerate()
            {
                check_glob(pos, s, &format!("{f}[{i}]"), cx, &mut patterns);
            }
        }
        // A typo here ("pattern") would silently weaken the policy, but the
        // seed format ignores unknown keys: warn rather than refuse.
        _ => warnings.push(format!(
            "{}:{}:{}: {f}: unknown key ignored; expected patterns or tools",
            cx.file, e.key_pos.line, e.key_pos.col
        )),
    });
    ToolList::new(tools, patterns).unwrap_or_else(|_| ToolList::default())
}

fn check_glob(pos: Pos, s: &str, field: &str, cx: &mut Ctx, out: &mut Vec<String>) {
    match compile_glob(s) {
        Ok(_) => out.push(s.to_string()),
        Err(e) => cx.err(pos, field, format!("invalid glob {s:?}: {}", e.kind())),
    }
}

/// `retention.{days,compress}` of either file.
pub(crate) fn retention(v: &Node, field: &str, cx: &mut Ctx) -> RetentionPatch {
    let mut r = RetentionPatch::default();
    for_each(v, field, cx, |e, f, cx| match e.key.as_str() {
        "days" => {
            r.days = cx
                .int(
                    &e.val,
                    f,
                    1,
                    MAX_RETENTION_DAYS,
                    "a whole number of days from 1 to 36500",
                )
                .map(|d| d as u32);
        }
        "compress" => r.compress = cx.bool_(&e.val, f),
        _ => {}
    });
    r
}

/// `<dir>/config.json`: the seed's audit configuration.
pub(crate) fn check_audit(root: &Node, cx: &mut Ctx) -> RetentionPatch {
    let mut r = RetentionPatch::default();
    let Some(entries) = cx.obj(root, "(root)") else {
        return r;
    };
    for e in entries {
        let f = e.key.as_str();
        match f {
            "retention" => r = retention(&e.val, f, cx),
            "enabled" => {
                cx.bool_(&e.val, f);
            }
            "logLevel" => {
                cx.str_(&e.val, f, "a string such as \"info\"");
            }
            "destinations" => {
                cx.str_list(&e.val, f, "a string such as \"file\"");
            }
            _ => {}
        }
    }
    r
}

pub(crate) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

pub(crate) fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/'))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// For an `http://` URL whose host is not loopback, `http://<host>/…` (the
/// scheme and host only: a path or query may hold a token, and warnings are
/// logged); `None` for `https://` and for loopback hosts (`localhost`,
/// 127.0.0.0/8, `[::1]`), where plain HTTP never leaves the machine.
pub(crate) fn plaintext_remote_url(url: &str) -> Option<String> {
    let rest = url
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Userinfo may hold a password: never part of the host shown.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| format!("http://{host_port}/…"))
}

#[cfg(test)]
mod tests {
    use super::plaintext_remote_url;

    #[test]
    fn plaintext_remote_url_flags_http_to_non_loopback_hosts_only() {
        let shown = |u: &str| plaintext_remote_url(u);
        assert_eq!(
            shown("http://siem.example.com/hooks/T0KEN"),
            Some("http://siem.example.com/…".into())
        );
        assert_eq!(
            shown("http://10.0.0.5:8080?key=abc"),
            Some("http://10.0.0.5:8080/…".into())
        );
        // Userinfo may hold a password: never shown.
        assert_eq!(
            shown("http://bob:pw@hooks.example.org/x"),
            Some("http://hooks.example.org/…".into())
        );
        assert_eq!(
            shown("http://[2001:db8::1]:80/x"),
            Some("http://[2001:db8::1]:80/…".into())
        );
        for quiet in [
            "https://siem.example.com/hooks",
            "http://localhost:9000/hook",
            "http://LOCALHOST/hook",
            "http://127.0.0.1/hook",
            "http://127.8.9.10:1/hook",
            "http://[::1]:9000/hook",
        ] {
            assert_eq!(shown(quiet), None, "{quiet}");
        }
    }
}
