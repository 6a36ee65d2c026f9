//! The rules the seed's own settings switch on (SPEC §3): which of them
//! run, and the settings they take from `security-config.json`. A rules
//! file's values come first, then the seed's, then SPEC §3's defaults.

use super::rules::{
    DEFAULT_BURST_LIMIT, DEFAULT_HEALTH_CHECK_MS, DEFAULT_INTERVAL_DAYS,
    DEFAULT_NOTIFY_BEFORE_DAYS, DEFAULT_REQUESTS_PER_MINUTE,
};
use super::{Config, RuleName};

/// `after` is this many health-check intervals (SPEC §3).
const AFTER_INTERVALS: i64 = 10;

/// Switches the seed-driven rules on or off where no rules file set
/// `enabled` (`explicit`), and fills every seed-derived setting.
pub(crate) fn resolve(cfg: &mut Config, explicit: &[bool; RuleName::COUNT]) {
    let sec = &cfg.security;
    let rate = sec.rate_limiting.as_ref();
    let rotation = sec.token_rotation.as_ref();
    let monitoring = sec.monitoring.as_ref();
    let switches = [
        (RuleName::RateLimitExceeded, rate.is_some_and(|r| r.enabled)),
        (
            RuleName::TokenRotationDue,
            rotation.is_some_and(|r| r.enabled),
        ),
        (
            RuleName::TokenRotationOverdue,
            rotation.is_some_and(|r| r.enabled),
        ),
        (
            RuleName::ServerSilence,
            monitoring.is_some_and(|m| m.enabled),
        ),
        (
            RuleName::AuditSilence,
            monitoring.is_some_and(|m| m.enabled),
        ),
    ];
    let requests = rate.and_then(|r| r.requests_per_minute);
    let burst = rate.and_then(|r| r.burst_limit);
    let interval = rotation.and_then(|r| r.interval_days);
    let notify = rotation.and_then(|r| r.notify_before_days);
    let after = monitoring
        .and_then(|m| m.silence_after)
        .unwrap_or(DEFAULT_HEALTH_CHECK_MS * AFTER_INTERVALS);
    for (name, on) in switches {
        if !explicit[name as usize] {
            cfg.rules.get_mut(name).enabled = on;
        }
    }
    for r in &mut cfg.rules.rules {
        let s = &mut r.seeded;
        s.requests_per_minute = s
            .requests_per_minute
            .or(requests)
            .or(Some(DEFAULT_REQUESTS_PER_MINUTE));
        s.burst_limit = s.burst_limit.or(burst).or(Some(DEFAULT_BURST_LIMIT));
        s.interval_days = s.interval_days.or(interval).or(Some(DEFAULT_INTERVAL_DAYS));
        s.notify_before_days = s
            .notify_before_days
            .or(notify)
            .or(Some(DEFAULT_NOTIFY_BEFORE_DAYS));
        s.after = s.after.or(Some(after));
    }
}
