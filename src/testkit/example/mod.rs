//! The bundled example project: one day (2026-11-23 UTC) of traffic for 36
//! users, its `security-config.json`, and the list of planted anomalies
//! with the line each one fires on.
//!
//! This file holds the pieces (tools, line writers, the builder) and puts
//! the files together; `traffic` holds the two scripts that fill the day,
//! normal traffic and the planted anomalies.

mod beyond;
mod seeded;
mod traffic;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use super::{EXAMPLE_DAY_MS, HOUR, MIN, Rng, SEC, js, rfc3339_ms};
use crate::alert::alert_id;
use crate::event::Millis;
use seeded::seeded_anomalies;
use traffic::{normal_traffic, planted_anomalies};

/// The example's `security-config.json`: fine-grained rules naming every
/// tool normal traffic uses, the seed guide's patterns, and the disabled
/// tool of the planted anomaly named explicitly (a tool matched only by a
/// pattern would also be a never-seen tool and fire `new_tool_usage`).
/// No escalation webhook or notification emails: the example runs offline
/// (a first `run` on it must not retry DNS for example.com).
pub(crate) const EXAMPLE_SECURITY_CONFIG: &str = r#"{
  "approvalMode": "fine_grained",
  "rules": {
    "autoApproved": {
      "patterns": ["*_read", "*_get", "*_search"],
      "tools": ["email_read", "email_search", "calendar_read", "order_get",
                "contact_search", "file_search", "file_read", "weather_get",
                "invoice_get"]
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
  "authentication": {
    "method": "bearer_token",
    "tokenRotation": { "enabled": true, "intervalDays": 30, "notifyBeforeDays": 7 }
  },
  "monitoring": { "enabled": true, "healthCheckInterval": 240, "anomalyDetection": true },
  "rateLimiting": { "enabled": true, "requestsPerMinute": 60, "burstLimit": 10 },
  "incidentResponse": { "autoDisableOnSuspicious": false }
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
    /// Event time of the alert: the firing line's, or for a silence its
    /// last call + `after` (`delay`).
    pub ts: Millis,
    /// File name of the firing line (`tool-usage.log`, …).
    pub file: &'static str,
    /// 1-based line number of the firing line in `file`.
    pub line: u64,
    /// The alert's `value`, as JSON text, where the rule has one.
    pub value: Option<&'static str>,
    /// SPEC §4 alert id (sha256 of rule, key and firing line).
    pub id: String,
    pub(crate) note: &'static str,
    /// From the firing line's ts to the alert's (silences: `after`).
    pub(crate) delay: Millis,
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
    /// A second planted alert the same line fires (another rule).
    also: Option<usize>,
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
            delay: 0,
        });
        self.planted.len() - 1
    }

    fn push(&mut self, file: File, ts: Millis, line: String, fires: Option<usize>) {
        self.recs.push(Rec {
            file,
            ts,
            line,
            fires,
            also: None,
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
    seeded_anomalies(&mut b);
    beyond::planted_beyond_thresholds(&mut b);
    Example {
        recs: b.recs,
        planted: b.planted,
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
        for i in [r.fires, r.also].into_iter().flatten() {
            let p = &mut planted[i];
            p.ts = r.ts + p.delay;
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
         `MCPWATCH_BLESS=1 cargo test --test it fixtures_gen::` to rewrite).\n\
         Normal traffic (36 users, 06:00-22:00 UTC on 2026-11-23) fires no rule;\n\
         each row below fires exactly once. `scan` over `.elevenlabs/audit/` must\n\
         print these alerts and nothing else. (The baseline's case needs a day of\n\
         history: its service account, svc-sync, starts on 2026-11-22.)\n\n\
         | rule | key | value | ts | file:line (firing line) | id | note |\n\
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
