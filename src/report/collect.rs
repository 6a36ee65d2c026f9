//! The accumulator: events in, [`Report`] out, in memory bounded by caps.
//!
//! Every map that grows with the data has a cap ([`Caps`]): server × tool
//! pairs beyond `max_pairs` fold into one `other` row, users beyond
//! `max_users` into `users_other`, lists stop at `max_listed` entries but keep
//! counting. Latency histograms use two significant digits and auto-resize,
//! so a pair costs a few KiB whatever the number of calls.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use hdrhistogram::Histogram;

use super::model::*;
use super::period::{day_name, day_of};
use super::{ReportOptions, ToolClassifier};
use crate::alert::{Alert, format_ts};
use crate::detect::LineRef;
use crate::detect::policy::ToolClass;
use crate::event::{ApprovalMode, Decision, Event, Kind, Millis, Outcome, RejectReason, Severity};

/// Memory caps of one report run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Distinct server × tool pairs with their own row (each holds a
    /// latency histogram of a few KiB: 10,000 pairs stay under ~100 MiB).
    pub max_pairs: usize,
    /// Distinct users with their own row.
    pub max_users: usize,
    /// Entries listed per list (new tools, invocations, bypasses, gaps).
    pub max_listed: usize,
    /// Pairs remembered from data older than the period (for new tools).
    pub max_seen: usize,
    /// Request ids of `--token`'s calls remembered to attribute approvals
    /// and errors without a `token_id`.
    pub max_token_requests: usize,
    /// Distinct `error_type` values per pair before `(other)`.
    pub max_error_types: usize,
    /// Tool names whose policy class is cached.
    pub max_classified: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_pairs: 10_000,
            max_users: 100_000,
            max_listed: 10_000,
            max_seen: 1_000_000,
            max_token_requests: 1_000_000,
            max_error_types: 100,
            max_classified: 100_000,
        }
    }
}

const MODES: [&str; 4] = ["always_ask", "fine_grained", "no_approval", "unknown"];
/// Histogram precision: two significant digits (values below 256 are exact).
const SIGFIG: u8 = 2;
/// Durations beyond this (about 31 years in ms) are clamped, not recorded raw.
const MAX_DURATION_MS: f64 = 1e12;

#[derive(Default)]
struct PairStats {
    calls: u64,
    outcomes: Outcomes,
    /// [mode][approve, deny, timeout]
    decisions: [[u64; 3]; 4],
    undecided: u64,
    errors: u64,
    error_types: HashMap<Box<str>, u64>,
    hist: Option<Histogram<u64>>,
    max_ms: u64,
    /// A call of this pair was already seen in the period.
    called: bool,
}

impl PairStats {
    fn add_to(&self, agg: &mut PairStats, caps: &Caps) {
        agg.calls += self.calls;
        agg.outcomes.success += self.outcomes.success;
        agg.outcomes.error += self.outcomes.error;
        agg.outcomes.denied += self.outcomes.denied;
        agg.outcomes.unknown += self.outcomes.unknown;
        for (m, row) in self.decisions.iter().enumerate() {
            for (d, n) in row.iter().enumerate() {
                agg.decisions[m][d] += n;
            }
        }
        agg.undecided += self.undecided;
        agg.errors += self.errors;
        for (t, n) in &self.error_types {
            bump_capped(&mut agg.error_types, t, *n, caps.max_error_types);
        }
        if let Some(h) = &self.hist {
            match &mut agg.hist {
                Some(a) => {
                    // Both auto-resize with the same precision: cannot fail.
                    let _ = a.add(h);
                }
                None => agg.hist = Some(h.clone()),
            }
        }
        agg.max_ms = agg.max_ms.max(self.max_ms);
    }

    fn approvals(&self) -> Approvals {
        let mut a = Approvals {
            undecided: self.undecided,
            ..Approvals::default()
        };
        for (m, row) in self.decisions.iter().enumerate() {
            let [ap, de, ti] = *row;
            a.approve += ap;
            a.deny += de;
            a.timeout += ti;
            let n = ap + de + ti;
            if n > 0 {
                a.by_mode.push(ModeDecisions {
                    mode: MODES[m].to_string(),
                    approve: ap,
                    deny: de,
                    timeout: ti,
                    approve_rate: rate(ap, n),
                    deny_rate: rate(de, n),
                    timeout_rate: rate(ti, n),
                });
            }
        }
        a.by_mode.sort_by(|x, y| x.mode.cmp(&y.mode));
        a.decisions = a.approve + a.deny + a.timeout;
        a.approve_rate = rate(a.approve, a.decisions);
        a.deny_rate = rate(a.deny, a.decisions);
        a.timeout_rate = rate(a.timeout, a.decisions);
        a
    }

    fn errors(&self) -> Errors {
        Errors {
            total: self.errors,
            by_type: self
                .error_types
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }

    fn latency(&self) -> Latency {
        match &self.hist {
            Some(h) if !h.is_empty() => Latency {
                count: h.len(),
                p50: Some(h.value_at_quantile(0.50)),
                p95: Some(h.value_at_quantile(0.95)),
                p99: Some(h.value_at_quantile(0.99)),
                max: Some(self.max_ms),
            },
            _ => Latency::default(),
        }
    }

    fn row(&self, server: &str, tool: &str) -> ToolRow {
        ToolRow {
            server: server.to_string(),
            tool: tool.to_string(),
            calls: self.calls,
            outcomes: self.outcomes.clone(),
            approvals: self.approvals(),
            errors: self.errors(),
            latency_ms: self.latency(),
        }
    }
}

fn bump_capped(map: &mut HashMap<Box<str>, u64>, key: &str, n: u64, cap: usize) {
    if let Some(v) = map.get_mut(key) {
        *v += n;
    } else if map.len() < cap {
        map.insert(key.into(), n);
    } else {
        *map.entry(OTHER.into()).or_default() += n;
    }
}

/// A ratio rounded to four decimals; `None` without a denominator.
pub fn rate(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| (n as f64 / d as f64 * 10_000.0).round() / 10_000.0)
}

#[derive(Default)]
struct UserStats {
    calls: u64,
    denied_calls: u64,
    approvals: u64,
    denials: u64,
    timeouts: u64,
    errors: u64,
    first: Option<Millis>,
    last: Option<Millis>,
}

impl UserStats {
    fn row(&self, user: &str) -> UserRow {
        UserRow {
            user: user.to_string(),
            calls: self.calls,
            denied_calls: self.denied_calls,
            approvals: self.approvals,
            denials: self.denials,
            timeouts: self.timeouts,
            errors: self.errors,
            first_seen: self.first.map(format_ts),
            last_seen: self.last.map(format_ts),
        }
    }
}

/// Rejected lines of a file met before any accepted line of it: their time
/// is the time of the file's next accepted line.
struct Pending {
    name: String,
    counts: [u64; 7],
}

/// Accumulates one report. Fed by [`super::build`]; public for the bench
/// and for callers that bring their own events.
pub struct Collector<'o> {
    opts: &'o ReportOptions<'o>,
    pairs: HashMap<Box<str>, HashMap<Box<str>, PairStats>>,
    n_pairs: usize,
    other: Option<PairStats>,
    pairs_overflow_events: u64,
    users: HashMap<Box<str>, UserStats>,
    users_other: Option<UserStats>,
    users_overflow_events: u64,
    /// server → tools called before the period.
    seen_before: HashMap<Box<str>, HashSet<Box<str>>>,
    n_seen: usize,
    seen_overflow: bool,
    classified: HashMap<Box<str>, Option<Box<str>>>,
    hours: [u64; 24],
    days: BTreeSet<i64>,
    oldest: Option<Millis>,
    new_tools: NewTools,
    disabled: Listing<Invocation>,
    bypasses: Listing<Bypass>,
    alerts: BTreeMap<String, [u64; 4]>,
    alerts_unreadable: u64,
    rejected: [u64; 7],
    last_ts: HashMap<usize, Millis>,
    pending: HashMap<usize, Pending>,
    token_requests: HashSet<Box<str>>,
    token_requests_complete: bool,
    tool_calls: u64,
    approvals: u64,
    errors: u64,
    events_read: u64,
    events_selected: u64,
    outside: u64,
    filtered_out: u64,
    pub(super) inputs: Inputs,
}

fn reason_index(r: RejectReason) -> usize {
    RejectReason::ALL.iter().position(|x| *x == r).unwrap_or(0)
}

impl<'o> Collector<'o> {
    pub fn new(opts: &'o ReportOptions<'o>) -> Self {
        Collector {
            opts,
            pairs: HashMap::new(),
            n_pairs: 0,
            other: None,
            pairs_overflow_events: 0,
            users: HashMap::new(),
            users_other: None,
            users_overflow_events: 0,
            seen_before: HashMap::new(),
            n_seen: 0,
            seen_overflow: false,
            classified: HashMap::new(),
            hours: [0; 24],
            days: BTreeSet::new(),
            oldest: None,
            new_tools: NewTools::default(),
            disabled: Listing::default(),
            bypasses: Listing::default(),
            alerts: BTreeMap::new(),
            alerts_unreadable: 0,
            rejected: [0; 7],
            last_ts: HashMap::new(),
            pending: HashMap::new(),
            token_requests: HashSet::new(),
            token_requests_complete: true,
            tool_calls: 0,
            approvals: 0,
            errors: 0,
            events_read: 0,
            events_selected: 0,
            outside: 0,
            filtered_out: 0,
            inputs: Inputs::default(),
        }
    }

    fn matches(&self, ev: &Event) -> bool {
        let o = self.opts;
        o.user
            .as_deref()
            .is_none_or(|u| ev.user_id.as_deref() == Some(u))
            && o.server
                .as_deref()
                .is_none_or(|s| ev.server_name.as_deref() == Some(s))
            && o.token
                .as_deref()
                .is_none_or(|t| match ev.token_id.as_deref() {
                    Some(id) => id == t,
                    // Approval and error lines often carry no token: they belong
                    // to the token when their request is one of its calls.
                    None => {
                        ev.kind != Some(Kind::ToolCall)
                            && ev
                                .request_id
                                .as_deref()
                                .is_some_and(|r| self.token_requests.contains(r))
                    }
                })
    }

    /// Request ids of the calls made with `--token` in the period, so its
    /// approvals and errors without a `token_id` are reported with it.
    pub(super) fn set_token_requests(&mut self, ids: HashSet<Box<str>>, complete: bool) {
        self.token_requests = ids;
        self.token_requests_complete = complete;
    }

    /// An accepted line's time, for the oldest record on disk.
    fn note_oldest(&mut self, ts: Millis) {
        self.events_read += 1;
        self.oldest = Some(self.oldest.map_or(ts, |o| o.min(ts)));
    }

    /// A file read outside the merge (older than the period): `count`
    /// accepted lines read, the oldest at `oldest`.
    pub(super) fn note_old_file(&mut self, oldest: Millis, count: u64) {
        self.note_oldest(oldest);
        self.events_read += count.saturating_sub(1);
        self.outside += count;
    }

    /// A tool call older than the period: remembered so the period's
    /// first calls of a pair can tell whether it is new.
    pub(super) fn note_before(&mut self, ev: &Event) {
        let server = ev.key_value(crate::event::Field::ServerName);
        let tool = ev.key_value(crate::event::Field::ToolName);
        if self
            .seen_before
            .get(server)
            .is_some_and(|t| t.contains(tool))
        {
            return;
        }
        if self.n_seen >= self.opts.caps.max_seen {
            self.seen_overflow = true;
            return;
        }
        self.n_seen += 1;
        self.seen_before
            .entry(server.into())
            .or_default()
            .insert(tool.into());
    }

    /// One accepted line, in the merge's processing order.
    pub fn event(&mut self, ev: &Event, line: LineRef<'_>) {
        let file_key = line.file.as_ptr() as usize;
        self.last_ts.insert(file_key, ev.ts);
        if !self.pending.is_empty()
            && let Some(p) = self.pending.remove(&file_key)
        {
            self.attribute(ev.ts, p.counts);
        }
        self.note_oldest(ev.ts);
        let range = self.opts.range;
        if !range.contains(ev.ts) {
            self.outside += 1;
            if ev.kind == Some(Kind::ToolCall) && range.since.is_some_and(|s| ev.ts < s) {
                self.note_before(ev);
            }
            return;
        }
        self.days.insert(day_of(ev.ts));
        if !self.matches(ev) {
            self.filtered_out += 1;
            return;
        }
        self.events_selected += 1;
        match ev.kind {
            Some(Kind::ToolCall) => self.tool_call(ev, &line),
            Some(Kind::Approval) => self.approval(ev),
            Some(Kind::Error) => self.error(ev),
            None => {}
        }
    }

    /// A rejected line: counted in the period when the time of its
    /// neighbours in the same file (the accepted line before it, else the
    /// one after it) is in the period.
    pub fn reject(&mut self, file: &str, reason: RejectReason) {
        let key = file.as_ptr() as usize;
        let mut counts = [0; 7];
        counts[reason_index(reason)] = 1;
        match self.last_ts.get(&key) {
            Some(ts) => self.attribute(*ts, counts),
            None => {
                let p = self.pending.entry(key).or_insert_with(|| Pending {
                    name: file.to_string(),
                    counts: [0; 7],
                });
                p.counts[reason_index(reason)] += 1;
            }
        }
    }

    /// Rejected lines of files without any accepted line take the file's
    /// modification time (`mtimes` by file name).
    pub(super) fn finish_rejects(&mut self, mtimes: &HashMap<String, Millis>) {
        for (_, p) in std::mem::take(&mut self.pending) {
            match mtimes.get(&p.name) {
                Some(ts) => self.attribute(*ts, p.counts),
                None => self.attribute_always(p.counts),
            }
        }
    }

    fn attribute(&mut self, ts: Millis, counts: [u64; 7]) {
        if self.opts.range.contains(ts) {
            self.attribute_always(counts);
        }
    }

    fn attribute_always(&mut self, counts: [u64; 7]) {
        for (a, b) in self.rejected.iter_mut().zip(counts) {
            *a += b;
        }
    }

    fn pair(&mut self, server: &str, tool: &str) -> (&mut PairStats, bool) {
        let exists = self.pairs.get(server).is_some_and(|t| t.contains_key(tool));
        if !exists {
            if self.n_pairs >= self.opts.caps.max_pairs {
                self.pairs_overflow_events += 1;
                return (self.other.get_or_insert_with(PairStats::default), true);
            }
            self.n_pairs += 1;
            self.pairs
                .entry(server.into())
                .or_default()
                .insert(tool.into(), PairStats::default());
        }
        let p = self
            .pairs
            .get_mut(server)
            .and_then(|t| t.get_mut(tool))
            .expect("pair inserted above");
        (p, false)
    }

    fn user(&mut self, ev: &Event) -> &mut UserStats {
        let user = ev.key_value(crate::event::Field::UserId);
        let u = if self.users.contains_key(user) {
            self.users.get_mut(user).expect("present")
        } else if self.users.len() < self.opts.caps.max_users {
            self.users.entry(user.into()).or_default()
        } else {
            self.users_overflow_events += 1;
            self.users_other.get_or_insert_with(UserStats::default)
        };
        u.first = Some(u.first.map_or(ev.ts, |f| f.min(ev.ts)));
        u.last = Some(u.last.map_or(ev.ts, |l| l.max(ev.ts)));
        u
    }

    fn tool_call(&mut self, ev: &Event, line: &LineRef<'_>) {
        use crate::event::Field;
        self.tool_calls += 1;
        let hour = ev.ts.rem_euclid(86_400_000) / 3_600_000;
        self.hours[hour as usize] += 1;
        let server = ev.key_value(Field::ServerName);
        let tool = ev.key_value(Field::ToolName);
        let user = ev.key_value(Field::UserId);
        let seen_before = self
            .seen_before
            .get(server)
            .is_some_and(|t| t.contains(tool));
        let max_listed = self.opts.caps.max_listed;
        let (p, is_other) = self.pair(server, tool);
        p.calls += 1;
        match ev.outcome {
            Some(Outcome::Success) => p.outcomes.success += 1,
            Some(Outcome::Error) => p.outcomes.error += 1,
            Some(Outcome::Denied) => p.outcomes.denied += 1,
            None => p.outcomes.unknown += 1,
        }
        if let Some(d) = ev.duration_ms.filter(|d| d.is_finite() && *d >= 0.0) {
            let ms = d.min(MAX_DURATION_MS).round() as u64;
            let h = p.hist.get_or_insert_with(|| {
                Histogram::new(SIGFIG).expect("2 significant digits is a valid precision")
            });
            // `record` grows the histogram; `saturating_record` would clamp
            // to its current range instead (only if growing fails).
            if h.record(ms).is_err() {
                h.saturating_record(ms);
            }
            p.max_ms = p.max_ms.max(ms);
        }
        let first_call = !is_other && !p.called;
        p.called = true;
        if first_call && !seen_before {
            self.new_tools.total += 1;
            if self.new_tools.listed.len() < max_listed {
                self.new_tools.listed.push(NewTool {
                    server: server.to_string(),
                    tool: tool.to_string(),
                    first_seen: format_ts(ev.ts),
                    user: user.to_string(),
                    evidence: Place {
                        file: line.file.to_string(),
                        line: line.line,
                    },
                });
            }
        }
        if let Some(rule) = self.disabled_rule(tool) {
            self.disabled.total += 1;
            if self.disabled.listed.len() < max_listed {
                self.disabled.listed.push(Invocation {
                    ts: format_ts(ev.ts),
                    user: user.to_string(),
                    server: server.to_string(),
                    tool: tool.to_string(),
                    outcome: ev.outcome.map_or("unknown", outcome_str).to_string(),
                    rule: rule.to_string(),
                    evidence: Place {
                        file: line.file.to_string(),
                        line: line.line,
                    },
                });
            }
        }
        let u = self.user(ev);
        u.calls += 1;
        if ev.outcome == Some(Outcome::Denied) {
            u.denied_calls += 1;
        }
    }

    /// The deciding rule when the policy disables `tool` (cached per name).
    fn disabled_rule(&mut self, tool: &str) -> Option<Box<str>> {
        let policy: &dyn ToolClassifier = self.opts.policy?;
        if let Some(hit) = self.classified.get(tool) {
            return hit.clone();
        }
        let (class, rule) = policy.explain_tool(tool);
        let hit = (class == ToolClass::Disabled).then(|| rule.into_boxed_str());
        if self.classified.len() < self.opts.caps.max_classified {
            self.classified.insert(tool.into(), hit.clone());
        }
        hit
    }

    fn approval(&mut self, ev: &Event) {
        use crate::event::Field;
        self.approvals += 1;
        let server = ev.key_value(Field::ServerName);
        let tool = ev.key_value(Field::ToolName);
        let mode = match ev.approval_mode {
            Some(ApprovalMode::AlwaysAsk) => 0,
            Some(ApprovalMode::FineGrained) => 1,
            Some(ApprovalMode::NoApproval) => 2,
            None => 3,
        };
        let (p, _) = self.pair(server, tool);
        match ev.decision {
            Some(Decision::Approve) => p.decisions[mode][0] += 1,
            Some(Decision::Deny) => p.decisions[mode][1] += 1,
            Some(Decision::Timeout) => p.decisions[mode][2] += 1,
            None => p.undecided += 1,
        }
        let u = self.user(ev);
        match ev.decision {
            Some(Decision::Approve) => u.approvals += 1,
            Some(Decision::Deny) => u.denials += 1,
            Some(Decision::Timeout) => u.timeouts += 1,
            None => {}
        }
    }

    fn error(&mut self, ev: &Event) {
        use crate::event::Field;
        self.errors += 1;
        let server = ev.key_value(Field::ServerName);
        let tool = ev.key_value(Field::ToolName);
        let cap = self.opts.caps.max_error_types;
        let (p, _) = self.pair(server, tool);
        p.errors += 1;
        bump_capped(
            &mut p.error_types,
            ev.error_type.as_deref().unwrap_or("unknown"),
            1,
            cap,
        );
        self.user(ev).errors += 1;
    }

    /// One line of `alerts.log` (or an archive of it).
    pub fn alert_line(&mut self, line: &[u8]) {
        let Ok(a) = serde_json::from_slice::<Alert>(crate::alert::strip_line(line)) else {
            if !line.iter().all(u8::is_ascii_whitespace) {
                self.alerts_unreadable += 1;
            }
            return;
        };
        if !self.opts.range.contains(a.ts_millis()) {
            return;
        }
        let o = self.opts;
        let key_ok = |field: &str, want: &Option<String>| match (want, a.key.get(field)) {
            (Some(w), Some(v)) => w == v,
            _ => true,
        };
        // An alert keyed by request (approval_bypass) is the token's when
        // the request is one of the token's calls.
        let request_ok = o.token.is_none()
            || a.key.contains_key("token_id")
            || a.key
                .get("request_id")
                .is_none_or(|r| self.token_requests.contains(r.as_str()));
        if !(key_ok("user_id", &o.user)
            && key_ok("server_name", &o.server)
            && key_ok("token_id", &o.token)
            && request_ok)
        {
            return;
        }
        let sev = Severity::ALL
            .iter()
            .position(|s| *s == a.severity)
            .unwrap_or(0);
        self.alerts.entry(a.rule.clone()).or_default()[sev] += 1;
        if a.rule == "approval_bypass" {
            self.bypasses.total += 1;
            if self.bypasses.listed.len() < o.caps.max_listed {
                let ev = a.evidence.first();
                self.bypasses.listed.push(Bypass {
                    ts: a.ts.clone(),
                    alert_id: a.id.clone(),
                    request_id: a
                        .key
                        .get("request_id")
                        .cloned()
                        .or_else(|| ev.and_then(|e| e.request_id.clone())),
                    message: a.message.clone(),
                    evidence: ev.map(|e| Place {
                        file: e.file.clone(),
                        line: e.line,
                    }),
                });
            }
        }
    }

    /// The finished report.
    pub fn finish(mut self) -> Report {
        let opts = self.opts;
        let caps = &opts.caps;
        // Pairs sorted by server then tool; servers aggregate their tools.
        let mut servers: BTreeMap<&str, BTreeMap<&str, &PairStats>> = BTreeMap::new();
        for (s, tools) in &self.pairs {
            for (t, p) in tools {
                servers.entry(s).or_default().insert(t, p);
            }
        }
        let mut tool_rows = Vec::with_capacity(self.n_pairs);
        let mut server_rows = Vec::with_capacity(servers.len());
        for (s, tools) in &servers {
            let mut agg = PairStats::default();
            for (t, p) in tools {
                tool_rows.push(p.row(s, t));
                p.add_to(&mut agg, caps);
            }
            let r = agg.row(s, "");
            server_rows.push(ServerRow {
                server: r.server,
                tools: tools.len() as u64,
                calls: r.calls,
                outcomes: r.outcomes,
                approvals: r.approvals,
                errors: r.errors,
                latency_ms: r.latency_ms,
            });
        }
        let mut users: Vec<UserRow> = self.users.iter().map(|(u, s)| s.row(u)).collect();
        users.sort_by(|a, b| a.user.cmp(&b.user));

        let mut by_severity: BTreeMap<String, u64> = Severity::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        let mut by_rule = Vec::new();
        let mut alert_total = 0;
        for (rule, n) in &self.alerts {
            for (s, c) in Severity::ALL.iter().zip(n) {
                *by_severity.entry(s.as_str().to_string()).or_default() += c;
            }
            let total = n.iter().sum();
            alert_total += total;
            by_rule.push(RuleAlerts {
                rule: rule.clone(),
                total,
                low: n[0],
                medium: n[1],
                high: n[2],
                critical: n[3],
            });
        }

        let rejected = Rejected {
            total: self.rejected.iter().sum(),
            by_reason: RejectReason::ALL
                .iter()
                .zip(self.rejected)
                .map(|(r, n)| (r.as_str().to_string(), n))
                .collect(),
        };

        let coverage = self.coverage();
        self.new_tools.approximate = self.seen_overflow;
        let mut inputs = std::mem::take(&mut self.inputs);
        inputs.events_read = self.events_read;
        inputs.events_selected = self.events_selected;
        Report {
            report_version: REPORT_VERSION,
            generated_at: format_ts(opts.now),
            period: PeriodInfo {
                name: opts.period.map(|p| p.as_str().to_string()),
                since: opts.range.since.map(format_ts),
                until: opts.range.until.map(format_ts),
            },
            filters: Filters {
                user: opts.user.clone(),
                server: opts.server.clone(),
                token: opts.token.clone(),
                token_requests: opts
                    .token
                    .as_ref()
                    .map(|_| self.token_requests.len() as u64),
                token_requests_complete: self.token_requests_complete,
            },
            inputs,
            totals: Totals {
                tool_calls: self.tool_calls,
                approvals: self.approvals,
                errors: self.errors,
                servers: servers.len() as u64,
                tools: self.n_pairs as u64,
                users: self.users.len() as u64,
            },
            servers: server_rows,
            tools: tool_rows,
            other: self.other.as_ref().map(|p| p.row(OTHER, OTHER)),
            users,
            users_other: self.users_other.as_ref().map(|u| u.row(OTHER)),
            hour_of_day: self.hours,
            new_tools: std::mem::take(&mut self.new_tools),
            disabled_tool_invocations: opts
                .policy
                .is_some()
                .then(|| std::mem::take(&mut self.disabled)),
            approval_bypasses: std::mem::take(&mut self.bypasses),
            alerts: AlertTotals {
                total: alert_total,
                by_severity,
                by_rule,
                unreadable_lines: self.alerts_unreadable,
            },
            rejected,
            coverage,
            policy: opts.policy_info.clone(),
            limits: Limits {
                max_pairs: caps.max_pairs as u64,
                pairs_overflow_events: self.pairs_overflow_events,
                max_users: caps.max_users as u64,
                users_overflow_events: self.users_overflow_events,
                max_listed: caps.max_listed as u64,
                events_outside_period: self.outside,
                events_filtered_out: self.filtered_out,
            },
        }
    }

    fn coverage(&self) -> Coverage {
        let opts = self.opts;
        let retention_days = opts.retention_days;
        let age = self.oldest.map(|o| (opts.now - o).div_euclid(86_400_000));
        let retention_status = match age {
            None => "no_records",
            Some(a) if a < i64::from(retention_days) => "shorter_than_retention",
            Some(a) if a <= i64::from(retention_days) + 2 => "meets_retention",
            Some(_) => "exceeds_retention",
        };
        let first = opts
            .range
            .since
            .map(day_of)
            .or_else(|| self.oldest.map(day_of));
        let last = Some(opts.range.until.map_or(day_of(opts.now), |u| day_of(u - 1)));
        let mut gaps = Vec::new();
        let mut gaps_total = 0;
        if let (Some(f), Some(l)) = (first, last) {
            for d in f..=l {
                if !self.days.contains(&d) {
                    gaps_total += 1;
                    if gaps.len() < opts.caps.max_listed {
                        gaps.push(day_name(d));
                    }
                }
            }
        }
        let valid = first.zip(last).is_some_and(|(f, l)| f <= l);
        Coverage {
            oldest_record: self.oldest.map(format_ts),
            oldest_record_age_days: age,
            retention_days,
            retention_status: retention_status.to_string(),
            first_day: first.filter(|_| valid).map(day_name),
            last_day: last.filter(|_| valid).map(day_name),
            days_without_logs: gaps,
            days_without_logs_total: gaps_total,
        }
    }
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Error => "error",
        Outcome::Denied => "denied",
    }
}
