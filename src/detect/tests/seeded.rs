//! Boundary tests of the rules the seed's own settings switch on (SPEC §3),
//! each named after the sentence it checks.

use super::*;
use crate::event::Severity;

/// The seed guide's `security-config.json` (fixtures/seed).
const SEED: &str = include_str!("../../../fixtures/seed/security-config.json");
const DAYS: Millis = 24 * H;

/// The seed's configuration with only `only` on: alerts of one rule at a
/// time.
fn seed_only(only: &[RuleName]) -> Config {
    seed_text_only(SEED, only)
}

fn seed_text_only(text: &str, only: &[RuleName]) -> Config {
    let mut c = crate::config::config_from_seed(text).expect("valid seed");
    for r in RuleName::ALL {
        if !only.contains(&r) {
            c.rules.get_mut(r).enabled = false;
        }
    }
    c
}

fn token_call(ts: Millis, token: &str, agent: Option<&str>, user: &str) -> Event {
    Event {
        token_id: Some(token.into()),
        agent_id: agent.map(Into::into),
        ..call(ts, user)
    }
}

fn server_call(ts: Millis, server: &str) -> Event {
    Event {
        server_name: Some(server.into()),
        ..call(ts, "u-1")
    }
}

// ---- switching on -------------------------------------------------------

#[test]
fn seed_sections_switch_their_rules_on_and_their_absence_keeps_them_off() {
    let seed = crate::config::config_from_seed(SEED).expect("valid seed");
    let bare = crate::config::config_from_seed("{}").expect("valid");
    for r in [
        RuleName::RateLimitExceeded,
        RuleName::TokenRotationDue,
        RuleName::TokenRotationOverdue,
        RuleName::ServerSilence,
        RuleName::AuditSilence,
    ] {
        assert!(Engine::new(&seed).enabled(r), "{}", r.as_str());
        assert!(!Engine::new(&bare).enabled(r), "{}", r.as_str());
    }
    assert!(Engine::new(&bare).enabled(RuleName::TokenShared));
    let off = crate::config::config_from_seed(
        r#"{"rateLimiting": {"enabled": false}, "authentication": {"tokenRotation": {"enabled": false}}, "monitoring": {"enabled": false}}"#,
    )
    .expect("valid");
    for r in [
        RuleName::RateLimitExceeded,
        RuleName::TokenRotationDue,
        RuleName::ServerSilence,
    ] {
        assert!(!Engine::new(&off).enabled(r), "{}", r.as_str());
    }
}

#[test]
fn silence_after_is_ten_health_check_intervals_rounded_down_to_the_ms() {
    let c = crate::config::config_from_seed(r#"{"monitoring": {"healthCheckInterval": 0.12345}}"#)
        .expect("valid");
    assert_eq!(
        c.rules.get(RuleName::ServerSilence).seeded.after,
        Some(1234)
    );
    let c = crate::config::config_from_seed(r#"{"monitoring": {}}"#).expect("valid");
    assert_eq!(
        c.rules.get(RuleName::AuditSilence).seeded.after,
        Some(600_000)
    );
}

// ---- rate_limit_exceeded ----------------------------------------------

#[test]
fn rate_limit_eleventh_call_1s_after_ten_immediate_ones_conforms_and_twelfth_at_1_1s_is_over() {
    let mut e = Engine::new(&seed_only(&[RuleName::RateLimitExceeded]));
    let t0 = DAY + 12 * H;
    let mut evs: Vec<Event> = (0..10).map(|_| call(t0, "u-1")).collect();
    evs.push(call(t0 + 1000, "u-1"));
    assert!(run(&mut e, &evs).is_empty(), "the 11th at 1.0 s conforms");
    let alerts = run_from(&mut e, &[call(t0 + 1100, "u-1")], 11);
    assert_eq!(rules_of(&alerts), ["rate_limit_exceeded"]);
    let a = &alerts[0];
    assert_eq!(a.value, Some(Number::Int(12)));
    assert_eq!(a.threshold, Some(Number::Int(60)));
    assert_eq!(a.window.as_deref(), Some("60s"));
    assert_eq!(a.severity, Severity::Medium);
    assert_eq!(a.ts, "2026-11-23T12:00:01.100Z");
    assert_eq!(a.evidence[0].line, 12);
    assert_eq!(
        a.message,
        "user u-1 made 12 tool calls in 60s and found the token bucket empty (rateLimiting: 60 per minute, burst 10)"
    );
}

#[test]
fn rate_limit_a_rate_exactly_at_the_limit_never_fires() {
    let mut e = Engine::new(&seed_only(&[RuleName::RateLimitExceeded]));
    // One call a second for ten minutes: 60 per minute, after a full burst.
    let mut evs: Vec<Event> = (0..10).map(|_| call(DAY, "u-1")).collect();
    evs.extend((1..600).map(|i| call(DAY + 9 * S + i * S, "u-1")));
    assert!(run(&mut e, &evs).is_empty());
    // Steady at the limit from the first call.
    let mut e = Engine::new(&seed_only(&[RuleName::RateLimitExceeded]));
    let evs: Vec<Event> = (0..600).map(|i| call(DAY + i * S, "u-2")).collect();
    assert!(run(&mut e, &evs).is_empty());
}

#[test]
fn rate_limit_seven_per_minute_burst_three_integer_arithmetic_decides_exactly() {
    let seed = r#"{"rateLimiting": {"requestsPerMinute": 7, "burstLimit": 3}}"#;
    let c = seed_text_only(seed, &[RuleName::RateLimitExceeded]);
    // T = 60 s / 7 = 8571.43 ms: after a burst of 3 at 0, the 4th finds a
    // token at 8572 ms and not at 8571 ms.
    let burst_then = |t4: Millis| {
        let mut e = Engine::new(&c);
        let mut evs: Vec<Event> = (0..3).map(|_| call(DAY, "u-1")).collect();
        evs.push(call(DAY + t4, "u-1"));
        run(&mut e, &evs).len()
    };
    assert_eq!(burst_then(8571), 1);
    assert_eq!(burst_then(8572), 0);
    // Then the 5th at 2T = 17142.86 ms: 17142 is over, 17143 conforms.
    let fifth = |t5: Millis| {
        let mut e = Engine::new(&c);
        let mut evs: Vec<Event> = (0..3).map(|_| call(DAY, "u-1")).collect();
        evs.push(call(DAY + 8572, "u-1"));
        evs.push(call(DAY + t5, "u-1"));
        run(&mut e, &evs).len()
    };
    assert_eq!(fifth(17142), 1);
    assert_eq!(fifth(17143), 0);
}

#[test]
fn rate_limit_a_refused_call_takes_no_token() {
    let mut e = Engine::new(&seed_only(&[RuleName::RateLimitExceeded]));
    let mut evs: Vec<Event> = (0..10).map(|_| call(DAY, "u-1")).collect();
    evs.push(call(DAY + 500, "u-1")); // over: the bucket is empty
    evs.push(call(DAY + 1000, "u-1")); // the token refilled at 1 s is whole
    let alerts = run(&mut e, &evs);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].evidence[0].line, 11);
}

#[test]
fn rate_limit_buckets_are_per_user_and_realert_after_10m() {
    let mut e = Engine::new(&seed_only(&[RuleName::RateLimitExceeded]));
    let mut evs: Vec<Event> = (0..12).map(|_| call(DAY, "u-1")).collect();
    evs.extend((0..10).map(|_| call(DAY, "u-2")));
    evs.extend((0..12).map(|_| call(DAY + 10 * MIN, "u-1")));
    let alerts = run(&mut e, &evs);
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    assert_eq!(alerts[1].suppressed, 1);
    assert_eq!(alerts[1].ts, "2026-11-23T00:10:00.000Z");
}

// ---- token_shared -------------------------------------------------------

#[test]
fn token_shared_two_agents_59m59_999s_apart_fire() {
    let mut e = Engine::new(&seed_only(&[RuleName::TokenShared]));
    let evs = [
        token_call(DAY, "tk-1", Some("ag-1"), "u-1"),
        token_call(DAY + H - 1, "tk-1", Some("ag-2"), "u-1"),
    ];
    let alerts = run(&mut e, &evs);
    assert_eq!(rules_of(&alerts), ["token_shared"]);
    let a = &alerts[0];
    assert_eq!(a.key.get("token_id").map(String::as_str), Some("tk-1"));
    assert_eq!(a.value, Some(Number::Int(2)));
    assert_eq!(a.threshold, Some(Number::Int(1)));
    assert_eq!(a.window.as_deref(), Some("3600s"));
    assert_eq!(a.severity, Severity::High);
    assert_eq!(
        a.message,
        "token tk-1 was used by 2 distinct agents in 3600s (threshold 1): ag-1, ag-2"
    );
}

#[test]
fn token_shared_two_agents_exactly_one_hour_apart_do_not_fire() {
    let mut e = Engine::new(&seed_only(&[RuleName::TokenShared]));
    let evs = [
        token_call(DAY, "tk-1", Some("ag-1"), "u-1"),
        token_call(DAY + H, "tk-1", Some("ag-2"), "u-1"),
    ];
    assert!(run(&mut e, &evs).is_empty());
}

#[test]
fn token_shared_many_users_behind_one_agent_never_fire() {
    let mut e = Engine::new(&seed_only(&[RuleName::TokenShared]));
    let evs: Vec<Event> = (0..200)
        .map(|i| token_call(DAY + i * S, "tk-1", Some("ag-1"), &format!("u-{i}")))
        .collect();
    assert!(run(&mut e, &evs).is_empty());
}

#[test]
fn token_shared_calls_without_token_or_agent_are_neither_counted_nor_judged() {
    let mut e = Engine::new(&seed_only(&[RuleName::TokenShared]));
    let no_token = Event {
        agent_id: Some("ag-2".into()),
        ..call(DAY + S, "u-1")
    };
    let evs = [
        token_call(DAY, "tk-1", Some("ag-1"), "u-1"),
        no_token,
        token_call(DAY + 2 * S, "tk-1", None, "u-1"),
    ];
    assert!(run(&mut e, &evs).is_empty());
}

#[test]
fn token_shared_by_user_id_counts_users() {
    let mut c = seed_only(&[RuleName::TokenShared]);
    c.rules.get_mut(RuleName::TokenShared).by = Field::UserId;
    let mut e = Engine::new(&c);
    let evs = [
        token_call(DAY, "tk-1", Some("ag-1"), "u-1"),
        token_call(DAY + S, "tk-1", Some("ag-1"), "u-2"),
    ];
    let alerts = run(&mut e, &evs);
    assert_eq!(rules_of(&alerts), ["token_shared"]);
    assert!(
        alerts[0].message.contains("2 distinct users"),
        "{}",
        alerts[0].message
    );
}

// ---- token rotation -------------------------------------------------------

#[test]
fn token_rotation_due_exactly_23_days_is_not_due_and_23_days_plus_1s_is() {
    let c = seed_only(&[RuleName::TokenRotationDue]);
    let mut e = Engine::new(&c);
    let evs = [
        token_call(DAY, "tk-1", Some("ag-1"), "u-1"),
        token_call(DAY + 23 * DAYS, "tk-1", Some("ag-1"), "u-1"),
    ];
    assert!(run(&mut e, &evs).is_empty());
    let alerts = run_from(
        &mut e,
        &[token_call(DAY + 23 * DAYS + S, "tk-1", Some("ag-1"), "u-1")],
        2,
    );
    assert_eq!(rules_of(&alerts), ["token_rotation_due"]);
    let a = &alerts[0];
    assert_eq!(a.value, Some(Number::Int(23)));
    assert_eq!(a.threshold, Some(Number::Int(23)));
    assert_eq!(a.window, None);
    assert_eq!(a.severity, Severity::Low);
    // Once per token.
    let later = [token_call(DAY + 29 * DAYS, "tk-1", Some("ag-1"), "u-1")];
    assert!(run_from(&mut e, &later, 3).is_empty());
}

#[test]
fn token_rotation_overdue_past_interval_days_and_realerts_after_24h() {
    let mut e = Engine::new(&seed_only(&[RuleName::TokenRotationOverdue]));
    let evs = [
        token_call(DAY, "tk-1", Some("ag-1"), "u-1"),
        token_call(DAY + 30 * DAYS, "tk-1", Some("ag-1"), "u-1"),
        token_call(DAY + 30 * DAYS + 1, "tk-1", Some("ag-1"), "u-1"),
        token_call(DAY + 31 * DAYS, "tk-1", Some("ag-1"), "u-1"),
        token_call(DAY + 31 * DAYS + 1, "tk-1", Some("ag-1"), "u-1"),
    ];
    let alerts = run(&mut e, &evs);
    let lines: Vec<u64> = alerts.iter().map(|a| a.evidence[0].line).collect();
    assert_eq!(lines, [3, 5]);
    assert_eq!(alerts[0].value, Some(Number::Int(30)));
    assert_eq!(alerts[0].threshold, Some(Number::Int(30)));
    assert_eq!(alerts[1].suppressed, 1);
    assert_eq!(alerts[1].severity, Severity::High);
}

#[test]
fn token_rules_ignore_calls_without_token_id() {
    let c = seed_only(&[
        RuleName::TokenRotationDue,
        RuleName::TokenRotationOverdue,
        RuleName::TokenShared,
    ]);
    let mut e = Engine::new(&c);
    let evs = [call(DAY, "u-1"), call(DAY + 40 * DAYS, "u-1")];
    assert!(run(&mut e, &evs).is_empty());
}

#[test]
fn token_first_sight_survives_a_restart() {
    let c = seed_only(&[RuleName::TokenRotationOverdue]);
    let mut e = Engine::new(&c);
    assert!(run(&mut e, &[token_call(DAY, "tk-1", None, "u-1")]).is_empty());
    let bytes = e.state().to_file().expect("serializes");
    let mut e2 = Engine::new(&c);
    e2.restore(EngineState::from_file(&bytes).expect("loads"));
    let later = [token_call(DAY + 31 * DAYS, "tk-1", None, "u-1")];
    assert_eq!(
        rules_of(&run_from(&mut e2, &later, 1)),
        ["token_rotation_overdue"]
    );
}

// ---- silences -------------------------------------------------------------

/// `n` calls to `server`, a minute apart, the last at `last`.
fn busy(server: &str, n: i64, last: Millis) -> Vec<Event> {
    (0..n)
        .map(|i| server_call(last - (n - 1 - i) * MIN, server))
        .collect()
}

#[test]
fn server_silence_a_gap_of_exactly_after_does_not_fire_and_after_plus_1ms_does() {
    let c = seed_only(&[RuleName::ServerSilence]);
    let last = DAY + 12 * H;
    let mut evs = busy("gmail", 30, last);
    evs.push(server_call(last + 10 * MIN, "drive"));
    let mut e = Engine::new(&c);
    assert!(run(&mut e, &evs).is_empty());
    let alerts = run_from(&mut e, &[server_call(last + 10 * MIN + 1, "drive")], 31);
    assert_eq!(rules_of(&alerts), ["server_silence"]);
    let a = &alerts[0];
    assert_eq!(a.ts, "2026-11-23T12:10:00.000Z");
    assert_eq!(a.key.get("server_name").map(String::as_str), Some("gmail"));
    assert_eq!(a.evidence[0].line, 30, "the firing line is the last call");
    assert_eq!(a.value, Some(Number::Int(30)));
    assert_eq!(a.threshold, Some(Number::Int(30)));
    assert_eq!(a.window.as_deref(), Some("600s"));
    assert_eq!(a.severity, Severity::Medium);
    assert_eq!(
        a.message,
        "server gmail went silent: no tool call in the 600s after its last at 2026-11-23T12:00:00.000Z (30 calls in the hour before it; min_events 30)"
    );
}

#[test]
fn server_silence_a_call_at_exactly_last_plus_after_rearms_without_an_alert() {
    let c = seed_only(&[RuleName::ServerSilence]);
    let last = DAY + 12 * H;
    let mut evs = busy("gmail", 30, last);
    evs.push(server_call(last + 10 * MIN, "gmail"));
    evs.push(server_call(last + 20 * MIN, "drive"));
    let mut e = Engine::new(&c);
    assert!(run(&mut e, &evs).is_empty());
    // Re-armed at the new last call: it fires once after it, once only.
    let later = [
        server_call(last + 20 * MIN + 1, "drive"),
        server_call(last + 60 * MIN, "drive"),
    ];
    let alerts = run_from(&mut e, &later, 32);
    assert_eq!(rules_of(&alerts), ["server_silence"]);
    assert_eq!(alerts[0].evidence[0].line, 31);
}

#[test]
fn server_silence_a_server_with_29_calls_in_its_last_hour_never_fires() {
    let c = seed_only(&[RuleName::ServerSilence]);
    let last = DAY + 12 * H;
    // 29 calls two minutes apart in (last − 1 h, last], and a 30th at
    // exactly last − 1 h, which the hour ending at the last call leaves out.
    let mut evs: Vec<Event> = (0..29)
        .map(|i| server_call(last - i * 2 * MIN, "gmail"))
        .rev()
        .collect();
    evs.insert(0, server_call(last - H, "gmail")); // exactly an hour before: outside
    evs.push(server_call(last + 5 * H, "drive"));
    let mut e = Engine::new(&c);
    assert!(run(&mut e, &evs).is_empty());
}

#[test]
fn audit_silence_needs_60_calls_over_all_servers() {
    let c = seed_only(&[RuleName::AuditSilence]);
    let last = DAY + 12 * H;
    let mut evs: Vec<Event> = (0..60)
        .map(|i| server_call(last - (59 - i) * 30 * S, if i % 2 == 0 { "a" } else { "b" }))
        .collect();
    evs.push(Event {
        kind: Some(Kind::Error),
        ..error(last + 10 * MIN + 1, "a")
    });
    let mut e = Engine::new(&c);
    let alerts = run(&mut e, &evs);
    assert_eq!(rules_of(&alerts), ["audit_silence"]);
    let a = &alerts[0];
    assert_eq!(
        a.key.iter().collect::<Vec<_>>(),
        [(&"log".to_string(), &"tool-usage.log".to_string())]
    );
    assert_eq!(a.value, Some(Number::Int(60)));
    assert_eq!(a.severity, Severity::High);
    let mut c59 = seed_only(&[RuleName::AuditSilence]);
    c59.rules.get_mut(RuleName::AuditSilence).min_events = 61;
    assert!(run(&mut Engine::new(&c59), &evs).is_empty());
}

#[test]
fn silence_live_watermark_is_no_later_than_this_hosts_clock() {
    let c = seed_only(&[RuleName::ServerSilence]);
    let last = DAY + 12 * H;
    let mut e = Engine::new(&c);
    e.set_wall_clock(last + 5 * MIN);
    let mut evs = busy("gmail", 30, last);
    // A line stamped an hour ahead does not end the silence window.
    evs.push(server_call(last + H, "drive"));
    assert!(run(&mut e, &evs).is_empty());
    e.set_wall_clock(last + 10 * MIN + 1);
    let mut out = Vec::new();
    e.tick(&mut out);
    assert_eq!(rules_of(&out), ["server_silence"]);
}

#[test]
fn audit_silence_fires_by_the_wall_clock_after_the_last_call_was_read_with_the_scan_id() {
    let c = seed_only(&[RuleName::AuditSilence]);
    let last = DAY + 12 * H;
    let evs = busy("gmail", 60, last);
    let read = last + 3 * S; // read 3 s after it was stamped
    let mut e = Engine::new(&c);
    e.set_wall_clock(read);
    assert!(run(&mut e, &evs).is_empty());
    let mut out = Vec::new();
    e.set_wall_clock(read + 10 * MIN);
    e.tick(&mut out);
    assert!(out.is_empty(), "exactly `after` since the read: not yet");
    e.set_wall_clock(read + 10 * MIN + 1);
    e.tick(&mut out);
    assert_eq!(rules_of(&out), ["audit_silence"]);
    // The alert scan finds once a later line passes the silence: one id.
    let mut scan = Engine::new(&c);
    let mut later = evs.clone();
    later.push(server_call(last + H, "gmail"));
    let found = run(&mut scan, &later);
    assert_eq!(rules_of(&found), ["audit_silence"]);
    assert_eq!(found[0].id, out[0].id);
    assert_eq!(found[0].ts, out[0].ts);
    // Once per silence: the later line raises nothing more live.
    assert!(run_from(&mut e, &later[60..], 60).is_empty());
}

// ---- bad input ------------------------------------------------------------

#[test]
fn token_rules_keep_a_million_distinct_tokens_within_max_keys_and_count_evictions() {
    let mut c = seed_only(&[
        RuleName::TokenShared,
        RuleName::TokenRotationDue,
        RuleName::TokenRotationOverdue,
    ]);
    for r in [
        RuleName::TokenShared,
        RuleName::TokenRotationDue,
        RuleName::TokenRotationOverdue,
    ] {
        c.rules.get_mut(r).max_keys = 1000;
    }
    let mut e = Engine::new(&c);
    let file: Arc<str> = Arc::from("tool-usage.log");
    let mut out = Vec::new();
    let mut ev = token_call(DAY, "", Some("ag-1"), "u-1");
    for i in 0..1_000_000u64 {
        ev.token_id = Some(format!("tk-{i}").into());
        ev.ts = DAY + i as Millis;
        let line = LineRef {
            file: &file,
            line: i + 1,
            raw: b"x",
        };
        e.process(&ev, line, &mut out);
    }
    assert!(out.is_empty());
    let ev_of = |r: &str| e.stats().evictions.get(r).copied().unwrap_or(0);
    assert_eq!(ev_of("token_rotation_due"), 999_000);
    assert_eq!(ev_of("token_rotation_overdue"), 999_000);
    assert_eq!(ev_of("token_shared"), 999_000);
    // A token evicted is seen anew: its age starts again (a lower bound).
    let old = [token_call(DAY + 40 * DAYS, "tk-0", Some("ag-1"), "u-1")];
    assert!(run(&mut e, &old).is_empty());
}

#[test]
fn a_token_id_of_1_mib_is_judged_like_any_other() {
    let big = "t".repeat(1 << 20);
    let mut e = Engine::new(&seed_only(&[RuleName::TokenShared]));
    let evs = [
        token_call(DAY, &big, Some("ag-1"), "u-1"),
        token_call(DAY + S, "tk-small", Some("ag-1"), "u-1"),
        token_call(DAY + 2 * S, &big, Some("ag-2"), "u-1"),
    ];
    let alerts = run(&mut e, &evs);
    assert_eq!(rules_of(&alerts), ["token_shared"]);
    assert_eq!(alerts[0].key["token_id"].len(), 1 << 20);
}
