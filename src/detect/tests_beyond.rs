//! Boundary tests of SPEC §3 "Rules beyond fixed thresholds":
//! `exfil_sequence`, `tool_definition_drift`, `usage_baseline_spike`, one
//! per sentence of the spec they check, and the baseline held to a plain
//! reference implementation of its formula.

use super::tests::{DAY, H, MIN, S, call, config_with_policy, rules_of, run};
use super::*;
use crate::alert::Number;
use crate::event::Outcome;

/// Only `rule` on (no policy unless the test loads one).
fn only(rule: RuleName) -> Config {
    let mut c = Config::defaults();
    for r in RuleName::ALL {
        c.rules.get_mut(r).enabled = r == rule;
    }
    c
}

/// A call of `tool` on `server` in conversation `conv` by user u-1.
fn at(ts: Millis, server: &str, tool: &str, conv: Option<&str>) -> Event {
    Event {
        server_name: Some(server.into()),
        tool_name: Some(tool.into()),
        conversation_id: conv.map(Into::into),
        request_id: Some(format!("r-{ts}").as_str().into()),
        ..call(ts, "u-1")
    }
}

fn with_outcome(mut ev: Event, o: Option<Outcome>) -> Event {
    ev.outcome = o;
    ev
}

const T0: Millis = DAY + 12 * H;

// --- exfil_sequence ---------------------------------------------------

fn exfil() -> Engine {
    Engine::new(&only(RuleName::ExfilSequence))
}

#[test]
fn exfil_fires_on_a_sink_9m59_999s_after_a_source_on_another_server() {
    let evs = [
        at(T0, "crm", "contact_search", Some("c-1")),
        at(T0 + 10 * MIN - 1, "gmail", "email_send", Some("c-1")),
    ];
    let alerts = run(&mut exfil(), &evs);
    assert_eq!(rules_of(&alerts), ["exfil_sequence"]);
    let a = &alerts[0];
    assert_eq!(a.severity, crate::event::Severity::High);
    assert_eq!(a.ts, "2026-11-23T12:09:59.999Z");
    assert_eq!(a.key.len(), 1);
    assert_eq!(a.key["conversation_id"], "c-1");
    assert_eq!(a.window.as_deref(), Some("600s"));
    assert_eq!(a.value, None);
    assert_eq!(
        a.message,
        "conversation c-1: email_send on server gmail sent data 599.999s after contact_search on server crm read it (user u-1)"
    );
    // The sink call, then the source call.
    let lines: Vec<(u64, Option<&str>)> = (a.evidence.iter())
        .map(|e| (e.line, e.request_id.as_deref()))
        .collect();
    assert_eq!(
        lines,
        [(2, Some("r-1795435799999")), (1, Some("r-1795435200000"))]
    );
}

#[test]
fn exfil_window_is_open_at_exactly_10m_after_the_source() {
    let evs = [
        at(T0, "crm", "contact_search", Some("c-1")),
        at(T0 + 10 * MIN, "gmail", "email_send", Some("c-1")),
    ];
    assert!(run(&mut exfil(), &evs).is_empty());
}

#[test]
fn exfil_a_source_on_the_same_server_does_not_count() {
    let evs = [
        at(T0, "gmail", "email_read", Some("c-1")),
        at(T0 + MIN, "gmail", "email_send", Some("c-1")),
    ];
    assert!(run(&mut exfil(), &evs).is_empty());
}

#[test]
fn exfil_a_failed_or_denied_source_does_not_count_and_a_missing_outcome_does() {
    for (o, fires) in [
        (Some(Outcome::Error), false),
        (Some(Outcome::Denied), false),
        (None, true),
        (Some(Outcome::Success), true),
    ] {
        let evs = [
            with_outcome(at(T0, "drive", "file_read", Some("c-1")), o),
            at(T0 + MIN, "gmail", "email_send", Some("c-1")),
        ];
        assert_eq!(!run(&mut exfil(), &evs).is_empty(), fires, "{o:?}");
    }
}

#[test]
fn exfil_a_denied_sink_does_not_fire_and_the_next_successful_one_does() {
    let evs = [
        at(T0, "drive", "file_read", Some("c-1")),
        with_outcome(
            at(T0 + MIN, "gmail", "email_send", Some("c-1")),
            Some(Outcome::Denied),
        ),
        with_outcome(
            at(T0 + 2 * MIN, "gmail", "email_send", Some("c-1")),
            Some(Outcome::Error),
        ),
        at(T0 + 3 * MIN, "gmail", "email_send", Some("c-1")),
    ];
    let alerts = run(&mut exfil(), &evs);
    assert_eq!(rules_of(&alerts), ["exfil_sequence"]);
    assert_eq!(alerts[0].evidence[0].line, 4);
}

#[test]
fn exfil_keys_by_conversation_else_user_and_does_not_judge_calls_with_neither() {
    // Another conversation's source does not count.
    let evs = [
        at(T0, "drive", "file_read", Some("c-1")),
        at(T0 + MIN, "gmail", "email_send", Some("c-2")),
    ];
    assert!(run(&mut exfil(), &evs).is_empty());
    // Without a conversation: by user.
    let evs = [
        at(T0, "drive", "file_read", None),
        at(T0 + MIN, "gmail", "email_send", None),
    ];
    let alerts = run(&mut exfil(), &evs);
    assert_eq!(rules_of(&alerts), ["exfil_sequence"]);
    assert_eq!(alerts[0].key.len(), 1);
    assert_eq!(alerts[0].key["user_id"], "u-1");
    assert!(alerts[0].message.starts_with("user u-1: email_send"));
    // A conversation id equal to a user id is still another key.
    let mut source = at(T0, "drive", "file_read", None);
    source.user_id = Some("x".into());
    let evs = [source, at(T0 + MIN, "gmail", "email_send", Some("x"))];
    assert!(run(&mut exfil(), &evs).is_empty());
    // Neither field: not judged.
    let strip = |mut ev: Event| {
        ev.user_id = None;
        ev
    };
    let evs = [
        strip(at(T0, "drive", "file_read", None)),
        strip(at(T0 + MIN, "gmail", "email_send", None)),
    ];
    assert!(run(&mut exfil(), &evs).is_empty());
}

#[test]
fn exfil_evidence_names_the_most_recent_source_on_another_server() {
    let evs = [
        at(T0, "drive", "file_read", Some("c-1")),
        at(T0 + MIN, "crm", "contact_search", Some("c-1")),
        at(T0 + 2 * MIN, "gmail", "email_read", Some("c-1")),
        at(T0 + 3 * MIN, "gmail", "email_send", Some("c-1")),
    ];
    let alerts = run(&mut exfil(), &evs);
    assert_eq!(rules_of(&alerts), ["exfil_sequence"]);
    let lines: Vec<u64> = alerts[0].evidence.iter().map(|e| e.line).collect();
    assert_eq!(lines, [4, 2], "crm's, not gmail's own read");
}

#[test]
fn exfil_realert_is_one_hour_per_key() {
    let evs = [
        at(T0, "drive", "file_read", Some("c-1")),
        at(T0 + MIN, "gmail", "email_send", Some("c-1")),
        at(T0 + 2 * MIN, "gmail", "email_send", Some("c-1")),
        at(T0 + 60 * MIN, "drive", "file_read", Some("c-1")),
        at(T0 + 61 * MIN, "gmail", "email_send", Some("c-1")),
    ];
    let alerts = run(&mut exfil(), &evs);
    assert_eq!(rules_of(&alerts), ["exfil_sequence", "exfil_sequence"]);
    assert_eq!(alerts[1].suppressed, 1);
    assert_eq!(alerts[1].evidence[0].line, 5);
}

#[test]
fn exfil_a_call_is_judged_as_a_sink_before_it_is_remembered_as_a_source() {
    let mut c = only(RuleName::ExfilSequence);
    let r = c.rules.get_mut(RuleName::ExfilSequence);
    r.sources = vec!["*_share".into()];
    r.sinks = vec!["*_share".into()];
    let mut e = Engine::new(&c);
    let evs = [
        at(T0, "drive", "file_share", Some("c-1")),
        at(T0 + MIN, "slack", "message_share", Some("c-1")),
    ];
    let alerts = run(&mut e, &evs);
    // The first call is a sink with no source before it; then a source.
    assert_eq!(rules_of(&alerts), ["exfil_sequence"]);
    assert_eq!(alerts[0].evidence[0].line, 2);
    assert_eq!(alerts[0].evidence[1].line, 1);
}

#[test]
fn exfil_class_entries_match_every_tool_of_that_policy_class() {
    let mut c = config_with_policy(
        r#"{"approvalMode":"fine_grained","rules":{
            "autoApproved":{"patterns":["*_read"]},
            "requiresApproval":{"tools":["ticket_update"]}}}"#,
    );
    for r in RuleName::ALL {
        c.rules.get_mut(r).enabled = r == RuleName::ExfilSequence;
    }
    c.rules.get_mut(RuleName::ExfilSequence).sinks = vec!["class:requires_approval".into()];
    let evs = [
        at(T0, "drive", "file_read", Some("c-1")),
        at(T0 + MIN, "jira", "ticket_update", Some("c-1")),
    ];
    let alerts = run(&mut Engine::new(&c), &evs);
    assert_eq!(rules_of(&alerts), ["exfil_sequence"]);
    // Without a policy, a class names no tool.
    let mut c = only(RuleName::ExfilSequence);
    c.rules.get_mut(RuleName::ExfilSequence).sinks = vec!["class:requires_approval".into()];
    assert!(run(&mut Engine::new(&c), &evs).is_empty());
}

// --- tool_definition_drift ------------------------------------------

fn hashed(ts: Millis, tool: &str, hash: Option<&str>) -> Event {
    Event {
        tool_hash: hash.map(Into::into),
        ..at(ts, "crm", tool, None)
    }
}

fn drift() -> Engine {
    Engine::new(&only(RuleName::ToolDefinitionDrift))
}

#[test]
fn drift_the_first_hash_is_learned_silently_and_calls_without_one_are_not_judged() {
    let evs = [
        hashed(T0, "contact_search", None),
        hashed(T0 + S, "contact_search", Some("h-a")),
        hashed(T0 + 2 * S, "contact_search", None),
        hashed(T0 + 3 * S, "contact_search", Some("h-a")),
        hashed(T0 + 4 * S, "contact_update", Some("h-b")),
    ];
    assert!(run(&mut drift(), &evs).is_empty());
}

#[test]
fn drift_each_new_hash_alerts_once_and_a_hash_seen_before_never_again() {
    let evs = [
        hashed(T0, "contact_search", Some("h-a")),
        hashed(T0 + S, "contact_search", Some("h-b")),
        hashed(T0 + 2 * S, "contact_search", Some("h-b")),
        hashed(T0 + 3 * S, "contact_search", Some("h-a")),
        hashed(T0 + 4 * S, "contact_search", Some("h-b")),
        hashed(T0 + 5 * S, "contact_search", Some("h-c")),
    ];
    let alerts = run(&mut drift(), &evs);
    assert_eq!(
        rules_of(&alerts),
        ["tool_definition_drift", "tool_definition_drift"]
    );
    let a = &alerts[0];
    assert_eq!(a.severity, crate::event::Severity::Critical);
    assert_eq!(a.evidence[0].line, 2);
    assert_eq!(a.key["server_name"], "crm");
    assert_eq!(a.key["tool_name"], "contact_search");
    assert_eq!(
        a.message,
        "server crm, tool contact_search changed its definition: hash h-b replaces h-a (the hash of its previous call, first seen 2026-11-23T12:00:00.000Z)"
    );
    // The previous call's hash, whichever came first.
    assert_eq!(alerts[1].evidence[0].line, 6);
    assert!(alerts[1].message.contains("hash h-c replaces h-b"));
    assert_eq!(alerts[1].suppressed, 0);
}

#[test]
fn drift_of_an_auto_approved_tool_says_it_is_the_dangerous_case() {
    let mut c = config_with_policy(
        r#"{"approvalMode":"fine_grained","rules":{
            "autoApproved":{"patterns":["*_search"]},
            "requiresApproval":{"patterns":["*_update"]}}}"#,
    );
    for r in RuleName::ALL {
        c.rules.get_mut(r).enabled = r == RuleName::ToolDefinitionDrift;
    }
    let evs = [
        hashed(T0, "contact_search", Some("h-a")),
        hashed(T0 + S, "contact_search", Some("h-b")),
        hashed(T0, "contact_update", Some("h-a")),
        hashed(T0 + S, "contact_update", Some("h-b")),
    ];
    let alerts = run(&mut Engine::new(&c), &evs);
    assert_eq!(alerts.len(), 2);
    assert!(
        alerts[0].message.ends_with(
            "; the policy auto-approves this tool, so its new definition runs without anyone approving it: review it before it is called again"
        ),
        "{}",
        alerts[0].message
    );
    assert!(
        alerts[1]
            .message
            .ends_with("; the policy requires approval for its calls")
    );
}

#[test]
fn drift_keeps_max_hashes_per_pair_evicting_the_one_seen_longest_ago() {
    let mut c = only(RuleName::ToolDefinitionDrift);
    c.rules.get_mut(RuleName::ToolDefinitionDrift).max_hashes = 2;
    let mut e = Engine::new(&c);
    let evs = [
        hashed(T0, "t", Some("a")),
        hashed(T0 + S, "t", Some("b")),
        hashed(T0 + 2 * S, "t", Some("a")),
        // Full: b (seen longest ago) goes.
        hashed(T0 + 3 * S, "t", Some("c")),
        hashed(T0 + 4 * S, "t", Some("a")),
        hashed(T0 + 5 * S, "t", Some("b")),
    ];
    let alerts = run(&mut e, &evs);
    let lines: Vec<u64> = alerts.iter().map(|a| a.evidence[0].line).collect();
    assert_eq!(lines, [2, 4, 6]);
    assert_eq!(e.stats().evictions.get("tool_definition_drift"), Some(&2));
}

#[test]
fn drift_hashes_survive_a_checkpoint() {
    let mut e = drift();
    run(&mut e, &[hashed(T0, "t", Some("a"))]);
    let saved = e.state().to_file().expect("serializes");
    let mut e = drift();
    e.restore(EngineState::from_file(&saved).expect("loads"));
    let alerts = run(
        &mut e,
        &[
            hashed(T0 + S, "t", Some("a")),
            hashed(T0 + S, "t", Some("b")),
        ],
    );
    assert_eq!(rules_of(&alerts), ["tool_definition_drift"]);
}

// --- usage_baseline_spike -------------------------------------------

fn baseline() -> Engine {
    Engine::new(&only(RuleName::UsageBaselineSpike))
}

/// `n` calls by `user` spread over hour `h` (from the epoch).
fn hour_calls(user: &str, h: i64, n: i64) -> Vec<Event> {
    (0..n)
        .map(|i| call(h * H + i * (H / n.max(1)), user))
        .collect()
}

#[test]
fn baseline_fewer_than_24_past_hours_never_fires() {
    let h0 = DAY / H;
    let mut evs = Vec::new();
    for h in 0..23 {
        evs.extend(hour_calls("u-1", h0 + h, 1));
    }
    // Hour 23 is the 24th hour: 23 folded so far.
    evs.extend(hour_calls("u-1", h0 + 23, 500));
    assert!(run(&mut baseline(), &evs).is_empty());
    // With one more past hour it fires, at the 30th call (min_calls).
    let mut evs = Vec::new();
    for h in 0..24 {
        evs.extend(hour_calls("u-1", h0 + h, 1));
    }
    evs.extend(hour_calls("u-1", h0 + 24, 40));
    let alerts = run(&mut baseline(), &evs);
    assert_eq!(rules_of(&alerts), ["usage_baseline_spike"]);
    assert_eq!(alerts[0].value, Some(Number::Int(30)));
}

#[test]
fn baseline_alert_carries_the_count_the_threshold_and_the_hour() {
    let h0 = DAY / H;
    let mut evs = Vec::new();
    for h in 0..24 {
        evs.extend(hour_calls("u-42", h0 + h, 2));
    }
    evs.extend(hour_calls("u-42", h0 + 24, 31));
    let alerts = run(&mut baseline(), &evs);
    assert_eq!(rules_of(&alerts), ["usage_baseline_spike"]);
    let a = &alerts[0];
    // The mean of 24 hours of 2 calls, folded from 0 with α = 0.1.
    let mut b = crate::detect::rules::Baseline::default();
    for ev in &evs[..48] {
        b.call(ev.ts, 0.1);
    }
    for ev in &evs[48..48 + 30] {
        b.call(ev.ts, 0.1);
    }
    let threshold = b.m + 4.0 * b.v.sqrt();
    assert_eq!(a.value, Some(Number::Int(30)));
    assert_eq!(a.threshold, Some(Number::Float(threshold)));
    assert_eq!(a.window.as_deref(), Some("3600s"));
    assert_eq!(a.ts, crate::alert::format_ts(evs[48 + 29].ts));
    assert_eq!(a.key["user_id"], "u-42");
    assert_eq!(
        a.message,
        format!(
            "user u-42 made 30 tool calls in the hour from 2026-11-24T00:00:00.000Z, above their own baseline of {:.2} ± {:.2} calls an hour over 24 hours (threshold {threshold:.2} = mean + 4 × sd)",
            b.m,
            b.v.sqrt()
        )
    );
    assert_eq!(format!("{:.2}", b.m), "1.84");
    assert_eq!(a.severity, crate::event::Severity::Medium);
}

#[test]
fn baseline_state_is_not_dropped_for_idleness_and_folds_at_most_168_empty_hours() {
    let mut b = crate::detect::rules::Baseline::default();
    b.call(0, 0.1);
    b.call(1000 * H, 0.1);
    assert_eq!((b.n, b.c), (169, 1), "the finished hour and 168 empty ones");
    // A year later the user is still known (state kept, n grows on).
    let h0 = DAY / H;
    let mut evs = hour_calls("u-1", h0, 1);
    evs.extend(hour_calls("u-1", h0 + 24 * 365, 31));
    let alerts = run(&mut baseline(), &evs);
    assert_eq!(rules_of(&alerts), ["usage_baseline_spike"]);
}

/// SPEC §3's baseline, written as plainly as possible: every past hour's
/// count in a list, the mean and variance folded from scratch at every
/// call, and the cooldown.
fn reference(
    calls: &[Millis],
    alpha: f64,
    z: f64,
    min_calls: u64,
    min_history: u64,
) -> Vec<(usize, u64, f64)> {
    let mut hours: Vec<f64> = Vec::new();
    let mut current: Option<i64> = None;
    let mut c: u64 = 0;
    let mut last_alert: Option<Millis> = None;
    let mut out = Vec::new();
    for (i, &ts) in calls.iter().enumerate() {
        let h = ts.div_euclid(3_600_000);
        if let Some(cur) = current {
            if h > cur {
                hours.push(c as f64);
                let empty = (h - cur - 1).min(168) as usize;
                hours.extend(std::iter::repeat_n(0.0, empty));
                c = 0;
                current = Some(h);
            }
        } else {
            current = Some(h);
        }
        c += 1;
        let (mut m, mut v) = (0.0f64, 0.0f64);
        for &x in &hours {
            let d = x - m;
            m += alpha * d;
            v = (1.0 - alpha) * (v + (alpha * d) * d);
        }
        let n = hours.len() as u64;
        let threshold = m + z * v.sqrt();
        let hit = n >= min_history && c >= min_calls && (c as f64) > threshold;
        if hit && last_alert.is_none_or(|l| ts >= l + 3_600_000) {
            last_alert = Some(ts);
            out.push((i, c, threshold));
        }
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The rule fires at exactly the calls where the reference's
    /// c > m + z·√v first holds (and again once realert has passed), with
    /// the same count and the same threshold, bit for bit.
    #[test]
    fn baseline_fires_exactly_where_the_reference_formula_says(
        hours in proptest::collection::vec((0i64..4, 0i64..60), 20..60),
        min_calls in 1u64..40,
        min_history in 0u64..30,
        z in 0.0f64..6.0,
        alpha in 0.01f64..1.0,
    ) {
        let mut calls = Vec::new();
        let mut h = DAY / H;
        for (gap, n) in hours {
            h += gap;
            for i in 0..n {
                calls.push(h * H + i * (H / n));
            }
        }
        let mut c = only(RuleName::UsageBaselineSpike);
        let r = c.rules.get_mut(RuleName::UsageBaselineSpike);
        (r.alpha, r.z, r.min_calls, r.min_history) = (alpha, z, min_calls, min_history);
        let evs: Vec<Event> = calls.iter().map(|&t| call(t, "u-1")).collect();
        let got: Vec<(usize, Option<Number>, Option<Number>)> = run(&mut Engine::new(&c), &evs)
            .into_iter()
            .map(|a| ((a.evidence[0].line - 1) as usize, a.value, a.threshold))
            .collect();
        let want: Vec<(usize, Option<Number>, Option<Number>)> =
            reference(&calls, alpha, z, min_calls, min_history)
                .into_iter()
                .map(|(i, c, t)| (i, Some(Number::Int(c)), Some(Number::Float(t))))
                .collect();
        proptest::prop_assert_eq!(got, want);
    }
}
