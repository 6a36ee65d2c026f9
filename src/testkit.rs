//! Deterministic test data: the bundled example project and benchmark logs.
//!
//! Tests, benches and the README's quick start all draw their input from
//! here, so they agree on what the example contains. Everything is driven by
//! a tiny seeded PRNG (splitmix64) and fixed timestamps, never by the clock:
//! the same call writes the same bytes on every machine, which is what lets
//! `tests/fixtures_gen.rs` pin the committed `fixtures/example/` to this code.
//!
//! The example is one day (2026-11-23 UTC) of traffic for 36 users, shaped so
//! that normal traffic sets off none of the rules of SPEC §3 and each planted
//! anomaly sets off exactly its own rule once; [`planted`] and the generated
//! `PLANTED.md` say which line fires.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::alert::alert_id;
use crate::event::Millis;

/// 2026-11-23T00:00:00Z, the example's day.
pub const EXAMPLE_DAY_MS: Millis = 1_795_392_000_000;

const SEC: Millis = 1000;
const MIN: Millis = 60 * SEC;
const HOUR: Millis = 60 * MIN;

/// splitmix64: tiny, fast, good enough for test data, and stable forever
/// (no dependency whose stream could change under us).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }

    /// True with probability `p` (in steps of 1/1,000,000).
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() % 1_000_000) as f64) < p * 1_000_000.0
    }

    /// A uniformly chosen item; `items` must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as i64) as usize]
    }
}

/// RFC 3339 UTC with milliseconds, as the audit logs write it. Hand-rolled
/// because the bench generator formats a million of them.
pub fn rfc3339_ms(ms: Millis) -> String {
    let mut s = String::with_capacity(24);
    push_rfc3339_ms(&mut s, ms);
    s
}

fn push_rfc3339_ms(out: &mut String, ms: Millis) {
    crate::alert::push_ts(out, ms);
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

// ---------------------------------------------------------------------------
// The example project

/// The example's `security-config.json`: fine-grained rules naming every
/// tool normal traffic uses, the seed guide's patterns, and the disabled
/// tool of the planted anomaly named explicitly (a tool matched only by a
/// pattern would also be a never-seen tool and fire `new_tool_usage`).
pub const EXAMPLE_SECURITY_CONFIG: &str = r#"{
  "approvalMode": "fine_grained",
  "rules": {
    "autoApproved": {
      "patterns": ["*_read", "*_get", "*_search"],
      "tools": ["email_read", "email_search", "calendar_read", "order_get",
                "contact_search", "file_search", "file_read", "weather_get"]
    },
    "requiresApproval": {
      "patterns": ["*_send", "*_create", "*_update"],
      "tools": ["email_send", "calendar_create", "order_process",
                "contact_update", "file_export"]
    },
    "disabled": {
      "patterns": ["*_delete", "admin_*"],
      "tools": ["user_delete", "system_admin", "admin_reset_password"]
    }
  },
  "approvalTimeout": 300,
  "fallbackOnTimeout": "deny",
  "auditLogging": {
    "enabled": true,
    "retention": { "days": 90, "compress": true }
  },
  "monitoring": { "enabled": true, "anomalyDetection": true },
  "rateLimiting": { "enabled": true, "requestsPerMinute": 60, "burstLimit": 10 },
  "incidentResponse": {
    "notificationEmails": ["security@example.com"],
    "escalationWebhook": "https://alerts.example.com/hooks/mcpwatch"
  }
}
"#;

struct Tool {
    server: &'static str,
    name: &'static str,
    needs_approval: bool,
    /// Relative frequency in normal traffic.
    weight: i64,
}

const fn tool(server: &'static str, name: &'static str, needs_approval: bool, weight: i64) -> Tool {
    Tool {
        server,
        name,
        needs_approval,
        weight,
    }
}

/// Every tool of normal traffic; all are named in the example policy.
const TOOLS: &[Tool] = &[
    tool("gmail", "email_read", false, 14),
    tool("gmail", "email_search", false, 9),
    tool("gmail", "email_send", true, 7),
    tool("calendar", "calendar_read", false, 10),
    tool("calendar", "calendar_create", true, 4),
    tool("orders", "order_get", false, 12),
    tool("orders", "order_process", true, 4),
    tool("crm", "contact_search", false, 8),
    tool("crm", "contact_update", true, 3),
    tool("drive", "file_search", false, 7),
    tool("drive", "file_read", false, 6),
    tool("drive", "file_export", true, 2),
    tool("weather", "weather_get", false, 5),
];

const ERRORS: &[(&str, &str, &str)] = &[
    ("504", "upstream_timeout", "timed out after 30s"),
    (
        "429",
        "rate_limited",
        "upstream returned 429 Too Many Requests",
    ),
    ("502", "upstream_error", "upstream returned 502 Bad Gateway"),
    ("400", "invalid_arguments", "argument validation failed"),
];

const USERS: usize = 36;
const DAY_START: Millis = EXAMPLE_DAY_MS + 6 * HOUR;
const DAY_END: Millis = EXAMPLE_DAY_MS + 22 * HOUR;
/// Normal calls of one user are at least this far apart, so no 60 s window
/// holds more than 8 of them (rapid_tool_usage needs 11).
const MIN_GAP: Millis = 8 * SEC;

/// One planted anomaly: the alert it must raise, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Planted {
    pub rule: &'static str,
    /// The alert key, canonical field names → values.
    pub key: BTreeMap<String, String>,
    /// Event time of the firing line.
    pub ts: Millis,
    /// File name of the firing line (`tool-usage.log`, …).
    pub file: &'static str,
    /// 1-based line number of the firing line in `file`.
    pub line: u64,
    /// The alert's `value`, as JSON text, where the rule has one.
    pub value: Option<&'static str>,
    /// SPEC §4 alert id (sha256 of rule, key and firing line).
    pub id: String,
    pub note: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum File {
    Calls = 0,
    Approvals = 1,
    Errors = 2,
}

const FILE_NAMES: [&str; 3] = ["tool-usage.log", "approvals.log", "errors.log"];

struct Rec {
    file: File,
    ts: Millis,
    line: String,
    /// Index into the planted list when this line fires a planted alert.
    fires: Option<usize>,
}

/// What varies per line: most lines use canonical names, some the aliases
/// real deployments write.
struct Style {
    canonical: bool,
}

impl Style {
    fn ts(&self, rng: &mut Rng, ts: Millis) -> String {
        if self.canonical {
            return format!(r#""ts":"{}""#, rfc3339_ms(ts));
        }
        let key = match rng.range(0, 20) {
            0 => "timestamp",
            1 => "@timestamp",
            _ => "ts",
        };
        match rng.range(0, 20) {
            0 => format!(r#""{key}":{ts}"#),
            _ => format!(r#""{key}":"{}""#, rfc3339_ms(ts)),
        }
    }

    fn key(&self, rng: &mut Rng, canonical: &'static str, alias: &'static str) -> &'static str {
        if !self.canonical && rng.range(0, 25) == 0 {
            alias
        } else {
            canonical
        }
    }
}

struct Call<'a> {
    ts: Millis,
    rid: String,
    user: &'a str,
    agent: &'a str,
    conv: &'a str,
    server: &'a str,
    tool: &'a str,
    outcome: &'static str,
    duration_ms: i64,
    args_bytes: i64,
}

fn call_line(rng: &mut Rng, st: &Style, c: &Call<'_>) -> String {
    let ts = st.ts(rng, c.ts);
    let rk = st.key(rng, "request_id", "requestId");
    let uk = st.key(rng, "user_id", "user");
    let duration = match (st.canonical, rng.range(0, 30)) {
        (false, 0) => format!(r#""latency_ms":{}"#, c.duration_ms),
        (false, 1) => format!(
            r#""tool_latency_secs":{}.{:03}"#,
            c.duration_ms / 1000,
            c.duration_ms % 1000
        ),
        _ => format!(r#""duration_ms":{}"#, c.duration_ms),
    };
    format!(
        r#"{{{ts},"{rk}":{},"{uk}":{},"agent_id":{},"conversation_id":{},"server_name":{},"tool_name":{},"outcome":"{}",{duration},"args_bytes":{}}}"#,
        js(&c.rid),
        js(c.user),
        js(c.agent),
        js(c.conv),
        js(c.server),
        js(c.tool),
        c.outcome,
        c.args_bytes
    )
}

fn approval_line(rng: &mut Rng, st: &Style, c: &Call<'_>, ts: Millis, decision: &str) -> String {
    let t = st.ts(rng, ts);
    let rk = st.key(rng, "request_id", "requestId");
    let dk = st.key(rng, "decision", "result");
    let decided_by = if decision == "timeout" {
        "policy"
    } else {
        "human"
    };
    format!(
        r#"{{{t},"{rk}":{},"user_id":{},"agent_id":{},"conversation_id":{},"server_name":{},"tool_name":{},"approval_mode":"fine_grained","{dk}":"{decision}","decided_by":"{decided_by}","wait_ms":{}}}"#,
        js(&c.rid),
        js(c.user),
        js(c.agent),
        js(c.conv),
        js(c.server),
        js(c.tool),
        if decision == "timeout" {
            300_000
        } else {
            rng.range(800, 3500)
        }
    )
}

fn error_line(rng: &mut Rng, st: &Style, c: &Call<'_>, ts: Millis, which: usize) -> String {
    let t = st.ts(rng, ts);
    let mk = st.key(rng, "error_message", "error");
    let (code, kind, message) = ERRORS[which % ERRORS.len()];
    format!(
        r#"{{{t},"request_id":{},"user_id":{},"server_name":{},"tool_name":{},"error_code":"{code}","error_type":"{kind}","{mk}":{},"phase":"execute"}}"#,
        js(&c.rid),
        js(c.user),
        js(c.server),
        js(c.tool),
        js(message)
    )
}

fn user_name(n: usize) -> String {
    format!("u-{n:02}")
}

fn agent_of(user: usize) -> String {
    format!("ag-{}", 1 + user % 6)
}

fn key(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn at(h: i64, m: i64, s: i64, ms: i64) -> Millis {
    EXAMPLE_DAY_MS + h * HOUR + m * MIN + s * SEC + ms
}

/// The whole example: every line of the three logs (unsorted) and the
/// planted alerts (line numbers filled in by [`example_files`]).
struct Example {
    recs: Vec<Rec>,
    planted: Vec<Planted>,
}

struct Builder {
    rng: Rng,
    next_rid: u64,
    recs: Vec<Rec>,
    planted: Vec<Planted>,
}

impl Builder {
    fn rid(&mut self) -> String {
        self.next_rid += 1;
        format!("r-{:06}", self.next_rid)
    }

    fn plant(
        &mut self,
        rule: &'static str,
        key: BTreeMap<String, String>,
        value: Option<&'static str>,
        note: &'static str,
    ) -> usize {
        self.planted.push(Planted {
            rule,
            key,
            ts: 0,
            file: "",
            line: 0,
            value,
            id: String::new(),
            note,
        });
        self.planted.len() - 1
    }

    fn push(&mut self, file: File, ts: Millis, line: String, fires: Option<usize>) {
        self.recs.push(Rec {
            file,
            ts,
            line,
            fires,
        });
    }

    /// A planted call (canonical field names), with an approval `approval_at`
    /// ms before it when given.
    #[allow(clippy::too_many_arguments)]
    fn planted_call(
        &mut self,
        user: usize,
        ts: Millis,
        server: &str,
        tool: &str,
        outcome: &'static str,
        approval: Option<(Millis, &str)>,
        fires_call: Option<usize>,
        fires_approval: Option<usize>,
    ) -> String {
        let st = Style { canonical: true };
        let user_s = user_name(user);
        let agent = agent_of(user);
        let conv = format!("c-{user_s}-p{}", self.next_rid + 1);
        let c = Call {
            ts,
            rid: self.rid(),
            user: &user_s,
            agent: &agent,
            conv: &conv,
            server,
            tool,
            outcome,
            duration_ms: self.rng.range(40, 900),
            args_bytes: self.rng.range(60, 2000),
        };
        if let Some((before, decision)) = approval {
            let line = approval_line(&mut self.rng, &st, &c, ts - before, decision);
            self.push(File::Approvals, ts - before, line, fires_approval);
        }
        let line = call_line(&mut self.rng, &st, &c);
        self.push(File::Calls, ts, line, fires_call);
        c.rid
    }
}

/// Time ranges in which a user has no normal traffic, around the planted
/// anomalies, so each fires exactly as planned.
fn excluded(user: usize, ts: Millis) -> bool {
    let ranges: &[(usize, Millis, Millis)] = &[
        (7, at(10, 20, 0, 0), at(10, 50, 0, 0)),
        (21, at(11, 55, 0, 0), at(14, 35, 0, 0)),
        (29, at(16, 40, 0, 0), at(16, 50, 0, 0)),
        (33, at(11, 42, 0, 0), at(11, 52, 0, 0)),
        (18, at(14, 17, 0, 0), at(14, 28, 0, 0)),
    ];
    let spike_users = [2, 4, 9, 11, 15, 25, 30];
    ranges
        .iter()
        .any(|&(u, a, b)| u == user && ts >= a && ts <= b)
        || (spike_users.contains(&user) && ts >= at(15, 15, 0, 0) && ts <= at(15, 30, 0, 0))
}

fn build_example() -> Example {
    let mut b = Builder {
        rng: Rng::new(0x6d63_7077_6174_6368),
        next_rid: 0,
        recs: Vec::new(),
        planted: Vec::new(),
    };
    normal_traffic(&mut b);
    planted_anomalies(&mut b);
    Example {
        recs: b.recs,
        planted: b.planted,
    }
}

fn normal_traffic(b: &mut Builder) {
    let total_weight: i64 = TOOLS.iter().map(|t| t.weight).sum();
    // Error times per server: a normal error keeps 5 minutes from any other
    // on its server, far from error_spike's 6 in 5 minutes.
    let mut errors: BTreeMap<&str, Vec<Millis>> = BTreeMap::new();
    let spike_quiet = (at(15, 5, 0, 0), at(15, 45, 0, 0));
    for u in 1..=USERS {
        let user = user_name(u);
        let agent = agent_of(u);
        let target = b.rng.range(50, 130) as usize;
        let mut times: Vec<(Millis, u32)> = Vec::new();
        let mut session = 0u32;
        while times.len() < target {
            session += 1;
            let mut t = DAY_START + b.rng.range(0, 15 * HOUR + 30 * MIN);
            for _ in 0..b.rng.range(3, 13) {
                times.push((t, session));
                t += b.rng.range(MIN_GAP, 90 * SEC);
            }
        }
        times.sort();
        let mut last = Millis::MIN / 2;
        let mut denials: Vec<Millis> = Vec::new();
        for (t, session) in times {
            let t = t.max(last + MIN_GAP);
            if t >= DAY_END - 10 * SEC {
                break;
            }
            last = t;
            if excluded(u, t) {
                continue;
            }
            let mut w = b.rng.range(0, total_weight);
            let tool = TOOLS
                .iter()
                .find(|x| {
                    w -= x.weight;
                    w < 0
                })
                .unwrap_or(&TOOLS[0]);
            let st = Style {
                canonical: b.rng.range(0, 4) != 0,
            };
            let conv = format!("c-{user}-{session}");
            let mut c = Call {
                ts: t,
                rid: b.rid(),
                user: &user,
                agent: &agent,
                conv: &conv,
                server: tool.server,
                tool: tool.name,
                outcome: "success",
                duration_ms: b.rng.range(40, 2500),
                args_bytes: b.rng.range(60, 4000),
            };
            if tool.needs_approval {
                // At most 2 denials per user in any hour: high_denial_rate
                // needs at least 3 of 5.
                let recent = denials.iter().filter(|d| **d > t - HOUR - 5 * SEC).count();
                let roll = b.rng.range(0, 100);
                let decision = if roll < 5 && recent < 2 {
                    "deny"
                } else if roll == 5 && recent < 2 {
                    "timeout"
                } else {
                    "approve"
                };
                let before = if decision == "timeout" {
                    b.rng.range(1000, 2000)
                } else {
                    b.rng.range(1000, 4001)
                };
                if decision != "approve" {
                    denials.push(t - before);
                    c.outcome = "denied";
                    c.duration_ms = b.rng.range(1, 20);
                }
                let line = approval_line(&mut b.rng, &st, &c, t - before, decision);
                b.push(File::Approvals, t - before, line, None);
            }
            if c.outcome == "success" && b.rng.chance(0.015) {
                let list = errors.entry(tool.server).or_default();
                let quiet = tool.server == "orders" && t >= spike_quiet.0 && t <= spike_quiet.1;
                if !quiet && list.iter().all(|e| (e - t).abs() > 5 * MIN + 5 * SEC) {
                    list.push(t);
                    c.outcome = "error";
                    let et = t + c.duration_ms;
                    let which = b.rng.range(0, ERRORS.len() as i64) as usize;
                    let line = error_line(&mut b.rng, &st, &c, et, which);
                    b.push(File::Errors, et, line, None);
                }
            }
            let line = call_line(&mut b.rng, &st, &c);
            b.push(File::Calls, t, line, None);
        }
    }
}

fn planted_anomalies(b: &mut Builder) {
    // (a) rapid_tool_usage: u-07 makes 14 auto-approved calls in 39 s; the
    // 11th (10:30:30) fires, the last three are suppressed (realert 10m).
    let rapid = b.plant(
        "rapid_tool_usage",
        key(&[("user_id", "u-07")]),
        Some("11"),
        "14 calls 3 s apart from 10:30:00; calls 12-14 suppressed",
    );
    let quick = [
        ("gmail", "email_read"),
        ("calendar", "calendar_read"),
        ("orders", "order_get"),
        ("crm", "contact_search"),
        ("drive", "file_search"),
    ];
    for i in 0..14 {
        let (server, tool) = quick[i % quick.len()];
        let fires = (i == 10).then_some(rapid);
        b.planted_call(
            7,
            at(10, 30, 3 * i as i64, 0),
            server,
            tool,
            "success",
            None,
            fires,
            None,
        );
    }

    // (b) unusual_hours: u-13 at 03:12 and 03:40; the second is suppressed.
    let hours = b.plant(
        "unusual_hours",
        key(&[("user_id", "u-13")]),
        Some("3"),
        "second call at 03:40:41 suppressed (realert 1h)",
    );
    b.planted_call(
        13,
        at(3, 12, 5, 250),
        "gmail",
        "email_read",
        "success",
        None,
        Some(hours),
        None,
    );
    b.planted_call(
        13,
        at(3, 40, 41, 800),
        "calendar",
        "calendar_read",
        "success",
        None,
        None,
        None,
    );

    // (c) high_denial_rate: u-21, six decisions 4 minutes apart, four denials;
    // the 5th (3 of 5 denied = 0.6) fires, the 6th is suppressed.
    let denial = b.plant(
        "high_denial_rate",
        key(&[("user_id", "u-21")]),
        Some("0.6"),
        "decisions approve,deny,approve,deny,deny,deny from 13:00; the 6th suppressed (realert 30m)",
    );
    let decisions = ["approve", "deny", "approve", "deny", "deny", "deny"];
    let tools = [
        ("gmail", "email_send"),
        ("orders", "order_process"),
        ("calendar", "calendar_create"),
        ("gmail", "email_send"),
        ("drive", "file_export"),
        ("gmail", "email_send"),
    ];
    for (i, (decision, (server, tool))) in decisions.iter().zip(tools).enumerate() {
        let outcome = if *decision == "approve" {
            "success"
        } else {
            "denied"
        };
        let fires = (i == 4).then_some(denial);
        let call_ts = at(13, 4 * i as i64, 2, 0);
        b.planted_call(
            21,
            call_ts,
            server,
            tool,
            outcome,
            Some((2000, decision)),
            None,
            fires,
        );
    }

    // (d) new_tool_usage: a tool named in no list, approved (it requires
    // approval under fine_grained, matching no rule).
    let new_tool = b.plant(
        "new_tool_usage",
        key(&[("server_name", "crm"), ("tool_name", "contact_bulk_export")]),
        None,
        "approved 2.5 s before, so no approval_bypass",
    );
    b.planted_call(
        29,
        at(16, 45, 10, 500),
        "crm",
        "contact_bulk_export",
        "success",
        Some((2500, "approve")),
        Some(new_tool),
        None,
    );

    // (e) disabled_tool.
    let disabled = b.plant(
        "disabled_tool",
        key(&[
            ("server_name", "crm"),
            ("tool_name", "admin_reset_password"),
            ("user_id", "u-33"),
        ]),
        None,
        "admin_reset_password is disabled (named in disabled.tools; also matches admin_*)",
    );
    b.planted_call(
        33,
        at(11, 47, 31, 0),
        "crm",
        "admin_reset_password",
        "success",
        None,
        Some(disabled),
        None,
    );

    // (f) approval_bypass: email_send with a request_id and no approve.
    let bypass_at = b.planted.len();
    let rid = b.planted_call(
        18,
        at(14, 22, 40, 0),
        "gmail",
        "email_send",
        "success",
        None,
        Some(bypass_at),
        None,
    );
    b.plant(
        "approval_bypass",
        key(&[("request_id", &rid)]),
        None,
        "email_send requires approval; no approval line has this request_id",
    );

    // (g) error_spike: 7 errors on orders within 3 minutes; the 6th fires.
    let spike = b.plant(
        "error_spike",
        key(&[("server_name", "orders")]),
        Some("6"),
        "7 errors 25 s apart from 15:20:00.300; the 7th suppressed (realert 15m)",
    );
    for (i, user) in [2, 4, 9, 11, 15, 25, 30].into_iter().enumerate() {
        let t = at(15, 20, 25 * i as i64, 0);
        let st = Style { canonical: true };
        let user_s = user_name(user);
        let agent = agent_of(user);
        let conv = format!("c-{user_s}-spike");
        let c = Call {
            ts: t,
            rid: b.rid(),
            user: &user_s,
            agent: &agent,
            conv: &conv,
            server: "orders",
            tool: "order_get",
            outcome: "error",
            duration_ms: 300,
            args_bytes: b.rng.range(60, 400),
        };
        let line = call_line(&mut b.rng, &st, &c);
        b.push(File::Calls, t, line, None);
        let line = error_line(&mut b.rng, &st, &c, t + 300, 0);
        b.push(File::Errors, t + 300, line, (i == 5).then_some(spike));
    }
}

/// The example's three logs (sorted by ts, stable) and the planted alerts
/// with their firing lines located.
fn example_files() -> ([String; 3], Vec<Planted>) {
    let Example {
        mut recs,
        mut planted,
    } = build_example();
    recs.sort_by_key(|r| (r.file, r.ts));
    let mut out: [String; 3] = Default::default();
    let mut counts = [0u64; 3];
    for r in &recs {
        let f = r.file as usize;
        counts[f] += 1;
        out[f].push_str(&r.line);
        out[f].push('\n');
        if let Some(i) = r.fires {
            let p = &mut planted[i];
            p.ts = r.ts;
            p.file = FILE_NAMES[f];
            p.line = counts[f];
            p.id = alert_id(p.rule, &p.key, r.line.as_bytes());
        }
    }
    (out, planted)
}

/// The planted anomalies of the example, with firing lines located.
pub fn planted() -> Vec<Planted> {
    example_files().1
}

fn planted_md(planted: &[Planted]) -> String {
    let mut s = String::from(
        "# Planted anomalies in the example\n\n\
         Generated by `mcpwatch::testkit::write_example` (do not edit; run\n\
         `MCPWATCH_REGENERATE=1 cargo test --test fixtures_gen` to rewrite).\n\
         Normal traffic (36 users, 06:00-22:00 UTC on 2026-11-23) fires no rule;\n\
         each row below fires exactly once. `scan` over `.elevenlabs/audit/` must\n\
         print these alerts and nothing else.\n\n\
         | rule | key | value | ts (firing line) | file:line | id | note |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for p in planted {
        let key = serde_json::to_string(&p.key).unwrap_or_default();
        let _ = writeln!(
            s,
            "| `{}` | `{}` | {} | {} | `{}:{}` | `{}` | {} |",
            p.rule,
            key,
            p.value.unwrap_or("-"),
            rfc3339_ms(p.ts),
            p.file,
            p.line,
            p.id,
            p.note
        );
    }
    s
}

/// Writes the example project into `dir`: `security-config.json`,
/// `.elevenlabs/audit/{tool-usage,approvals,errors}.log` and `PLANTED.md`.
/// Same bytes on every call.
pub fn write_example(dir: &Path) -> io::Result<()> {
    let audit = dir.join(".elevenlabs").join("audit");
    fs::create_dir_all(&audit)?;
    fs::write(dir.join("security-config.json"), EXAMPLE_SECURITY_CONFIG)?;
    let (logs, planted) = example_files();
    for (name, text) in FILE_NAMES.iter().zip(&logs) {
        fs::write(audit.join(name), text)?;
    }
    fs::write(dir.join("PLANTED.md"), planted_md(&planted))?;
    Ok(())
}

/// The files [`write_example`] writes, relative to its `dir`.
pub const EXAMPLE_FILES: [&str; 5] = [
    "security-config.json",
    "PLANTED.md",
    ".elevenlabs/audit/tool-usage.log",
    ".elevenlabs/audit/approvals.log",
    ".elevenlabs/audit/errors.log",
];

// ---------------------------------------------------------------------------
// Benchmark logs

/// Writes `lines` tool_call lines of about 250 bytes with realistic fields,
/// `users` distinct users and `tools` distinct tools (over `tools / 8 + 1`
/// servers), ts increasing evenly over 24 h from 2026-11-23T00:00:00Z.
pub fn write_bench_log(
    path: &Path,
    lines: usize,
    users: usize,
    tools: usize,
    seed: u64,
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    let mut rng = Rng::new(seed);
    let users = users.max(1) as u64;
    let tools = tools.max(1) as u64;
    let step = 86_400_000.0 / lines.max(1) as f64;
    let mut line = String::with_capacity(320);
    for i in 0..lines {
        let ts = EXAMPLE_DAY_MS + (i as f64 * step) as Millis;
        let user = rng.next_u64() % users;
        let tool = rng.next_u64() % tools;
        let r = rng.next_u64();
        let outcome = match r % 100 {
            0 => "error",
            1 => "denied",
            _ => "success",
        };
        line.clear();
        line.push_str(r#"{"ts":""#);
        push_rfc3339_ms(&mut line, ts);
        let _ = write!(
            line,
            r#"","request_id":"r-{:012x}","user_id":"user-{user:07}","agent_id":"ag-{:02}","conversation_id":"c-{:012x}","server_name":"srv-{:04}","tool_name":"tool_{tool:05}","outcome":"{outcome}","duration_ms":{},"args_bytes":{}}}"#,
            r >> 16,
            user % 17,
            (r >> 20) % 0xffff_ffff_ffff,
            tool / 8,
            10 + (r >> 8) % 2000,
            60 + (r >> 24) % 4000,
        );
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_day_is_2026_11_23() {
        assert_eq!(rfc3339_ms(EXAMPLE_DAY_MS), "2026-11-23T00:00:00.000Z");
    }

    #[test]
    fn bench_lines_are_about_250_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tool-usage.log");
        write_bench_log(&path, 1000, 100, 50, 7).expect("write");
        let text = fs::read_to_string(&path).expect("read");
        let n = text.lines().count();
        assert_eq!(n, 1000);
        let avg = text.len() / n;
        assert!((230..=270).contains(&avg), "average line {avg} bytes");
    }
}
