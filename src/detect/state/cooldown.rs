//! [`Cooldown`]: SPEC §3's realert rule for one (rule, key), and the count
//! of hits it suppressed.

use serde::{Deserialize, Serialize};

use crate::event::Millis;

/// Realert bookkeeping for one (rule, key): SPEC §3's cooldown.
///
/// Every key of most rules holds one, so it is 16 bytes: the last alert's
/// time with `Millis::MIN` for none (an `Option` would take 16 alone).
/// Checkpoints keep the `Option` form ([`CooldownData`]).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(from = "CooldownData", into = "CooldownData")]
pub(crate) struct Cooldown {
    last_alert: Millis,
    suppressed: u64,
}

/// No alert yet.
const NEVER: Millis = Millis::MIN;

impl Default for Cooldown {
    fn default() -> Self {
        Cooldown {
            last_alert: NEVER,
            suppressed: 0,
        }
    }
}

/// A cooldown as checkpoints store it.
#[derive(Serialize, Deserialize)]
struct CooldownData {
    last_alert: Option<Millis>,
    suppressed: u64,
}

impl From<CooldownData> for Cooldown {
    fn from(d: CooldownData) -> Self {
        Cooldown {
            // An alert at ts `Millis::MIN` cannot be parsed from a line.
            last_alert: d.last_alert.unwrap_or(NEVER),
            suppressed: d.suppressed,
        }
    }
}

impl From<Cooldown> for CooldownData {
    fn from(c: Cooldown) -> Self {
        CooldownData {
            last_alert: (c.last_alert != NEVER).then_some(c.last_alert),
            suppressed: c.suppressed,
        }
    }
}

impl Cooldown {
    /// Decides a hit at `t`: `Some(suppressed count to report)` when it
    /// alerts, `None` when it is suppressed (and counted). `realert = None`
    /// means never alert again for this key.
    pub(crate) fn hit(&mut self, t: Millis, realert: Option<Millis>) -> Option<u64> {
        if self.last_alert != NEVER {
            let quiet = match realert {
                None => true,
                Some(r) => t < self.last_alert.saturating_add(r),
            };
            if quiet {
                self.suppressed += 1;
                return None;
            }
        }
        let n = self.suppressed;
        self.suppressed = 0;
        self.last_alert = t;
        Some(n)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_alerts_again_at_exactly_realert() {
        let mut c = Cooldown::default();
        assert_eq!(c.hit(0, Some(600_000)), Some(0));
        assert_eq!(c.hit(1, Some(600_000)), None);
        assert_eq!(c.hit(599_999, Some(600_000)), None);
        assert_eq!(c.hit(600_000, Some(600_000)), Some(2));
        assert_eq!(c.hit(600_001, None), None);
    }

    #[test]
    fn cooldown_is_16_bytes_and_checkpoints_as_before() {
        assert_eq!(std::mem::size_of::<Cooldown>(), 16);
        let mut c = Cooldown::default();
        let none = postcard::to_allocvec(&c).unwrap();
        assert_eq!(
            none,
            postcard::to_allocvec(&CooldownData {
                last_alert: None,
                suppressed: 0
            })
            .unwrap()
        );
        c.hit(5, None);
        c.hit(6, None);
        let back: Cooldown = postcard::from_bytes(&postcard::to_allocvec(&c).unwrap()).unwrap();
        assert_eq!((back.last_alert, back.suppressed), (5, 1));
        let old = postcard::to_allocvec(&CooldownData {
            last_alert: Some(5),
            suppressed: 1,
        })
        .unwrap();
        assert_eq!(postcard::to_allocvec(&back).unwrap(), old);
    }
}
