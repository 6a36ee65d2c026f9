//! Deterministic test data: the bundled example project and benchmark logs.
//!
//! Tests, benches and the README's quick start all draw their input from
//! here, so they agree on what the example contains. Everything is driven by
//! a tiny seeded PRNG (splitmix64) and fixed timestamps, never by the clock:
//! the same call writes the same bytes on every machine, which is what lets
//! `tests/it/fixtures_gen.rs` pin the committed `fixtures/example/` to this
//! code.
//!
//! The example is one day (2026-11-23 UTC) of traffic for 36 users, shaped so
//! that normal traffic sets off none of the rules of SPEC §3 and each planted
//! anomaly sets off exactly its own rule once; [`planted`] and the generated
//! `PLANTED.md` say which line fires.
//!
//! Compiled only with the `testkit` feature (off by default), so it is no
//! part of the shipped library: the crate's own tests and benches get it
//! through the dev-dependency of the crate on itself in `Cargo.toml`.
//!
//! This file holds the PRNG and the timestamp helpers both generators use;
//! `example` writes the example project, `bench` the benchmark logs.

mod bench;
mod example;

pub use bench::write_bench_log;
pub use example::{EXAMPLE_FILES, planted, write_example};

use crate::event::Millis;

/// 2026-11-23T00:00:00Z, the example's day.
pub const EXAMPLE_DAY_MS: Millis = 1_795_392_000_000;

const SEC: Millis = 1000;
const MIN: Millis = 60 * SEC;
const HOUR: Millis = 60 * MIN;

/// splitmix64: tiny, fast, good enough for test data, and stable forever
/// (no dependency whose stream could change under us).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }

    /// True with probability `p` (in steps of 1/1,000,000).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() % 1_000_000) as f64) < p * 1_000_000.0
    }
}

/// RFC 3339 UTC with milliseconds, as the audit logs write it. Hand-rolled
/// because the bench generator formats a million of them.
pub(crate) fn rfc3339_ms(ms: Millis) -> String {
    let mut s = String::with_capacity(24);
    push_rfc3339_ms(&mut s, ms);
    s
}

fn push_rfc3339_ms(out: &mut String, ms: Millis) {
    crate::alert::push_ts(out, ms);
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_day_is_2026_11_23() {
        assert_eq!(rfc3339_ms(EXAMPLE_DAY_MS), "2026-11-23T00:00:00.000Z");
    }
}
