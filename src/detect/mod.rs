//! Detection: the tool policy and the pure event-time engine (SPEC §3).
//!
//! [`Engine`] takes events one at a time, in the merged ts order the caller
//! produces, and returns alerts. It never reads a clock and does no I/O:
//! time is the events' `ts`, and the watermark is the highest ts seen. So
//! `scan` over history and `run` over a live tail share every line of
//! detection and give the same alerts for the same input.
//!
//! Rules are evaluated in a fixed order for each event (what became due by
//! event time first — pending `approval_bypass` decisions —, then the rules
//! of the event's kind in the order of SPEC §3's table, which is the order
//! of the registry in [`rules`]), which makes the alert order deterministic.

mod policy_cache;
pub(crate) mod rules;
pub(crate) mod state;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Evidence, Number, alert_id, format_ts};
use crate::config::{Config, RuleConfig, RuleName};
use crate::event::{Event, Field, Kind, Millis};
use policy_cache::{PolicyCache, ToolFacts};

pub(crate) use crate::event::LineRef;

/// Counters the engine keeps for the caller to export (SPEC §8 metrics).
/// Plain numbers since the engine started (they persist with its state).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stats {
    /// Alerts raised, by rule.
    pub(crate) alerts: BTreeMap<String, u64>,
    /// Hits suppressed by `realert`, by rule.
    pub(crate) suppressed: BTreeMap<String, u64>,
    /// Keys evicted because a rule's `max_keys` was reached, by rule.
    pub(crate) evictions: BTreeMap<String, u64>,
    /// `approval_bypass`: calls without `request_id` (counted, not judged).
    pub(crate) bypass_unjudged: u64,
    /// `approval_bypass`: approve decisions that arrived after their call
    /// had already been judged a bypass.
    pub(crate) late_approvals: u64,
}

impl Stats {
    /// Adds `n` to a rule's counter. Runs for every suppressed hit, so the
    /// rule's name is allocated only the first time.
    pub(crate) fn bump(map: &mut BTreeMap<String, u64>, rule: RuleName, n: u64) {
        if n == 0 {
            return;
        }
        match map.get_mut(rule.as_str()) {
            Some(v) => *v += n,
            None => {
                map.insert(rule.as_str().to_string(), n);
            }
        }
    }
}

/// The engine: every enabled rule plus the watermark.
#[derive(Debug)]
pub struct Engine {
    rules: rules::Rules,
    /// The tool policy, cached per tool name; `None` while it is unknown.
    policy: Option<PolicyCache>,
    state: EngineState,
    key_buf: String,
    /// Live only (SPEC §8): pending `approval_bypass` calls whose deadline
    /// is at or past this are not judged yet, however far event time has
    /// moved. `scan` leaves it at `Millis::MAX` (its ts-ordered merge
    /// already has every approval in time); `run` sets it from what
    /// `approvals.log` has yielded and from the wall clock. Not state: a
    /// restart starts closed and reopens it from the files and the clock.
    bypass_horizon: Millis,
    /// Live only: this host's wall clock (ms), set by `run` each cycle.
    /// The silence rules judge by min(watermark, it), and `audit_silence`
    /// also by the wall time calls were read (SPEC §3). `None` in `scan`.
    wall: Option<Millis>,
    /// What [`Engine::tick`] passes for "the event" to the rules' judging
    /// of due calls (which never look at it).
    idle: (Event, Arc<str>),
}

/// Everything the engine must remember across restarts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct EngineState {
    /// Highest event time processed.
    pub(crate) watermark: Option<Millis>,
    /// Event time of the first event ever processed (`learning_period`).
    pub(crate) first_ts: Option<Millis>,
    pub(crate) stats: Stats,
    pub(crate) rules: rules::RulesState,
}

/// The first bytes of an engine file in the per-rule format.
const ENGINE_FILE_MAGIC: &[u8] = b"mcpwatch-engine/2\n";

/// The engine file: the state with each rule's part under its name, so a
/// rule added or removed by an upgrade does not make the file unreadable
/// (postcard is positional, so the plain [`EngineState`] would be).
#[derive(Serialize, Deserialize)]
struct EngineFile {
    watermark: Option<Millis>,
    first_ts: Option<Millis>,
    stats: Stats,
    rules: Vec<(String, Vec<u8>)>,
}

impl EngineState {
    /// The state as it is now, to serialize while detection goes on: cheap
    /// to take (see [`state::Snapshot`]).
    fn snapshot(&mut self) -> EngineState {
        EngineState {
            watermark: self.watermark,
            first_ts: self.first_ts,
            stats: self.stats.clone(),
            rules: self.rules.snapshot(),
        }
    }

    /// The engine file's bytes (see [`EngineFile`]).
    pub(crate) fn to_file(&self) -> Result<Vec<u8>, postcard::Error> {
        let file = EngineFile {
            watermark: self.watermark,
            first_ts: self.first_ts,
            stats: self.stats.clone(),
            rules: self.rules.to_parts()?,
        };
        let mut out = ENGINE_FILE_MAGIC.to_vec();
        out.extend(postcard::to_stdvec(&file)?);
        Ok(out)
    }

    /// Reads an engine file: the per-rule format, or the positional one
    /// earlier versions wrote (valid while their rules are today's).
    pub(crate) fn from_file(bytes: &[u8]) -> Result<EngineState, postcard::Error> {
        let Some(rest) = bytes.strip_prefix(ENGINE_FILE_MAGIC) else {
            return postcard::from_bytes(bytes);
        };
        let file: EngineFile = postcard::from_bytes(rest)?;
        Ok(EngineState {
            watermark: file.watermark,
            first_ts: file.first_ts,
            stats: file.stats,
            rules: rules::RulesState::from_parts(file.rules)?,
        })
    }
}

impl Engine {
    pub fn new(config: &Config) -> Engine {
        Engine {
            rules: rules::Rules::new(config),
            policy: config.policy.clone().map(PolicyCache::new),
            state: EngineState::default(),
            key_buf: String::with_capacity(64),
            bypass_horizon: Millis::MAX,
            wall: None,
            idle: (Event::default(), Arc::from("")),
        }
    }

    /// Takes a reloaded configuration (SPEC §9): the rules are built
    /// anew from it; a rule keeps its state when nothing but its
    /// `severity`, `realert`, `threshold` or `enabled` changed, and starts
    /// empty otherwise. Returns the rules whose state was dropped.
    pub(crate) fn reconfigure(&mut self, old: &Config, new: &Config) -> Vec<RuleName> {
        self.rules = rules::Rules::new(new);
        self.policy = new.policy.clone().map(PolicyCache::new);
        let mut dropped = Vec::new();
        for name in RuleName::ALL {
            let (was, now) = (old.rules.get(name), new.rules.get(name));
            let mut tuned = was.clone();
            tuned.severity = now.severity;
            tuned.realert = now.realert;
            tuned.threshold = now.threshold;
            tuned.enabled = now.enabled;
            if tuned != *now {
                self.state.rules.reset(name);
                dropped.push(name);
            }
        }
        dropped
    }

    /// Opens the live gate of pending `approval_bypass` calls up to (not
    /// including) deadlines at `horizon` (see the field's doc).
    pub(crate) fn set_bypass_horizon(&mut self, horizon: Millis) {
        self.bypass_horizon = horizon;
    }

    /// Sets this host's wall clock for the live silence checks (see the
    /// field's doc); `run` calls it before each cycle's events.
    pub(crate) fn set_wall_clock(&mut self, now: Millis) {
        self.wall = Some(now);
    }

    /// `approval_bypass`'s `grace`, when the rule is on.
    pub(crate) fn bypass_grace(&self) -> Option<Millis> {
        self.rules.approval_bypass.as_ref().map(|r| r.grace())
    }

    /// Whether `approval_bypass` calls wait for their judgement.
    pub(crate) fn bypass_pending(&self) -> bool {
        self.state.rules.approval_bypass.pending_len() > 0
    }

    /// Judges what became due without a new event (the live gate moved):
    /// alerts go to `out`.
    pub(crate) fn tick(&mut self, out: &mut Vec<Alert>) {
        let Some(wm) = self.state.watermark else {
            return;
        };
        let mut cx = Cx {
            ev: &self.idle.0,
            line: LineRef {
                file: &self.idle.1,
                line: 0,
                raw: b"",
            },
            watermark: wm,
            bypass_horizon: self.bypass_horizon,
            wall: self.wall,
            first_ts: self.state.first_ts.unwrap_or(wm),
            stats: &mut self.state.stats,
            key: &mut self.key_buf,
            tool: None,
            out,
        };
        self.rules.judge_due(&mut self.state.rules, &mut cx);
    }

    /// Processes one event; alerts it raises are appended to `out`.
    pub fn process(&mut self, ev: &Event, line: LineRef<'_>, out: &mut Vec<Alert>) {
        let t = ev.ts;
        let wm = self.state.watermark.map_or(t, |w| w.max(t));
        self.state.watermark = Some(wm);
        if self.state.first_ts.is_none() {
            self.state.first_ts = Some(t);
        }
        let mut cx = Cx {
            ev,
            line,
            watermark: wm,
            bypass_horizon: self.bypass_horizon,
            wall: self.wall,
            first_ts: self.state.first_ts.unwrap_or(t),
            stats: &mut self.state.stats,
            key: &mut self.key_buf,
            tool: match (ev.kind, &mut self.policy) {
                (Some(Kind::ToolCall), Some(p)) => {
                    Some(p.lookup(ev.tool_name.as_deref().unwrap_or("unknown")))
                }
                _ => None,
            },
            out,
        };
        self.rules.process(&mut self.state.rules, &mut cx);
    }

    /// Counters since the engine's state began.
    pub(crate) fn stats(&self) -> &Stats {
        &self.state.stats
    }

    #[cfg(test)]
    pub(crate) fn watermark(&self) -> Option<Millis> {
        self.state.watermark
    }

    /// The state as it is (tests; the daemon checkpoints a
    /// [`Engine::snapshot`]).
    #[cfg(test)]
    pub(crate) fn state(&self) -> &EngineState {
        &self.state
    }

    /// A snapshot of the state to checkpoint, taken without copying the
    /// rules' maps: serialize it on another thread while this engine goes
    /// on (it does not change).
    pub(crate) fn snapshot(&mut self) -> EngineState {
        self.state.snapshot()
    }

    /// Restores checkpointed state (the rules' settings come from the
    /// current configuration).
    pub(crate) fn restore(&mut self, state: EngineState) {
        self.state = state;
    }

    /// Whether a rule is on under this configuration (for tests).
    #[cfg(test)]
    pub(crate) fn enabled(&self, rule: RuleName) -> bool {
        self.rules.enabled(rule)
    }
}

/// What a rule sees while processing one event.
pub(crate) struct Cx<'a, 'b> {
    pub(crate) ev: &'a Event,
    pub(crate) line: LineRef<'a>,
    pub(crate) watermark: Millis,
    /// See [`Engine::bypass_horizon`].
    pub(crate) bypass_horizon: Millis,
    /// See [`Engine::wall`].
    pub(crate) wall: Option<Millis>,
    pub(crate) first_ts: Millis,
    pub(crate) stats: &'b mut Stats,
    /// Scratch buffer for state keys (no allocation per event).
    pub(crate) key: &'b mut String,
    /// For a tool call under a known policy, what the policy says of its
    /// tool (a missing name is `"unknown"`); else `None`. Looked up once
    /// per call, before the rules (cached by tool name).
    pub(crate) tool: Option<ToolFacts>,
    pub(crate) out: &'b mut Vec<Alert>,
}

impl Cx<'_, '_> {
    /// Applies a cooldown verdict: `Some(suppressed)` raises the alert that
    /// `make` builds from that count, `None` counts one suppression.
    pub(crate) fn raise(
        &mut self,
        r: &RuleConfig,
        verdict: Option<u64>,
        make: impl FnOnce(u64) -> Alert,
    ) {
        match verdict {
            Some(suppressed) => {
                self.out.push(make(suppressed));
                Stats::bump(&mut self.stats.alerts, r.name, 1);
            }
            None => Stats::bump(&mut self.stats.suppressed, r.name, 1),
        }
    }
}

/// The parts of an alert a rule decides; [`AlertDraft::finish`] adds the
/// id, ts, key object and evidence.
pub(crate) struct AlertDraft {
    pub(crate) value: Option<Number>,
    pub(crate) threshold: Option<Number>,
    pub(crate) window: Option<Millis>,
    pub(crate) suppressed: u64,
    pub(crate) message: String,
}

impl AlertDraft {
    /// A draft with only a message (rules without a count or window).
    pub(crate) fn plain(suppressed: u64, message: String) -> AlertDraft {
        AlertDraft {
            value: None,
            threshold: None,
            window: None,
            suppressed,
            message,
        }
    }

    /// Completes the draft for the firing event `ev` read at `line`.
    pub(crate) fn finish_at(self, rule: &RuleConfig, ev: &Event, line: LineRef<'_>) -> Alert {
        self.finish(rule, ev, line.file, line.line, line.raw)
    }

    pub(crate) fn finish(
        self,
        rule: &RuleConfig,
        ev: &Event,
        file: &str,
        line_no: u64,
        raw: &[u8],
    ) -> Alert {
        self.finish_keyed(rule, &rule.key, ev, file, line_no, raw)
    }

    /// [`AlertDraft::finish`] with the key object made of `key_fields`
    /// rather than the rule's `key` (for a rule whose key is the first of
    /// several fields the event carries).
    pub(crate) fn finish_keyed(
        self,
        rule: &RuleConfig,
        key_fields: &[Field],
        ev: &Event,
        file: &str,
        line_no: u64,
        raw: &[u8],
    ) -> Alert {
        let key: BTreeMap<String, String> = key_fields
            .iter()
            .map(|f| (f.as_str().to_string(), ev.key_value(*f).to_string()))
            .collect();
        Alert {
            id: alert_id(rule.name.as_str(), &key, raw),
            rule: rule.name.as_str().to_string(),
            severity: rule.severity,
            ts: format_ts(ev.ts),
            key,
            value: self.value,
            threshold: self.threshold,
            window: self.window.map(format_window),
            suppressed: self.suppressed,
            message: self.message,
            evidence: vec![Evidence {
                file: file.to_string(),
                line: line_no,
                request_id: ev.request_id.as_deref().map(str::to_string),
            }],
            line_fields: line_fields(ev),
        }
    }
}

/// The canonical fields of the firing line, by canonical name (the
/// environment of incident actions, SPEC §5).
fn line_fields(ev: &Event) -> Vec<(&'static str, String)> {
    let mut m = Vec::with_capacity(1 + Field::ALL.len());
    m.push(("ts", format_ts(ev.ts)));
    for f in Field::ALL {
        if let Some(v) = ev.field(f) {
            m.push((f.as_str(), v.to_string()));
        }
    }
    m
}

/// `window` of SPEC §4: seconds with an `s` (`"60s"`, `"3600s"`).
pub(crate) fn format_window(ms: Millis) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", ms as f64 / 1000.0)
    }
}

/// `user u-42`, or `user u-42, server gmail` for several key fields.
pub(crate) fn describe_key(fields: &[Field], ev: &Event) -> String {
    let mut s = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(f.noun());
        s.push(' ');
        s.push_str(ev.key_value(*f));
    }
    s
}

/// The idle time after which a key's state is dropped: max(window,
/// realert); `None` (never) when realert is never.
pub(crate) fn idle_of(rule: &RuleConfig) -> Option<Millis> {
    rule.realert.map(|r| r.max(rule.window))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_beyond;
