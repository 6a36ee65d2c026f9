//! The webhook channels of `mcpwatch.toml`: `[[channels.webhook]]` in its
//! formats, and `[[channels.alertmanager]]`, which becomes one webhook
//! channel in the `alertmanager` format per URL.

use std::collections::BTreeMap;

use super::settings::{RESERVED_HEADERS, env_name, get, keys, nonempty_str, required};
use super::tree::{Ctx, Entry, one_of};
use super::{WebhookChannel, WebhookFormat};

const WEBHOOK: [&str; 8] = [
    "name",
    "url",
    "secret_env",
    "timeout",
    "headers",
    "format",
    "headers_env",
    "routing_key_env",
];

pub(super) fn webhook(cx: &mut Ctx, t: &[Entry], p: &str) -> Option<WebhookChannel> {
    keys(cx, t, p, &WEBHOOK);
    let before = cx.errors.len();
    let f = |k: &str| format!("{p}.{k}");
    let name = required(cx, t, p, "name", "a channel name")
        .and_then(|n| nonempty_str(cx, n, &f("name"), "a channel name"));
    let url = required(cx, t, p, "url", "an http:// or https:// URL").and_then(|n| {
        let s = cx.str_(n, &f("url"), "an http:// or https:// URL")?;
        if super::security::is_http_url(s) {
            Some(s.to_string())
        } else {
            cx.err(
                n.pos,
                &f("url"),
                format!("{s:?} is not a URL; expected http://... or https://..."),
            );
            None
        }
    });
    let secret_env = get(t, "secret_env").and_then(|n| env_name(cx, n, &f("secret_env")));
    let timeout = get(t, "timeout").map_or(Some(10_000), |n| cx.duration(n, &f("timeout"), 1));
    // Whether a header name may be set by the file; errors say why not.
    let header_ok = |cx: &mut Ctx, e: &Entry, field: &str| {
        let name_ok = !e.key.is_empty()
            && e.key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !name_ok {
            cx.err(
                e.key_pos,
                field,
                "not a valid HTTP header name (letters, digits and -)",
            );
        } else if RESERVED_HEADERS.contains(&e.key.to_ascii_lowercase().as_str()) {
            cx.err(
                e.key_pos,
                field,
                format!(
                    "mcpwatch sets this header itself; expected a header other than {}",
                    one_of(&[
                        "Content-Type",
                        "Content-Length",
                        "Idempotency-Key",
                        "Mcpwatch-Signature"
                    ])
                ),
            );
        }
        name_ok && !RESERVED_HEADERS.contains(&e.key.to_ascii_lowercase().as_str())
    };
    let mut headers = BTreeMap::new();
    if let Some(n) = get(t, "headers")
        && let Some(h) = cx.obj(n, &f("headers"))
    {
        for e in h {
            let field = format!("{p}.headers.{}", e.key);
            if !header_ok(cx, e, &field) {
            } else if let Some(v) = cx.str_(&e.val, &field, "a string") {
                if v.chars().any(|c| c.is_control()) {
                    cx.err(
                        e.val.pos,
                        &field,
                        "header values must not contain control characters",
                    );
                } else {
                    headers.insert(e.key.clone(), v.to_string());
                }
            }
        }
    }
    let mut headers_env = BTreeMap::new();
    if let Some(n) = get(t, "headers_env")
        && let Some(h) = cx.obj(n, &f("headers_env"))
    {
        for e in h {
            let field = format!("{p}.headers_env.{}", e.key);
            if header_ok(cx, e, &field)
                && let Some(var) = env_name(cx, &e.val, &field)
            {
                headers_env.insert(e.key.clone(), var);
            }
        }
    }
    let names: Vec<&str> = WebhookFormat::ALL.iter().map(|(n, _)| *n).collect();
    let format = match get(t, "format") {
        None => Some(WebhookFormat::Mcpwatch),
        Some(n) => cx.str_(n, &f("format"), &one_of(&names)).and_then(|s| {
            let found = WebhookFormat::ALL
                .iter()
                .find(|(n, _)| *n == s)
                .map(|(_, v)| *v);
            if found.is_none() {
                cx.err(
                    n.pos,
                    &f("format"),
                    format!("unknown format {s:?}; expected {}", one_of(&names)),
                );
            }
            found
        }),
    };
    let routing_key_env =
        get(t, "routing_key_env").and_then(|n| env_name(cx, n, &f("routing_key_env")));
    if format == Some(WebhookFormat::Pagerduty) && routing_key_env.is_none() {
        let pos = get(t, "format").map(|n| n.pos);
        if let Some(pos) = pos {
            cx.err(
                pos,
                &f("routing_key_env"),
                "format \"pagerduty\" needs routing_key_env: the name of the variable holding the integration's routing key",
            );
        }
    }
    if cx.errors.len() > before {
        return None;
    }
    Some(WebhookChannel {
        name: name?,
        url: url?,
        secret_env,
        timeout: timeout?,
        headers,
        format: format?,
        headers_env,
        routing_key_env,
        basic_auth: None,
        bearer_token_env: None,
        resolve_after: BTreeMap::new(),
    })
}

const ALERTMANAGER: [&str; 7] = [
    "name",
    "urls",
    "resolve_after",
    "basic_auth_user",
    "password_env",
    "bearer_token_env",
    "timeout",
];

/// `[[channels.alertmanager]]` (SPEC §5): one webhook channel in the
/// `alertmanager` format per URL, each its own outbox queue, named after
/// the channel (`name[i]` when there are several URLs).
pub(super) fn alertmanager(
    cx: &mut Ctx,
    t: &[Entry],
    p: &str,
) -> Option<(String, Vec<WebhookChannel>)> {
    keys(cx, t, p, &ALERTMANAGER);
    let before = cx.errors.len();
    let f = |k: &str| format!("{p}.{k}");
    let name = required(cx, t, p, "name", "a channel name")
        .and_then(|n| nonempty_str(cx, n, &f("name"), "a channel name"));
    let what = "a list of Alertmanager base URLs such as [\"http://am-1:9093\"]";
    let mut urls = Vec::new();
    if let Some(n) = required(cx, t, p, "urls", what) {
        let items = cx.str_list(n, &f("urls"), what);
        if items.is_empty() {
            cx.err(n.pos, &f("urls"), format!("no URL; expected {what}"));
        }
        for (i, (pos, u)) in items.iter().enumerate() {
            if super::security::is_http_url(u) {
                urls.push(format!("{}/api/v2/alerts", u.trim_end_matches('/')));
            } else {
                cx.err(
                    *pos,
                    &format!("{p}.urls[{i}]"),
                    format!("{u:?} is not a URL; expected http://... or https://..."),
                );
            }
        }
    }
    let resolve = get(t, "resolve_after").and_then(|n| cx.duration(n, &f("resolve_after"), 1));
    let timeout = get(t, "timeout").map_or(Some(10_000), |n| cx.duration(n, &f("timeout"), 1));
    let user = get(t, "basic_auth_user")
        .and_then(|n| nonempty_str(cx, n, &f("basic_auth_user"), "a user name"));
    let password_env = get(t, "password_env").and_then(|n| env_name(cx, n, &f("password_env")));
    let bearer_token_env =
        get(t, "bearer_token_env").and_then(|n| env_name(cx, n, &f("bearer_token_env")));
    let basic_auth = match (user, password_env) {
        (Some(u), Some(v)) => Some((u, v)),
        (None, None) => None,
        _ => {
            let at = get(t, "basic_auth_user").or(get(t, "password_env"));
            if let Some(n) = at {
                cx.err(
                    n.pos,
                    &f("basic_auth_user"),
                    "basic_auth_user and password_env go together; expected both or neither",
                );
            }
            None
        }
    };
    if cx.errors.len() > before {
        return None;
    }
    let name = name?;
    let several = urls.len() > 1;
    let targets = (urls.into_iter().enumerate())
        .map(|(i, url)| WebhookChannel {
            name: if several {
                format!("{name}[{i}]")
            } else {
                name.clone()
            },
            url,
            secret_env: None,
            timeout: timeout.unwrap_or(10_000),
            headers: BTreeMap::new(),
            format: WebhookFormat::Alertmanager,
            headers_env: BTreeMap::new(),
            routing_key_env: None,
            basic_auth: basic_auth.clone(),
            bearer_token_env: bearer_token_env.clone(),
            // "*": the channel's own resolve_after, for every rule.
            resolve_after: resolve
                .map(|r| BTreeMap::from([("*".to_string(), r)]))
                .unwrap_or_default(),
        })
        .collect();
    Some((name, targets))
}
