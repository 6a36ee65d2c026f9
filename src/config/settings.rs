//! `mcpwatch.toml`: the daemon's own settings. Unlike the seed's JSON, this
//! is our format, so unknown keys are errors. Secrets never appear in it:
//! a key that looks like an inline secret is refused (without echoing its
//! value) and the operator is told to name an environment variable.

use std::collections::HashSet;
use std::path::PathBuf;

use super::tree::{Ctx, Entry, Node, Pos, Val, join, one_of};
use super::{
    DeliverySettings, EmailChannel, InputSettings, LogFormat, RotationSettings, Route, RuleName,
    Settings, TlsMode, parse_addr,
};
use crate::event::Severity;

/// The default audit log directory (SPEC §2).
pub(crate) const DEFAULT_DIR: &str = ".elevenlabs/audit";
/// The default metrics address; loopback only, so nothing is exposed
/// unless the operator asks.
pub(crate) const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            state_dir: None,
            metrics_addr: DEFAULT_METRICS_ADDR.parse().ok(),
            log_format: LogFormat::Text,
            input: InputSettings {
                dir: PathBuf::from(DEFAULT_DIR),
                max_line_bytes: 1_048_576,
                poll_interval: 1_000,
            },
            email: Vec::new(),
            webhook: Vec::new(),
            routes: Vec::new(),
            actions: Vec::new(),
            delivery: DeliverySettings {
                max_age: 86_400_000,
            },
            rotation: RotationSettings {
                max_size: 100 * 1024 * 1024,
                daily: true,
                rotate_wait: 60_000,
                level: 3,
                post_rotate: String::new(),
                create: false,
            },
        }
    }
}

const TOP: [&str; 9] = [
    "state_dir",
    "metrics_addr",
    "log_format",
    "input",
    "channels",
    "routes",
    "actions",
    "delivery",
    "rotation",
];
const INPUT: [&str; 3] = ["dir", "max_line_bytes", "poll_interval"];
const EMAIL: [&str; 10] = [
    "name",
    "smtp_host",
    "smtp_port",
    "tls",
    "allow_plaintext",
    "username",
    "password_env",
    "from",
    "to",
    "max_per_hour",
];
const ROUTE: [&str; 4] = ["channels", "min_severity", "rules", "group_wait"];
const ROTATION: [&str; 6] = [
    "max_size",
    "daily",
    "rotate_wait",
    "level",
    "post_rotate",
    "create",
];
/// Headers mcpwatch sets itself; a configured one would forge or break them.
pub(super) const RESERVED_HEADERS: [&str; 4] = [
    "content-type",
    "content-length",
    "idempotency-key",
    "mcpwatch-signature",
];

/// Keys that would hold a secret inline, and the `_env` key to use instead.
fn inline_secret(key: &str) -> Option<&'static str> {
    match key {
        "password" | "smtp_password" | "pass" => Some("password_env"),
        "secret" | "token" | "api_key" | "apikey" | "hmac_secret" | "webhook_secret" => {
            Some("secret_env")
        }
        _ => None,
    }
}

/// Unknown keys are errors; inline secrets get their own message.
pub(super) fn keys(cx: &mut Ctx, entries: &[Entry], prefix: &str, allowed: &[&str]) {
    for e in entries {
        if allowed.contains(&e.key.as_str()) {
            continue;
        }
        let field = join(prefix, &e.key);
        match inline_secret(&e.key) {
            Some(env) => cx.err(
                e.key_pos,
                &field,
                format!(
                    "secrets are not written in mcpwatch.toml; set {env} to the name of an environment variable holding it"
                ),
            ),
            None => cx.err(
                e.key_pos,
                &field,
                format!("unknown key {:?}; expected {}", e.key, one_of(allowed)),
            ),
        }
    }
}

pub(crate) fn check_settings(root: &Node, cx: &mut Ctx) -> Settings {
    let mut s = Settings::default();
    let Some(entries) = cx.obj(root, "(root)") else {
        return s;
    };
    keys(cx, entries, "", &TOP);
    let mut routes_node = None;
    // `[[channels.alertmanager]]` names and the queue (webhook channel) of
    // each of their URLs.
    let mut expanded: Vec<(String, Vec<String>)> = Vec::new();
    let mut actions_node = None;
    for e in entries {
        let (f, v) = (e.key.as_str(), &e.val);
        match f {
            "state_dir" => {
                if let Some(p) = path(cx, v, f) {
                    s.state_dir = Some(p);
                }
            }
            "metrics_addr" => {
                if let Some(a) = cx.str_(v, f, "\"off\" or host:port such as \"127.0.0.1:9464\"") {
                    match parse_addr(a) {
                        Ok(addr) => s.metrics_addr = addr,
                        Err(m) => cx.err(v.pos, f, m),
                    }
                }
            }
            "log_format" => {
                if let Some(x) = cx.str_(v, f, "a string: text or json") {
                    match x {
                        "text" => s.log_format = LogFormat::Text,
                        "json" => s.log_format = LogFormat::Json,
                        _ => cx.err(
                            v.pos,
                            f,
                            format!("unknown value {x:?}; expected text or json"),
                        ),
                    }
                }
            }
            "input" => {
                if let Some(t) = cx.obj(v, f) {
                    keys(cx, t, f, &INPUT);
                    for e in t {
                        let field = format!("input.{}", e.key);
                        match e.key.as_str() {
                            "dir" => {
                                if let Some(p) = path(cx, &e.val, &field) {
                                    s.input.dir = p;
                                }
                            }
                            "max_line_bytes" => {
                                if let Some(n) = cx.int(
                                    &e.val,
                                    &field,
                                    1024,
                                    1 << 30,
                                    "a whole number of bytes from 1024 to 1073741824",
                                ) {
                                    s.input.max_line_bytes = n as usize;
                                }
                            }
                            "poll_interval" => {
                                if let Some(d) = cx.duration(&e.val, &field, 1) {
                                    s.input.poll_interval = d;
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            "channels" => {
                if let Some(t) = cx.obj(v, f) {
                    keys(cx, t, f, &["email", "webhook", "alertmanager"]);
                    for e in t {
                        let field = format!("channels.{}", e.key);
                        match e.key.as_str() {
                            "email" => {
                                for (i, c) in tables(cx, &e.val, &field) {
                                    if let Some(ch) = email(cx, c, &format!("{field}[{i}]")) {
                                        s.email.push(ch);
                                    }
                                }
                            }
                            "webhook" => {
                                for (i, c) in tables(cx, &e.val, &field) {
                                    if let Some(ch) =
                                        super::channels::webhook(cx, c, &format!("{field}[{i}]"))
                                    {
                                        s.webhook.push(ch);
                                    }
                                }
                            }
                            "alertmanager" => {
                                for (i, c) in tables(cx, &e.val, &field) {
                                    let p = format!("{field}[{i}]");
                                    if let Some((name, targets)) =
                                        super::channels::alertmanager(cx, c, &p)
                                    {
                                        expanded.push((
                                            name,
                                            targets.iter().map(|t| t.name.clone()).collect(),
                                        ));
                                        s.webhook.extend(targets);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            "routes" => routes_node = Some(v),
            "actions" => actions_node = Some(v),
            "delivery" => {
                if let Some(t) = cx.obj(v, f) {
                    keys(cx, t, f, &["max_age"]);
                    if let Some(e) = t.iter().find(|e| e.key == "max_age")
                        && let Some(d) = cx.duration(&e.val, "delivery.max_age", 1)
                    {
                        s.delivery.max_age = d;
                    }
                }
            }
            "rotation" => rotation(cx, v, &mut s.rotation),
            _ => {}
        }
    }
    // Channel names are one namespace: routes refer to them by name.
    let mut names = HashSet::new();
    for (name, pos, field) in channel_names(root) {
        if !names.insert(name.clone()) {
            cx.err(pos, &field, format!("channel name {name:?} is used twice"));
        }
    }
    if let Some(v) = actions_node {
        s.actions = super::actions::check_actions(cx, v, &names);
    }
    if let Some(v) = routes_node {
        // Named in the file, valid or not: a route to one is wrong either way.
        let actions: HashSet<&str> = match actions_node.map(|n| &n.val) {
            Some(Val::Arr(items)) => items
                .iter()
                .filter_map(|t| match t.get("name").map(|e| &e.val.val) {
                    Some(Val::Str(n)) => Some(n.as_str()),
                    _ => None,
                })
                .collect(),
            _ => HashSet::new(),
        };
        for (i, r) in tables(cx, v, "routes") {
            if let Some(mut route) = route(cx, r, &format!("routes[{i}]"), &names, &actions) {
                // An Alertmanager channel is one outbox queue per URL.
                route.channels = (route.channels.into_iter())
                    .flat_map(|c| match expanded.iter().find(|(n, _)| *n == c) {
                        Some((_, targets)) => targets.clone(),
                        None => vec![c],
                    })
                    .collect();
                s.routes.push(route);
            }
        }
    }
    s
}

/// `(name, position, field)` of every channel that has a string name.
fn channel_names(root: &Node) -> Vec<(String, Pos, String)> {
    let mut out = Vec::new();
    let Some(ch) = root.get("channels") else {
        return out;
    };
    for kind in ["email", "webhook", "alertmanager"] {
        if let Some(Val::Arr(items)) = ch.val.get(kind).map(|e| &e.val.val) {
            for (i, t) in items.iter().enumerate() {
                if let Some(Entry {
                    val:
                        Node {
                            pos,
                            val: Val::Str(n),
                        },
                    ..
                }) = t.get("name")
                {
                    out.push((n.clone(), *pos, format!("channels.{kind}[{i}].name")));
                }
            }
        }
    }
    out
}

/// The tables of an array of tables (`[[x]]`), each with its index.
pub(super) fn tables<'n>(cx: &mut Ctx, v: &'n Node, field: &str) -> Vec<(usize, &'n [Entry])> {
    let mut out = Vec::new();
    if let Val::Obj(_) = v.val {
        cx.err(
            v.pos,
            field,
            format!("expected an array of tables; write [[{field}]], not [{field}]"),
        );
        return out;
    }
    if let Some(items) = cx.arr(v, field) {
        for (i, item) in items.iter().enumerate() {
            if let Some(t) = cx.obj(item, &format!("{field}[{i}]")) {
                out.push((i, t));
            }
        }
    }
    out
}

pub(super) fn get<'n>(t: &'n [Entry], key: &str) -> Option<&'n Node> {
    t.iter().rev().find(|e| e.key == key).map(|e| &e.val)
}

/// A required key: reports it missing at the table's first key.
pub(super) fn required<'n>(
    cx: &mut Ctx,
    t: &'n [Entry],
    prefix: &str,
    key: &str,
    what: &str,
) -> Option<&'n Node> {
    let n = get(t, key);
    if n.is_none() {
        let pos = t.first().map_or(Pos { line: 1, col: 1 }, |e| e.key_pos);
        cx.err(pos, &join(prefix, key), format!("missing; expected {what}"));
    }
    n
}

pub(super) fn nonempty_str(cx: &mut Ctx, n: &Node, field: &str, what: &str) -> Option<String> {
    let s = cx.str_(n, field, what)?;
    if s.trim().is_empty() {
        cx.err(n.pos, field, format!("must not be empty; expected {what}"));
        return None;
    }
    Some(s.to_string())
}

pub(super) fn env_name(cx: &mut Ctx, n: &Node, field: &str) -> Option<String> {
    const WHAT: &str = "the name of an environment variable such as \"MCPWATCH_SMTP_PASSWORD\"";
    let s = cx.str_(n, field, WHAT)?;
    let valid = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Some(s.to_string())
    } else {
        // Never echo the value: it may be the secret itself, pasted here.
        cx.err(
            n.pos,
            field,
            format!(
                "not a valid environment variable name (letters, digits and _); expected {WHAT}"
            ),
        );
        None
    }
}

fn path(cx: &mut Ctx, n: &Node, field: &str) -> Option<PathBuf> {
    nonempty_str(cx, n, field, "a path").map(PathBuf::from)
}

fn email(cx: &mut Ctx, t: &[Entry], p: &str) -> Option<EmailChannel> {
    keys(cx, t, p, &EMAIL);
    let before = cx.errors.len();
    let f = |k: &str| format!("{p}.{k}");
    let name = required(cx, t, p, "name", "a channel name")
        .and_then(|n| nonempty_str(cx, n, &f("name"), "a channel name"));
    let smtp_host = required(cx, t, p, "smtp_host", "the SMTP server's host name")
        .and_then(|n| nonempty_str(cx, n, &f("smtp_host"), "a host name"));
    let smtp_port = get(t, "smtp_port").map_or(Some(587), |n| {
        cx.int(n, &f("smtp_port"), 1, 65535, "a port from 1 to 65535")
    });
    let tls_node = get(t, "tls");
    let tls = tls_node.map_or(Some(TlsMode::StartTls), |n| {
        let s = cx.str_(n, &f("tls"), "a string: starttls, tls or none")?;
        match s {
            "starttls" => Some(TlsMode::StartTls),
            "tls" => Some(TlsMode::Tls),
            "none" => Some(TlsMode::None),
            _ => {
                cx.err(
                    n.pos,
                    &f("tls"),
                    format!("unknown value {s:?}; expected starttls, tls or none"),
                );
                None
            }
        }
    });
    let allow_plaintext =
        get(t, "allow_plaintext").map_or(Some(false), |n| cx.bool_(n, &f("allow_plaintext")));
    if let (Some(TlsMode::None), Some(false), Some(n)) = (tls, allow_plaintext, tls_node) {
        cx.err(
            n.pos,
            &f("tls"),
            "\"none\" sends mail and credentials in plain text; set allow_plaintext = true to allow it, or use starttls or tls",
        );
    }
    let username =
        get(t, "username").and_then(|n| nonempty_str(cx, n, &f("username"), "a user name"));
    let password_env = get(t, "password_env").and_then(|n| env_name(cx, n, &f("password_env")));
    let from = required(cx, t, p, "from", "the sender's email address")
        .and_then(|n| address(cx, n, &f("from")));
    let mut to = Vec::new();
    if let Some(n) = required(cx, t, p, "to", "a list of recipient email addresses") {
        for (i, (pos, s)) in cx
            .str_list(n, &f("to"), "an email address")
            .into_iter()
            .enumerate()
        {
            if super::security::is_email(s) {
                to.push(s.to_string());
            } else {
                cx.err(
                    pos,
                    &format!("{p}.to[{i}]"),
                    format!("{s:?} is not an email address"),
                );
            }
        }
        if matches!(&n.val, Val::Arr(a) if a.is_empty()) {
            cx.err(n.pos, &f("to"), "must list at least one recipient");
        }
    }
    let max_per_hour = get(t, "max_per_hour").map_or(Some(30), |n| {
        cx.int(
            n,
            &f("max_per_hour"),
            1,
            100_000,
            "a whole number from 1 to 100000",
        )
    });
    if cx.errors.len() > before {
        return None;
    }
    Some(EmailChannel {
        name: name?,
        smtp_host: smtp_host?,
        smtp_port: smtp_port? as u16,
        tls: tls?,
        allow_plaintext: allow_plaintext?,
        username,
        password_env,
        from: from?,
        to,
        max_per_hour: max_per_hour? as u32,
    })
}

fn address(cx: &mut Ctx, n: &Node, field: &str) -> Option<String> {
    let s = cx.str_(n, field, "an email address")?;
    if super::security::is_email(s) {
        Some(s.to_string())
    } else {
        cx.err(n.pos, field, format!("{s:?} is not an email address"));
        None
    }
}

fn route(
    cx: &mut Ctx,
    t: &[Entry],
    p: &str,
    names: &HashSet<String>,
    actions: &HashSet<&str>,
) -> Option<Route> {
    keys(cx, t, p, &ROUTE);
    let before = cx.errors.len();
    let f = |k: &str| format!("{p}.{k}");
    let mut channels = Vec::new();
    if let Some(n) = required(cx, t, p, "channels", "a list of channel names") {
        let mut known: Vec<&str> = names.iter().map(String::as_str).collect();
        known.sort_unstable();
        for (i, (pos, s)) in cx
            .str_list(n, &f("channels"), "a channel name")
            .into_iter()
            .enumerate()
        {
            if names.contains(s) {
                channels.push(s.to_string());
            } else if actions.contains(s) {
                cx.err(
                    pos,
                    &format!("{p}.channels[{i}]"),
                    format!(
                        "{s:?} is an action; actions are not route targets (each runs for the alerts its own min_severity and rules select)"
                    ),
                );
            } else if known.is_empty() {
                cx.err(
                    pos,
                    &format!("{p}.channels[{i}]"),
                    format!("unknown channel {s:?}; no channels are configured"),
                );
            } else {
                cx.err(
                    pos,
                    &format!("{p}.channels[{i}]"),
                    format!("unknown channel {s:?}; expected {}", one_of(&known)),
                );
            }
        }
        if matches!(&n.val, Val::Arr(a) if a.is_empty()) {
            cx.err(n.pos, &f("channels"), "must name at least one channel");
        }
    }
    let min_severity =
        get(t, "min_severity").map_or(Some(Severity::Low), |n| severity(cx, n, &f("min_severity")));
    let rules = get(t, "rules").map_or_else(Vec::new, |n| rule_list(cx, n, p));
    let group_wait =
        get(t, "group_wait").map_or(Some(30_000), |n| cx.duration(n, &f("group_wait"), 0));
    if cx.errors.len() > before {
        return None;
    }
    Some(Route {
        channels,
        min_severity: min_severity?,
        rules,
        group_wait: group_wait?,
    })
}

/// A severity name (`min_severity`).
pub(super) fn severity(cx: &mut Ctx, n: &Node, field: &str) -> Option<Severity> {
    let sev_names: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
    let s = cx.str_(n, field, &format!("a string: {}", one_of(&sev_names)))?;
    let sev = Severity::parse(s);
    if sev.is_none() {
        cx.err(
            n.pos,
            field,
            format!("unknown value {s:?}; expected {}", one_of(&sev_names)),
        );
    }
    sev
}

/// `<p>.rules`: a list of rule names.
pub(super) fn rule_list(cx: &mut Ctx, n: &Node, p: &str) -> Vec<RuleName> {
    let rule_names: Vec<&str> = RuleName::ALL.iter().map(|r| r.as_str()).collect();
    let mut rules = Vec::new();
    for (i, (pos, s)) in cx
        .str_list(n, &format!("{p}.rules"), "a rule name")
        .into_iter()
        .enumerate()
    {
        match RuleName::parse(s) {
            Some(r) => rules.push(r),
            None => cx.err(
                pos,
                &format!("{p}.rules[{i}]"),
                format!("unknown rule {s:?}; expected {}", one_of(&rule_names)),
            ),
        }
    }
    rules
}

fn rotation(cx: &mut Ctx, v: &Node, r: &mut RotationSettings) {
    let Some(t) = cx.obj(v, "rotation") else {
        return;
    };
    keys(cx, t, "rotation", &ROTATION);
    for e in t {
        let field = format!("rotation.{}", e.key);
        let n = &e.val;
        match e.key.as_str() {
            "max_size" => {
                let size = match &n.val {
                    Val::Str(s) => parse_size(s).map_err(|m| cx.err(n.pos, &field, m)).ok(),
                    _ => cx
                        .int(n, &field, 1, i64::MAX, "a size such as \"100MiB\", \"1GiB\" or \"500KB\", or a number of bytes")
                        .map(|b| b as u64),
                };
                if let Some(b) = size {
                    if b < 1024 {
                        cx.err(
                            n.pos,
                            &field,
                            format!("{b} bytes is too small; expected at least 1KiB"),
                        );
                    } else {
                        r.max_size = b;
                    }
                }
            }
            "daily" => {
                if let Some(b) = cx.bool_(n, &field) {
                    r.daily = b;
                }
            }
            "rotate_wait" => {
                if let Some(d) = cx.duration(n, &field, 0) {
                    r.rotate_wait = d;
                }
            }
            "level" => {
                if let Some(l) = cx.int(n, &field, 1, 22, "a zstd level from 1 to 22") {
                    r.level = l as i32;
                }
            }
            "post_rotate" => {
                if let Some(s) = cx.str_(n, &field, "a shell command, or \"\" for none") {
                    r.post_rotate = s.to_string();
                }
            }
            "create" => {
                if let Some(b) = cx.bool_(n, &field) {
                    r.create = b;
                }
            }
            _ => {}
        }
    }
}

/// A size: `"100MiB"`, `"1GiB"`, `"500KB"`, `"4096"`, `"10B"`. KB/MB/GB/TB
/// are powers of 1000, KiB/MiB/GiB/TiB powers of 1024.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        format!(
            "invalid size {s:?}; expected e.g. \"100MiB\", \"1GiB\" or \"500KB\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}
