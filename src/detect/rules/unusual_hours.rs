//! `unusual_hours`: a tool call whose local hour (in the rule's IANA
//! `timezone`, DST-aware) is one of `hours`.

use std::cell::Cell;

use chrono::{TimeZone, Timelike};
use serde::{Deserialize, Serialize};

use super::{Rule, int};
use crate::config::{Config, RuleConfig};
use crate::detect::state::{Cooldown, KeyedState, state_key};
use crate::detect::{AlertDraft, Cx, Stats, describe_key, idle_of};
use crate::event::{Field, Kind, Millis};

/// Every zone offset in use since 2000 is a multiple of 15 minutes, so the
/// local hour is constant within an aligned 15-minute span of UTC: cache it.
const SPAN_MS: Millis = 15 * 60 * 1000;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    keys: KeyedState<Cooldown>,
}

crate::detect::state::impl_snapshot!(State { keys });

#[derive(Debug)]
pub(crate) struct UnusualHours {
    r: RuleConfig,
    unusual: [bool; 24],
    /// `hours` as messages print it (`0,1,2,3,4,5`), written once.
    hours_text: String,
    /// (span index, local hour) of the last lookup.
    last: Cell<(i64, u8)>,
}

impl Rule for UnusualHours {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "Confirm with the user that they were working at this hour; if not, check the token \
         used and the tools called for signs of a stolen credential.";
    type State = State;

    fn new(r: RuleConfig, _: &Config) -> Self {
        let mut unusual = [false; 24];
        for h in &r.hours {
            if let Some(slot) = unusual.get_mut(usize::from(*h)) {
                *slot = true;
            }
        }
        UnusualHours {
            hours_text: hours_list(&r.hours),
            r,
            unusual,
            last: Cell::new((i64::MIN, 0)),
        }
    }

    fn warm(&self, st: &State, cx: &Cx<'_, '_>) {
        if self.unusual[usize::from(self.local_hour(cx.ev.ts))] {
            st.keys.warm_event(cx.ev, &self.r.key);
        }
    }

    fn process(&self, st: &mut State, cx: &mut Cx<'_, '_>) {
        let r = &self.r;
        let t = cx.ev.ts;
        let hour = self.local_hour(t);
        if !self.unusual[usize::from(hour)] {
            return;
        }
        let key = state_key(cx.ev, &r.key, cx.key);
        let (entry, touch) = st.keys.touch(key, t, idle_of(r), r.max_keys);
        if touch.evicted {
            Stats::bump(&mut cx.stats.evictions, r.name, 1);
        }
        let verdict = entry.value.hit(t, r.realert);
        let (ev, line) = (cx.ev, cx.line);
        cx.raise(r, verdict, |suppressed| {
            let local = r
                .timezone
                .timestamp_millis_opt(t)
                .single()
                .map(|d| format!("{:02}:{:02}", d.hour(), d.minute()))
                .unwrap_or_else(|| format!("{hour:02}:??"));
            let message = format!(
                "{} called {} on server {} at {local} {} (unusual hours {})",
                describe_key(&r.key, ev),
                ev.key_value(Field::ToolName),
                ev.key_value(Field::ServerName),
                r.timezone.name(),
                self.hours_text,
            );
            AlertDraft {
                value: Some(int(u64::from(hour))),
                ..AlertDraft::plain(suppressed, message)
            }
            .finish_at(r, ev, line)
        });
        if let Some(idle) = idle_of(r) {
            st.keys.expire(cx.watermark, idle);
        }
    }
}

impl UnusualHours {
    /// The local hour of `t`, cached per aligned span (see [`SPAN_MS`]).
    fn local_hour(&self, t: Millis) -> u8 {
        let span = t.div_euclid(SPAN_MS);
        let (s, h) = self.last.get();
        if s == span {
            return h;
        }
        let h = match self.r.timezone.timestamp_millis_opt(t).single() {
            Some(d) => d.hour() as u8,
            None => 0,
        };
        self.last.set((span, h));
        h
    }
}

fn hours_list(hours: &[u8]) -> String {
    let v: Vec<String> = hours.iter().map(|h| h.to_string()).collect();
    v.join(",")
}
