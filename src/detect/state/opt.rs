//! [`OptMillis`]: an optional event time in 8 bytes, for per-key state that
//! a million keys each hold (an `Option<i64>` takes 16).

use serde::{Deserialize, Serialize};

use crate::event::Millis;

/// An optional time (or other `i64` no event can produce as
/// `Millis::MIN`), stored without a tag and checkpointed as the
/// `Option<i64>` it stands for, so the bytes are those of an `Option`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Option<Millis>", into = "Option<Millis>")]
pub(crate) struct OptMillis(Millis);

/// `None`: no timestamp parsed from a line is this far back.
const NONE: Millis = Millis::MIN;

impl Default for OptMillis {
    fn default() -> Self {
        OptMillis(NONE)
    }
}

impl OptMillis {
    #[inline]
    pub(crate) fn get(self) -> Option<Millis> {
        (self.0 != NONE).then_some(self.0)
    }

    /// Sets the value (`Millis::MIN` is kept as the smallest other value:
    /// it cannot stand for itself).
    #[inline]
    pub(crate) fn set(&mut self, v: Millis) {
        self.0 = v.max(NONE + 1);
    }
}

impl From<Option<Millis>> for OptMillis {
    fn from(v: Option<Millis>) -> Self {
        let mut o = OptMillis::default();
        if let Some(v) = v {
            o.set(v);
        }
        o
    }
}

impl From<OptMillis> for Option<Millis> {
    fn from(o: OptMillis) -> Self {
        o.get()
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opt_millis_is_8_bytes_and_checkpoints_as_an_option() {
        assert_eq!(std::mem::size_of::<OptMillis>(), 8);
        for v in [
            None,
            Some(0),
            Some(-5),
            Some(1_795_442_639_000),
            Some(i64::MAX),
        ] {
            let o = OptMillis::from(v);
            assert_eq!(o.get(), v);
            let bytes = postcard::to_stdvec(&o).unwrap();
            assert_eq!(bytes, postcard::to_stdvec(&v).unwrap());
            assert_eq!(postcard::from_bytes::<OptMillis>(&bytes).unwrap(), o);
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                serde_json::to_string(&v).unwrap()
            );
        }
        assert_eq!(
            OptMillis::from(Some(Millis::MIN)).get(),
            Some(Millis::MIN + 1)
        );
    }
}
