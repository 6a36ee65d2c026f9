//! The building blocks of detector state: keyed maps with LRU order, idle
//! expiry and a size cap; event-time sliding windows; realert cooldowns.
//!
//! All of it is plain data (serde) so the daemon can checkpoint it, and none
//! of it reads a clock: time is always the event time passed in.
//!
//! One room each: `keyed` the map, `window` the sliding windows,
//! `cooldown` the realert bookkeeping, `key` how an event's key fields
//! become the map's key. Every public name is re-exported here.

mod cooldown;
mod key;
mod keyed;
mod opt;
mod slots;
mod window;

pub(crate) use cooldown::Cooldown;
pub(crate) use key::{same_key, state_key};
pub(crate) use keyed::KeyedState;
pub(crate) use opt::OptMillis;
pub(crate) use window::Window;

/// A copy of detector state for the daemon's checkpoint, taken on the
/// detection thread and serialized on another: it must cost little to take
/// (maps lend their nodes rather than copy them, see [`KeyedState`]) and
/// must not change as detection goes on.
pub(crate) trait Snapshot {
    fn snapshot(&mut self) -> Self;
}

/// `impl Snapshot` for a rule's state: the maps listed first lend their
/// nodes, the fields after `;` (small) are cloned.
macro_rules! impl_snapshot {
    ($T:ty { $($map:ident),* $(; $($field:ident),*)? }) => {
        impl $crate::detect::state::Snapshot for $T {
            fn snapshot(&mut self) -> Self {
                Self {
                    $($map: $crate::detect::state::Snapshot::snapshot(&mut self.$map),)*
                    $($($field: self.$field.clone(),)*)?
                }
            }
        }
    };
}
pub(crate) use impl_snapshot;
