//! The shared shape of the two silence rules (`server_silence`,
//! `audit_silence`): the watermark passes a key's last call + `after`
//! while the hour ending at that call held at least `min_events` calls.
//!
//! "Passes T" means an event with ts > T is processed; the check runs
//! before that event (from `judge_due`), so a call at exactly last +
//! `after` re-arms without an alert. The alert carries ts = last +
//! `after` and the last call as its firing line, so the alert `run` raises
//! live and the one `scan` finds later are one id. Live the watermark is
//! min(highest ts, this host's clock) (`Cx::wall`), and `audit_silence`
//! also fires by the wall clock: `after` after its last call was read.
//!
//! A key's state is kept until its silence fires (then dropped: a new
//! call starts afresh), or until it is idle longer than an hour and
//! `after` without being armed, when it can no longer change an outcome.
//! Armed keys wait in a heap by deadline, one entry each, checked lazily:
//! a call only moves its key's deadline, and a popped entry whose key
//! has moved on is pushed again at the new deadline.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};

use super::int;
use crate::alert::{Alert, Evidence, alert_id, format_ts, strip_line};
use crate::config::RuleConfig;
use crate::detect::state::{KeyedState, Window, state_key};
use crate::detect::{Cx, Stats};
use crate::event::{Field, Millis, Text};

/// `min_events` counts the calls in the hour ending at the last call.
const HOUR: Millis = 3_600_000;

/// The key of a silence: the rule's key fields, or one fixed key for the
/// whole log (`audit_silence`: `{"log": "tool-usage.log"}`).
#[derive(Debug)]
pub(crate) enum SilenceKey {
    Fields,
    Log(&'static str),
}

/// One silence rule as it runs.
#[derive(Debug)]
pub(crate) struct Silence {
    pub(crate) r: RuleConfig,
    pub(crate) key: SilenceKey,
    pub(crate) after: Millis,
    /// `audit_silence`: fire live also by the wall time calls were read.
    pub(crate) by_read_time: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    keys: KeyedState<Quiet>,
    /// (deadline, key) of armed keys, earliest first (see the module doc).
    due: BinaryHeap<Reverse<(Millis, String)>>,
}

crate::detect::state::impl_snapshot!(State { keys; due });

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Quiet {
    calls: Window,
    /// The last call: its ts and what the alert needs of its line.
    last: Millis,
    file: String,
    line: u64,
    /// The line's bytes as read (BOM and line ending stripped): copied per
    /// call without a UTF-8 check, the id hashes them as they are.
    raw: Vec<u8>,
    request_id: Option<Text>,
    /// Values of the rule's key fields (`Fields` keys).
    key_values: Vec<Option<Text>>,
    /// Deadline of this key's entry in the heap, if it has one.
    queued: Option<Millis>,
    /// Live: this host's clock (ms) when the last call was processed.
    read_at: Option<Millis>,
}

impl Silence {
    fn state_key<'a>(&self, cx: &'a mut Cx<'_, '_>) -> &'a str {
        match self.key {
            SilenceKey::Fields => state_key(cx.ev, &self.r.key, cx.key),
            SilenceKey::Log(name) => name,
        }
    }

    /// A call: it becomes its key's last call and may arm the key.
    pub(crate) fn on_call(&self, st: &mut State, cx: &mut Cx<'_, '_>) {
        let r = &self.r;
        let (t, wall) = (cx.ev.ts, cx.wall);
        let (ev, line) = (cx.ev, cx.line);
        let key = self.state_key(cx);
        let (entry, touch) = st.keys.touch(key, t, None, r.max_keys);
        let q = &mut entry.value;
        q.calls.add(t, 1, 0, HOUR);
        if touch.inserted || t >= q.last {
            q.last = t;
            if q.file != **line.file {
                q.file = line.file.to_string();
            }
            q.line = line.line;
            q.raw.clear();
            q.raw.extend_from_slice(strip_line(line.raw));
            q.request_id.clone_from(&ev.request_id);
            // The key's values are the key's own, so they change only
            // where a missing field and a literal "unknown" share it.
            if let SilenceKey::Fields = self.key
                && (q.key_values.len() != r.key.len()
                    || !(r.key.iter().zip(&q.key_values))
                        .all(|(f, v)| ev.field(*f) == v.as_deref()))
            {
                q.key_values.clear();
                q.key_values
                    .extend(r.key.iter().map(|f| ev.field(*f).map(Text::from)));
            }
            q.read_at = wall;
        }
        // An armed key stays armed until its deadline is judged: only an
        // unarmed one needs the hour's count.
        if q.queued.is_none() && q.calls.sums(q.last, HOUR).0 >= r.min_events {
            let deadline = q.last.saturating_add(self.after);
            q.queued = Some(deadline);
            st.due.push(Reverse((deadline, key.to_string())));
        }
        if touch.evicted {
            Stats::bump(&mut cx.stats.evictions, r.name, 1);
        }
    }

    /// Fires the silences the watermark (live: and the clock) has passed.
    pub(crate) fn judge(&self, st: &mut State, cx: &mut Cx<'_, '_>) {
        let passed = cx.watermark.min(cx.wall.unwrap_or(Millis::MAX));
        while let Some(Reverse((deadline, _))) = st.due.peek() {
            if *deadline >= passed {
                break;
            }
            let Some(Reverse((deadline, key))) = st.due.pop() else {
                break;
            };
            let Some(q) = st.keys.get_mut(&key).map(|e| &mut e.value) else {
                continue;
            };
            if q.queued != Some(deadline) {
                continue; // a stale entry: the key was evicted and came back
            }
            let now_due = q.last.saturating_add(self.after);
            if now_due > deadline {
                q.queued = Some(now_due);
                st.due.push(Reverse((now_due, key)));
                continue;
            }
            self.fire(st, &key, cx);
        }
        if self.by_read_time
            && let (Some(now), SilenceKey::Log(key)) = (cx.wall, &self.key)
            && let Some(e) = st.keys.get_mut(key)
            && e.value.queued.is_some()
            && e.value
                .read_at
                .is_some_and(|r| now > r.saturating_add(self.after))
        {
            self.fire(st, key, cx);
        }
        st.keys.expire(passed, HOUR.max(self.after));
    }

    /// Raises the silence of `key` (armed, its deadline passed) if the hour
    /// before its last call held `min_events` calls; drops its state.
    fn fire(&self, st: &mut State, key: &str, cx: &mut Cx<'_, '_>) {
        let r = &self.r;
        let Some(e) = st.keys.get_mut(key) else {
            return;
        };
        let q = &mut e.value;
        q.queued = None;
        let (count, _) = q.calls.sums(q.last, HOUR);
        if count < r.min_events {
            return;
        }
        let keys: BTreeMap<String, String> = match self.key {
            SilenceKey::Fields => (r.key.iter().zip(&q.key_values))
                .map(|(f, v)| {
                    (
                        f.as_str().to_string(),
                        v.as_deref().unwrap_or("unknown").to_string(),
                    )
                })
                .collect(),
            SilenceKey::Log(name) => BTreeMap::from([("log".to_string(), name.to_string())]),
        };
        let who = match self.key {
            SilenceKey::Fields => (r.key.iter().zip(&q.key_values))
                .map(|(f, v)| format!("{} {}", f.noun(), v.as_deref().unwrap_or("unknown")))
                .collect::<Vec<_>>()
                .join(", "),
            SilenceKey::Log(name) => name.to_string(),
        };
        let ts = q.last.saturating_add(self.after);
        let alert = Alert {
            id: alert_id(r.name.as_str(), &keys, &q.raw),
            rule: r.name.as_str().to_string(),
            severity: r.severity,
            ts: format_ts(ts),
            key: keys,
            value: Some(int(count)),
            threshold: Some(int(r.min_events)),
            window: Some(crate::detect::format_window(self.after)),
            suppressed: 0,
            message: format!(
                "{who} went silent: no tool call in the {} after its last at {} ({count} calls in the hour before it; min_events {})",
                crate::detect::format_window(self.after),
                format_ts(q.last),
                r.min_events
            ),
            evidence: vec![Evidence {
                file: q.file.clone(),
                line: q.line,
                request_id: q.request_id.as_deref().map(str::to_string),
            }],
            // What an action learns of the firing line: its ts, request
            // id and the key fields (the state keeps no more of it).
            line_fields: std::iter::once(("ts", format_ts(q.last)))
                .chain(
                    q.request_id
                        .as_deref()
                        .map(|v| (Field::RequestId.as_str(), v.to_string())),
                )
                .chain(match self.key {
                    SilenceKey::Fields => r
                        .key
                        .iter()
                        .zip(&q.key_values)
                        .filter_map(|(f, v)| Some((f.as_str(), v.as_deref()?.to_string())))
                        .collect::<Vec<_>>(),
                    SilenceKey::Log(_) => Vec::new(),
                })
                .collect(),
        };
        cx.raise(r, Some(0), |_| alert);
        st.keys.remove(key);
    }
}
