//! `token_shared`: the seed's "token compromise" — more than `threshold`
//! (1) distinct values of `by` (`agent_id`; `user_id` where tokens are per
//! user) used one token with ts in (t − `window`, t] (1 h). In the seed a
//! token belongs to one server and one agent. Calls without `token_id`
//! are ignored (no `"unknown"` token); calls without the `by` field are
//! neither counted nor judged.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::{Rule, int, threshold_number};
use crate::config::{Config, RuleConfig};
use crate::detect::state::{Cooldown, KeyedState, state_key};
use crate::detect::{AlertDraft, Cx, Stats, format_window, idle_of};
use crate::event::{Kind, Millis, Text};

/// Distinct `by` values kept per token: enough to count past any sane
/// threshold; beyond it the least recently seen is dropped (and counted as
/// an eviction), so one token used by a flood of agents stays bounded.
const USERS_PER_TOKEN: usize = 64;
/// Names listed in the message, at most.
const NAMES_SHOWN: usize = 5;

#[derive(Debug)]
pub(crate) struct TokenShared {
    r: RuleConfig,
    /// Most values kept per token: the threshold plus one always fit.
    cap: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct SharedState {
    tokens: KeyedState<TokenUse>,
}

crate::detect::state::impl_snapshot!(SharedState { tokens });

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct TokenUse {
    /// (value of `by`, ts of its latest call), least recent first. One
    /// lives inline (a token is used by one agent, unless shared), so most
    /// tokens allocate nothing; checkpoints store it as a sequence, as
    /// they did a `Vec`.
    users: SmallVec<[(Text, Millis); 1]>,
    cooldown: Cooldown,
}

impl Rule for TokenShared {
    const INPUTS: &'static [Kind] = &[Kind::ToolCall];
    const ADVICE: &'static str = "One bearer token was used by more than one agent: treat it as compromised \
         — revoke and reissue it, then find which agent should not hold it.";
    type State = SharedState;

    fn new(r: RuleConfig, _: &Config) -> Self {
        let cap = USERS_PER_TOKEN.max(r.threshold as usize + 1);
        TokenShared { r, cap }
    }

    fn warm(&self, st: &SharedState, cx: &Cx<'_, '_>) {
        if cx.ev.token_id.is_some() {
            st.tokens.warm_event(cx.ev, &self.r.key);
        }
    }

    fn process(&self, st: &mut SharedState, cx: &mut Cx<'_, '_>) {
        let r = &self.r;
        let (Some(_), Some(who)) = (cx.ev.token_id.as_deref(), cx.ev.field(r.by)) else {
            return;
        };
        let t = cx.ev.ts;
        let idle = idle_of(r);
        let key = state_key(cx.ev, &r.key, cx.key);
        let (entry, touch) = st.tokens.touch(key, t, idle, r.max_keys);
        let mut evicted = u64::from(touch.evicted);
        let u = &mut entry.value;
        let floor = t.saturating_sub(r.window);
        u.users.retain(|(_, seen)| *seen > floor);
        match u.users.iter().position(|(v, _)| v.as_str() == who) {
            Some(i) => {
                let mut e = u.users.remove(i);
                e.1 = e.1.max(t);
                u.users.push(e);
            }
            None => {
                if u.users.len() >= self.cap {
                    u.users.remove(0);
                    evicted += 1;
                }
                u.users.push((who.into(), t));
            }
        }
        Stats::bump(&mut cx.stats.evictions, r.name, evicted);
        let count = u.users.len() as u64;
        if (count as f64) > r.threshold {
            let verdict = u.cooldown.hit(t, r.realert);
            let mut names: Vec<&str> = u.users.iter().rev().map(|(v, _)| v.as_str()).collect();
            names.truncate(NAMES_SHOWN);
            names.sort_unstable();
            let message = format!(
                "token {} was used by {count} distinct {}s in {} (threshold {}): {}{}",
                cx.ev.key_value(crate::event::Field::TokenId),
                r.by.noun(),
                format_window(r.window),
                threshold_number(r.threshold),
                names.join(", "),
                if count as usize > NAMES_SHOWN {
                    ", …"
                } else {
                    ""
                }
            );
            let (ev, line) = (cx.ev, cx.line);
            cx.raise(r, verdict, |suppressed| {
                AlertDraft {
                    value: Some(int(count)),
                    threshold: Some(threshold_number(r.threshold)),
                    window: Some(r.window),
                    suppressed,
                    message,
                }
                .finish_at(r, ev, line)
            });
        }
        if let Some(idle) = idle {
            st.tokens.expire(cx.watermark, idle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token's use as checkpoints before the inline list wrote it.
    #[derive(Serialize)]
    struct Before {
        users: Vec<(Text, Millis)>,
        cooldown: Cooldown,
    }

    #[test]
    fn a_token_checkpointed_with_a_vec_of_users_reads_back_the_same() {
        for users in [
            vec![],
            vec![("ag-1".into(), 5)],
            vec![("ag-1".into(), 5), ("ag-2".into(), 7)],
        ] {
            let old = postcard::to_allocvec(&Before {
                users: users.clone(),
                cooldown: Cooldown::default(),
            })
            .unwrap();
            let u: TokenUse = postcard::from_bytes(&old).unwrap();
            assert_eq!(u.users.to_vec(), users);
            assert_eq!(postcard::to_allocvec(&u).unwrap(), old);
        }
    }
}
