//! `approval_bypass`: a call of a tool that requires approval, with outcome
//! not `denied`, and no `approve` for the same `request_id` with ts in
//! [call − horizon, call + grace]. Decided once an event with ts later than
//! call + grace is processed (so an approve at exactly call + grace is in
//! time); calls still undecided when the input ends raise nothing. Live,
//! a call is also held until `approvals.log` has moved past its deadline
//! or `grace` of wall-clock time has passed since it was read (SPEC §8):
//! the caller opens that gate with [`crate::detect::Engine::set_bypass_horizon`],
//! so one line stamped minutes ahead cannot make approvals late.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use super::Rule;
use crate::config::{Config, RuleConfig};
use crate::detect::state::{Cooldown, KeyedState, state_key};
use crate::detect::{AlertDraft, Cx, Stats, format_window};
use crate::event::{Decision, Event, Field, Kind, Millis, Outcome};
use crate::policy::ToolClass;

/// Approve times kept per request id (retries can approve one request more
/// than once; only recent ones can still matter).
const APPROVES_PER_REQUEST: usize = 8;

#[derive(Debug)]
pub(crate) struct ApprovalBypass {
    r: RuleConfig,
}

impl ApprovalBypass {
    /// How long after a call its approve still counts (the live gate of
    /// the pipeline waits this long on the wall clock).
    pub(crate) fn grace(&self) -> Millis {
        self.r.grace
    }
}

impl Rule for ApprovalBypass {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall, Kind::Approval];
    const ADVICE: &'static str = "The call ran without a recorded approval: look for its request id in \
         approvals.log and check whether the approval step was skipped or misconfigured.";
    type State = BypassState;

    fn new(r: RuleConfig, _: &Config) -> Self {
        ApprovalBypass { r }
    }

    fn process(&self, st: &mut BypassState, cx: &mut Cx<'_, '_>) {
        match cx.ev.kind {
            Some(Kind::ToolCall) => {
                if cx.tool.map(|p| p.class) == Some(ToolClass::RequiresApproval) {
                    on_call(&self.r, st, cx);
                }
            }
            Some(Kind::Approval) => on_approval(&self.r, st, cx),
            Some(Kind::Error) | None => {}
        }
    }

    fn judge_due(&self, st: &mut BypassState, cx: &mut Cx<'_, '_>) {
        decide_due(&self.r, st, cx);
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct BypassState {
    /// request_id → times of its approve decisions.
    approvals: KeyedState<Vec<Millis>>,
    /// Calls waiting for their deadline (call ts + grace), earliest first.
    pending: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    /// Realert bookkeeping by the rule's key.
    cooldowns: KeyedState<Cooldown>,
    /// request ids already judged a bypass (for counting late approvals).
    bypassed: KeyedState<()>,
}

crate::detect::state::impl_snapshot!(BypassState { approvals, cooldowns, bypassed; pending, seq });

impl BypassState {
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    deadline: Millis,
    seq: u64,
    call: Event,
    file: String,
    line: u64,
    raw: String,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// Judges every pending call whose deadline the watermark (and, live,
/// the approvals' horizon) has passed.
fn decide_due(r: &RuleConfig, st: &mut BypassState, cx: &mut Cx<'_, '_>) {
    while let Some(Reverse(p)) = st.pending.peek() {
        if p.deadline >= cx.watermark || p.deadline >= cx.bypass_horizon {
            break;
        }
        let Some(Reverse(p)) = st.pending.pop() else {
            break;
        };
        judge(r, st, cx, p);
    }
    let keep = r.horizon.saturating_add(r.grace);
    // Approvals a call still waiting (live, behind the gate) may need are
    // kept: those from its ts − horizon on, however far event time moved.
    let held = st.pending.peek().map_or(Millis::MAX, |p| p.0.deadline);
    st.approvals.expire(cx.watermark.min(held), keep);
    st.bypassed.expire(cx.watermark, keep);
}

fn judge(r: &RuleConfig, st: &mut BypassState, cx: &mut Cx<'_, '_>, p: Pending) {
    let call_ts = p.call.ts;
    let rid = p.call.request_id.as_deref().unwrap_or("unknown");
    let approved = st.approvals.get_mut(rid).is_some_and(|e| {
        e.value
            .iter()
            .any(|&a| a >= call_ts - r.horizon && a <= call_ts + r.grace)
    });
    if approved {
        return;
    }
    let (_, touch) = st.bypassed.touch(rid, call_ts, None, r.max_keys);
    if touch.evicted {
        Stats::bump(&mut cx.stats.evictions, r.name, 1);
    }
    let key = state_key(&p.call, &r.key, cx.key);
    let (entry, touch) = st.cooldowns.touch(key, call_ts, None, r.max_keys);
    if touch.evicted {
        Stats::bump(&mut cx.stats.evictions, r.name, 1);
    }
    let verdict = entry.value.hit(call_ts, r.realert);
    cx.raise(r, verdict, |suppressed| {
        let message = format!(
            "request {rid}: {} on server {} ran without an approve decision (none from {} before to {} after the call; user {}, outcome {})",
            p.call.key_value(Field::ToolName),
            p.call.key_value(Field::ServerName),
            format_window(r.horizon),
            format_window(r.grace),
            p.call.key_value(Field::UserId),
            outcome_of(&p.call),
        );
        AlertDraft::plain(suppressed, message).finish(r, &p.call, &p.file, p.line, p.raw.as_bytes())
    });
}

fn outcome_of(ev: &Event) -> &'static str {
    match ev.outcome {
        Some(Outcome::Success) => "success",
        Some(Outcome::Error) => "error",
        Some(Outcome::Denied) => "denied",
        None => "not logged",
    }
}

/// Registers a call of a tool that requires approval.
fn on_call(r: &RuleConfig, st: &mut BypassState, cx: &mut Cx<'_, '_>) {
    if cx.ev.outcome == Some(Outcome::Denied) {
        return;
    }
    if cx.ev.request_id.is_none() {
        cx.stats.bypass_unjudged += 1;
        return;
    }
    if st.pending.len() >= r.max_keys.max(1) {
        // Full: judge the earliest call now rather than grow without bound.
        st.pending.pop();
        Stats::bump(&mut cx.stats.evictions, r.name, 1);
    }
    st.seq += 1;
    st.pending.push(Reverse(Pending {
        deadline: cx.ev.ts.saturating_add(r.grace),
        seq: st.seq,
        call: cx.ev.clone(),
        file: cx.line.file.to_string(),
        line: cx.line.line,
        raw: String::from_utf8_lossy(crate::alert::strip_line(cx.line.raw)).into_owned(),
    }));
}

/// Records an approve decision.
fn on_approval(r: &RuleConfig, st: &mut BypassState, cx: &mut Cx<'_, '_>) {
    if cx.ev.decision != Some(Decision::Approve) {
        return;
    }
    let Some(rid) = cx.ev.request_id.as_deref() else {
        return;
    };
    if st.bypassed.contains(rid) {
        cx.stats.late_approvals += 1;
    }
    let keep = Some(r.horizon.saturating_add(r.grace));
    let (entry, touch) = st.approvals.touch(rid, cx.ev.ts, keep, r.max_keys);
    let v = &mut entry.value;
    if v.len() >= APPROVES_PER_REQUEST {
        v.remove(0);
    }
    v.push(cx.ev.ts);
    if touch.evicted {
        Stats::bump(&mut cx.stats.evictions, r.name, 1);
    }
}
