//! The accumulator: events in, [`Report`] out, in memory bounded by caps.
//!
//! Every map that grows with the data has a cap ([`Caps`](stats::Caps)): server × tool
//! pairs beyond `max_pairs` fold into one `other` row, users beyond
//! `max_users` into `users_other`, lists stop at `max_listed` entries but keep
//! counting. Latency histograms use two significant digits and auto-resize,
//! so a pair costs a few KiB whatever the number of calls.
//!
//! This file holds the [`Collector`] and what it does per event; `stats`
//! holds the caps and the per pair and per user counters, and `finish` turns
//! the counters into the [`Report`].

mod finish;
mod hourly;
pub(super) mod stats;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use hdrhistogram::Histogram;

use super::model::*;
use super::period::day_of;
use super::timeline::Timeline;
use super::{ReportOptions, ToolClassifier};
use crate::alert::{Alert, format_ts};
use crate::detect::LineRef;
use crate::event::{ApprovalMode, Decision, Event, Kind, Millis, Outcome, RejectReason, Severity};
use crate::policy::ToolClass;
use stats::{MAX_DURATION_MS, PairStats, SIGFIG, UserStats, bump_capped};

/// Rejected lines of a file met before any accepted line of it: their time
/// is the time of the file's next accepted line.
struct Pending {
    name: String,
    counts: [u64; 7],
}

/// Accumulates one report. Fed by [`super::build`]; public for the bench
/// and for callers that bring their own events.
pub(crate) struct Collector<'o> {
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
    drift: hourly::Drift,
    alerts: BTreeMap<String, [u64; 4]>,
    alerts_unreadable: u64,
    series: Series,
    /// The hour of the last tool call and its counts by outcome, not yet in
    /// `series` (calls come mostly in ts order: one map entry an hour).
    call_hour: Option<(i64, [u64; 4])>,
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
    /// `Some` when the report collects a timeline.
    pub(super) timeline: Option<Timeline>,
}

fn reason_index(r: RejectReason) -> usize {
    RejectReason::ALL.iter().position(|x| *x == r).unwrap_or(0)
}

impl<'o> Collector<'o> {
    pub(crate) fn new(opts: &'o ReportOptions<'o>) -> Self {
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
            drift: hourly::Drift::new(opts.caps.max_pairs),
            alerts: BTreeMap::new(),
            alerts_unreadable: 0,
            series: Series::default(),
            call_hour: None,
            rejected: [0; 7],
            last_ts: HashMap::new(),
            pending: HashMap::new(),
            token_requests: HashSet::new(),
            token_requests_complete: true,
            tool_calls: 0,
            approvals: 0,
            errors: 0,
            timeline: opts.timeline.then(Timeline::default),
            events_read: 0,
            events_selected: 0,
            outside: 0,
            filtered_out: 0,
            inputs: Inputs::default(),
        }
    }

    fn matches(&self, ev: &Event) -> bool {
        let o = self.opts;
        o.request
            .as_deref()
            .is_none_or(|r| ev.request_id.as_deref() == Some(r))
            && o.user
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
        self.drift.call(ev, None);
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
    pub(crate) fn event(&mut self, ev: &Event, line: LineRef<'_>) {
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
        if let Some(t) = &mut self.timeline {
            t.event(ev, line.file, line.line);
        }
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
    pub(crate) fn reject(&mut self, file: &str, reason: RejectReason) {
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
        let outcome = match ev.outcome {
            Some(Outcome::Success) => 0,
            Some(Outcome::Error) => 1,
            Some(Outcome::Denied) => 2,
            None => 3,
        };
        let epoch_hour = ev.ts.div_euclid(3_600_000);
        match &mut self.call_hour {
            Some((h, counts)) if *h == epoch_hour => counts[outcome] += 1,
            _ => {
                self.flush_call_hour();
                let mut counts = [0; 4];
                counts[outcome] = 1;
                self.call_hour = Some((epoch_hour, counts));
            }
        }
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
        if ev.tool_hash.is_some() {
            let place = Place {
                file: line.file.to_string(),
                line: line.line,
            };
            self.drift.call(ev, Some(place));
        }
        let u = self.user(ev);
        u.calls += 1;
        u.hours.call(ev.ts);
        if ev.outcome == Some(Outcome::Denied) {
            u.denied_calls += 1;
        }
    }

    /// Moves the counts of the current call hour into the series.
    fn flush_call_hour(&mut self) {
        if let Some((h, counts)) = self.call_hour.take() {
            let to = self.series.calls_per_hour.entry(h).or_default();
            for (a, b) in to.iter_mut().zip(counts) {
                *a += b;
            }
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
        if let Some(d) = ev.decision {
            let i = match d {
                Decision::Approve => 0,
                Decision::Deny => 1,
                Decision::Timeout => 2,
            };
            let per_day = &mut self.series.decisions_per_day;
            per_day.entry(day_of(ev.ts)).or_default()[i] += 1;
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
    /// `file` and `n` (1-based) say where it was read, for the timeline.
    pub(crate) fn alert_line(&mut self, line: &[u8], file: &str, n: u64) {
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
        if let Some(t) = &mut self.timeline
            && (t.fired_by_subject(&a) || names_subject(o, &a))
        {
            t.alert(&a, file, n);
        }
        if o.request.as_deref().is_some_and(|r| {
            a.key.get("request_id").map(String::as_str) != Some(r)
                && a.evidence.first().and_then(|e| e.request_id.as_deref()) != Some(r)
        }) {
            return;
        }
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
        let rules = &mut self.series.alerts_per_hour;
        let rule = if rules.contains_key(&a.rule) || rules.len() < MAX_SERIES_RULES {
            a.rule.clone()
        } else {
            OTHER.to_string()
        };
        *rules
            .entry(rule)
            .or_default()
            .entry(a.ts_millis().div_euclid(3_600_000))
            .or_default() += 1;
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
}

/// Whether an alert's key names every subject of the report (the request
/// also through its evidence); false when no subject is given.
fn names_subject(o: &ReportOptions<'_>, a: &Alert) -> bool {
    let key = |field: &str, want: &Option<String>| {
        want.as_deref()
            .is_none_or(|w| a.key.get(field).map(String::as_str) == Some(w))
    };
    let request = o.request.as_deref().is_none_or(|r| {
        a.key.get("request_id").map(String::as_str) == Some(r)
            || a.evidence.first().and_then(|e| e.request_id.as_deref()) == Some(r)
    });
    (o.user.is_some() || o.server.is_some() || o.token.is_some() || o.request.is_some())
        && key("user_id", &o.user)
        && key("server_name", &o.server)
        && key("token_id", &o.token)
        && request
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Error => "error",
        Outcome::Denied => "denied",
    }
}
