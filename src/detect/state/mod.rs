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
mod window;

pub(crate) use cooldown::Cooldown;
pub(crate) use key::state_key;
pub(crate) use keyed::KeyedState;
pub(crate) use keyed::same_key;
pub(crate) use window::Window;
