//! [`Cooldown`]: SPEC §3's realert rule for one (rule, key), and the count
//! of hits it suppressed.

use serde::{Deserialize, Serialize};

use crate::event::Millis;

/// Realert bookkeeping for one (rule, key): SPEC §3's cooldown.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Cooldown {
    pub(crate) last_alert: Option<Millis>,
    pub(crate) suppressed: u64,
}

impl Cooldown {
    /// Decides a hit at `t`: `Some(suppressed count to report)` when it
    /// alerts, `None` when it is suppressed (and counted). `realert = None`
    /// means never alert again for this key.
    pub(crate) fn hit(&mut self, t: Millis, realert: Option<Millis>) -> Option<u64> {
        if let Some(last) = self.last_alert {
            let quiet = match realert {
                None => true,
                Some(r) => t < last.saturating_add(r),
            };
            if quiet {
                self.suppressed += 1;
                return None;
            }
        }
        let n = self.suppressed;
        self.suppressed = 0;
        self.last_alert = Some(t);
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
}
