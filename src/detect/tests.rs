//! Boundary tests of SPEC §3, one per sentence of the spec they check.

use std::sync::Arc;

use super::*;
use crate::alert::Number;
use crate::event::{ApprovalMode, Decision, Kind, Outcome, Severity};

pub(super) const S: Millis = 1000;
pub(super) const MIN: Millis = 60 * S;
pub(super) const H: Millis = 60 * MIN;
/// 2026-11-23T00:00:00Z.
pub(super) const DAY: Millis = 1_795_392_000_000;

/// Defaults without `new_tool_usage`, which would fire on every first call
/// and clutter the tests of other rules.
pub(super) fn config() -> Config {
    let mut c = Config::defaults();
    c.rules.get_mut(RuleName::NewToolUsage).enabled = false;
    c
}

pub(super) fn config_with_policy(json: &str) -> Config {
    let mut c = Config::defaults();
    let (policy, _) =
        crate::config::policy_from_json(json, "security-config.json").expect("valid policy");
    c.policy = Some(Arc::new(policy));
    c
}

pub(super) fn call(ts: Millis, user: &str) -> Event {
    Event {
        kind: Some(Kind::ToolCall),
        ts,
        user_id: Some(user.into()),
        server_name: Some("gmail".into()),
        tool_name: Some("email_read".into()),
        outcome: Some(Outcome::Success),
        ..Event::default()
    }
}

pub(super) fn decision(ts: Millis, user: &str, d: Decision) -> Event {
    Event {
        kind: Some(Kind::Approval),
        ts,
        user_id: Some(user.into()),
        decision: Some(d),
        approval_mode: Some(ApprovalMode::AlwaysAsk),
        ..Event::default()
    }
}

fn error(ts: Millis, server: &str) -> Event {
    Event {
        kind: Some(Kind::Error),
        ts,
        server_name: Some(server.into()),
        error_type: Some("upstream_timeout".into()),
        ..Event::default()
    }
}

/// Runs events (already in processing order) and returns the alerts.
pub(super) fn run(engine: &mut Engine, events: &[Event]) -> Vec<Alert> {
    run_from(engine, events, 0)
}

/// [`run`] for events that follow `first` others: the first is line
/// `first + 1`.
pub(super) fn run_from(engine: &mut Engine, events: &[Event], first: usize) -> Vec<Alert> {
    let file: Arc<str> = Arc::from("test.log");
    let mut out = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        let raw = format!("line {} {}", first + i, ev.ts);
        let line = LineRef {
            file: &file,
            line: (first + i) as u64 + 1,
            raw: raw.as_bytes(),
        };
        engine.process(ev, line, &mut out);
    }
    out
}

pub(super) fn rules_of(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.rule.as_str()).collect()
}

#[test]
fn rapid_usage_ten_calls_within_60s_do_not_fire() {
    let mut e = Engine::new(&config());
    let evs: Vec<Event> = (0..10).map(|i| call(DAY + 12 * H + i * S, "u-1")).collect();
    assert!(run(&mut e, &evs).is_empty());
}

#[test]
fn rapid_usage_fires_on_eleventh_call_within_60s() {
    let mut e = Engine::new(&config());
    let evs: Vec<Event> = (0..11)
        .map(|i| call(DAY + 12 * H + i * S, "u-42"))
        .collect();
    let alerts = run(&mut e, &evs);
    assert_eq!(rules_of(&alerts), ["rapid_tool_usage"]);
    let a = &alerts[0];
    assert_eq!(a.value, Some(Number::Int(11)));
    assert_eq!(a.threshold, Some(Number::Int(10)));
    assert_eq!(a.window.as_deref(), Some("60s"));
    assert_eq!(a.ts, "2026-11-23T12:00:10.000Z");
    assert_eq!(a.key.get("user_id").map(String::as_str), Some("u-42"));
    assert_eq!(a.evidence[0].line, 11);
    assert_eq!(
        a.message,
        "user u-42 made 11 tool calls in 60s (threshold 10)"
    );
}

#[test]
fn rapid_usage_window_is_open_at_t_minus_60s() {
    let mut e = Engine::new(&config());
    let t0 = DAY + 12 * H;
    // One call at t0, ten at t0 + 60 s: the first is outside (t − 60 s, t].
    let mut evs = vec![call(t0, "u-1")];
    evs.extend((0..10).map(|_| call(t0 + MIN, "u-1")));
    assert!(run(&mut e, &evs).is_empty());
    // One more at t0 + 60 s: eleven inside the window.
    let alerts = run(&mut e, &[call(t0 + MIN, "u-1")]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].value, Some(Number::Int(11)));
}

#[test]
fn realert_suppresses_and_the_next_alert_reports_the_count() {
    let mut e = Engine::new(&config());
    let t0 = DAY + 12 * H;
    // 11 calls fire; 4 more within the window are suppressed.
    let evs: Vec<Event> = (0..15).map(|i| call(t0 + i * S, "u-1")).collect();
    assert_eq!(run(&mut e, &evs).len(), 1);
    assert_eq!(e.stats().suppressed.get("rapid_tool_usage"), Some(&4));
    // 11 more calls at exactly T + 10 min (T = ts of the 11th call).
    let t_alert = t0 + 10 * S;
    let evs: Vec<Event> = (0..11).map(|_| call(t_alert + 10 * MIN, "u-1")).collect();
    let alerts = run(&mut e, &evs);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].suppressed, 4);
}

#[test]
fn realert_cooldown_holds_until_exactly_t_plus_realert() {
    let mut e = Engine::new(&config());
    let t0 = DAY + 12 * H;
    let evs: Vec<Event> = (0..11).map(|_| call(t0, "u-1")).collect();
    assert_eq!(run(&mut e, &evs).len(), 1);
    // 11 calls 1 ms before the cooldown ends: suppressed.
    let evs: Vec<Event> = (0..11).map(|_| call(t0 + 10 * MIN - 1, "u-1")).collect();
    assert!(run(&mut e, &evs).is_empty());
}

#[test]
fn unusual_hours_fires_at_0559_local_and_not_at_0600_across_dst_in_new_york() {
    let mut c = config();
    c.rules.get_mut(RuleName::UnusualHours).timezone = chrono_tz::America::New_York;
    // 2026-03-08: DST starts at 02:00 EST. 05:59 EDT = 09:59Z, 06:00 EDT = 10:00Z.
    // 2026-03-07 (EST): 05:59 = 10:59Z, 06:00 = 11:00Z.
    // 2026-11-01: DST ends at 02:00 EDT. 05:59 EST = 10:59Z, 06:00 EST = 11:00Z.
    let cases = [
        ("2026-03-07T10:59:00Z", true),
        ("2026-03-07T11:00:00Z", false),
        ("2026-03-08T09:59:00Z", true),
        ("2026-03-08T10:00:00Z", false),
        ("2026-11-01T10:59:00Z", true),
        ("2026-11-01T11:00:00Z", false),
    ];
    for (ts, fires) in cases {
        let mut e = Engine::new(&c);
        let t = chrono::DateTime::parse_from_rfc3339(ts)
            .unwrap()
            .timestamp_millis();
        let alerts = run(&mut e, &[call(t, "u-1")]);
        let hit: Vec<_> = alerts
            .iter()
            .filter(|a| a.rule == "unusual_hours")
            .collect();
        assert_eq!(!hit.is_empty(), fires, "{ts}");
        if fires {
            assert_eq!(hit[0].value, Some(Number::Int(5)), "{ts}");
        }
    }
}

#[test]
fn unusual_hours_realert_is_one_hour() {
    let mut e = Engine::new(&config());
    let t = DAY + 3 * H;
    let alerts = run(
        &mut e,
        &[
            call(t, "u-1"),
            call(t + 59 * MIN, "u-1"),
            call(t + H, "u-1"),
        ],
    );
    let hours: Vec<_> = alerts
        .iter()
        .filter(|a| a.rule == "unusual_hours")
        .collect();
    assert_eq!(hours.len(), 2);
    assert_eq!(hours[1].suppressed, 1);
}

#[test]
fn high_denial_rate_of_exactly_half_does_not_fire() {
    let mut e = Engine::new(&config());
    let t = DAY + 12 * H;
    let evs: Vec<Event> = (0..6)
        .map(|i| {
            // approve first: every prefix stays at or below one half.
            let d = if i % 2 == 0 {
                Decision::Approve
            } else {
                Decision::Deny
            };
            decision(t + i * MIN, "u-1", d)
        })
        .collect();
    assert!(run(&mut e, &evs).is_empty());
}

#[test]
fn high_denial_rate_needs_five_decisions() {
    let mut e = Engine::new(&config());
    let t = DAY + 12 * H;
    let evs: Vec<Event> = (0..4)
        .map(|i| decision(t + i * MIN, "u-1", Decision::Deny))
        .collect();
    assert!(run(&mut e, &evs).is_empty());
    let alerts = run(&mut e, &[decision(t + 5 * MIN, "u-1", Decision::Approve)]);
    assert_eq!(rules_of(&alerts), ["high_denial_rate"]);
    assert_eq!(alerts[0].value, Some(Number::Float(0.8)));
    assert_eq!(alerts[0].threshold, Some(Number::Float(0.5)));
    assert_eq!(alerts[0].window.as_deref(), Some("3600s"));
}

#[test]
fn high_denial_rate_counts_timeouts_as_denials_only_when_fallback_is_deny() {
    let evs: Vec<Event> = (0..5)
        .map(|i| {
            let d = if i < 3 {
                Decision::Timeout
            } else {
                Decision::Approve
            };
            decision(DAY + 12 * H + i * MIN, "u-1", d)
        })
        .collect();
    let mut c = config();
    c.security.timeout_is_denial = true;
    assert_eq!(run(&mut Engine::new(&c), &evs).len(), 1);
    c.security.timeout_is_denial = false;
    assert!(run(&mut Engine::new(&c), &evs).is_empty());
}

#[test]
fn high_denial_rate_window_drops_decisions_older_than_one_hour() {
    let mut e = Engine::new(&config());
    let t = DAY + 12 * H;
    let mut evs: Vec<Event> = (0..3)
        .map(|i| decision(t + i * S, "u-1", Decision::Deny))
        .collect();
    // One hour after the first deny it is out of (t − 1 h, t].
    evs.push(decision(t + H, "u-1", Decision::Deny));
    evs.push(decision(t + H + S, "u-1", Decision::Approve));
    assert!(run(&mut e, &evs).is_empty());
}

#[test]
fn new_tool_fires_once_and_not_again_after_the_seen_set_is_reloaded() {
    let mut e = Engine::new(&Config::defaults());
    let t = DAY + 12 * H;
    let alerts = run(&mut e, &[call(t, "u-1"), call(t + S, "u-2")]);
    assert_eq!(rules_of(&alerts), ["new_tool_usage"]);
    assert_eq!(
        alerts[0].key.get("tool_name").map(String::as_str),
        Some("email_read")
    );
    let saved = serde_json::to_string(e.state()).unwrap();
    let mut e2 = Engine::new(&Config::defaults());
    e2.restore(serde_json::from_str(&saved).unwrap());
    assert!(run(&mut e2, &[call(t + H, "u-3")]).is_empty());
}

#[test]
fn new_tool_learning_period_learns_silently() {
    let mut c = Config::defaults();
    c.rules.get_mut(RuleName::NewToolUsage).learning_period = H;
    let mut e = Engine::new(&c);
    let t = DAY + 12 * H;
    let mut late = call(t + H, "u-1");
    late.tool_name = Some("calendar_read".into());
    let alerts = run(&mut e, &[call(t, "u-1"), call(t + H - 1, "u-1"), late]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].key.get("tool_name").map(String::as_str),
        Some("calendar_read")
    );
}

#[test]
fn error_spike_five_errors_do_not_fire_and_six_do() {
    let mut e = Engine::new(&config());
    let t = DAY + 12 * H;
    let evs: Vec<Event> = (0..5).map(|i| error(t + i * 50 * S, "gmail")).collect();
    assert!(run(&mut e, &evs).is_empty());
    let alerts = run(&mut e, &[error(t + 4 * MIN + 59 * S, "gmail")]);
    assert_eq!(rules_of(&alerts), ["error_spike"]);
    assert_eq!(alerts[0].value, Some(Number::Int(6)));
    assert_eq!(alerts[0].window.as_deref(), Some("300s"));
}

#[test]
fn idle_state_is_dropped_and_its_suppressed_count_goes_with_it() {
    let mut e = Engine::new(&config());
    let t0 = DAY + 12 * H;
    let evs: Vec<Event> = (0..13).map(|_| call(t0, "u-1")).collect();
    assert_eq!(run(&mut e, &evs).len(), 1);
    // Idle for more than max(60 s, 10 min): next alert reports 0.
    let evs: Vec<Event> = (0..11).map(|_| call(t0 + 10 * MIN + 1, "u-1")).collect();
    let alerts = run(&mut e, &evs);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].suppressed, 0);
}

#[test]
fn max_keys_evicts_the_least_recently_seen_key_and_counts_it() {
    let mut c = Config::defaults();
    c.rules.get_mut(RuleName::NewToolUsage).max_keys = 2;
    let mut e = Engine::new(&c);
    let t = DAY + 12 * H;
    let tools = ["a", "b", "c", "a"];
    let evs: Vec<Event> = tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let mut ev = call(t + i as Millis * S, "u-1");
            ev.tool_name = Some((*tool).into());
            ev
        })
        .collect();
    // a, b, c are new; c evicts a, which then alerts as new again.
    assert_eq!(run(&mut e, &evs).len(), 4);
    assert_eq!(e.stats().evictions.get("new_tool_usage"), Some(&2));
}

const POLICY: &str = r#"{
  "approvalMode": "fine_grained",
  "rules": {
    "autoApproved": { "patterns": ["*_read"], "tools": [] },
    "requiresApproval": { "patterns": ["*_send"], "tools": ["email_send"] },
    "disabled": { "patterns": ["admin_*"], "tools": ["user_delete"] }
  }
}"#;

fn send(ts: Millis, rid: &str) -> Event {
    let mut ev = call(ts, "u-1");
    ev.tool_name = Some("email_send".into());
    ev.request_id = Some(rid.into());
    ev
}

fn approve(ts: Millis, rid: &str) -> Event {
    let mut ev = decision(ts, "u-1", Decision::Approve);
    ev.request_id = Some(rid.into());
    ev
}

fn bypasses(alerts: &[Alert]) -> Vec<&Alert> {
    alerts
        .iter()
        .filter(|a| a.rule == "approval_bypass")
        .collect()
}

#[test]
fn approval_bypass_approve_3s_after_the_call_is_in_time() {
    let mut e = Engine::new(&config_with_policy(POLICY));
    let t = DAY + 12 * H;
    let alerts = run(
        &mut e,
        &[
            send(t, "r-1"),
            approve(t + 3 * S, "r-1"),
            call(t + MIN, "u-9"),
        ],
    );
    assert!(bypasses(&alerts).is_empty());
}

/// Regression: live, a call held by the gate (approvals.log had not moved
/// past its deadline) while other logs moved event time more than an hour
/// on lost its approve to expiry and was judged a bypass that `scan` never
/// raises (the bundled example's run found it).
#[test]
fn approval_bypass_a_call_held_by_the_live_gate_keeps_its_approve_past_the_horizon() {
    let mut e = Engine::new(&config_with_policy(POLICY));
    let t = DAY + 12 * H;
    e.set_bypass_horizon(t);
    let evs = [
        approve(t - 3 * S, "r-1"),
        send(t, "r-1"),
        error(t + 2 * H, "gmail"),
    ];
    assert!(bypasses(&run(&mut e, &evs)).is_empty());
    assert!(e.bypass_pending(), "held by the gate");
    e.set_bypass_horizon(Millis::MAX);
    let mut out = Vec::new();
    e.tick(&mut out);
    assert!(bypasses(&out).is_empty(), "{out:#?}");
    assert!(!e.bypass_pending());
}

#[test]
fn approval_bypass_approve_7s_after_the_call_is_a_bypass() {
    let mut e = Engine::new(&config_with_policy(POLICY));
    let t = DAY + 12 * H;
    let alerts = run(
        &mut e,
        &[
            send(t, "r-1"),
            approve(t + 7 * S, "r-1"),
            call(t + MIN, "u-9"),
        ],
    );
    let b = bypasses(&alerts);
    assert_eq!(b.len(), 1);
    // The alert carries the call's ts and evidence, decided at the approve.
    assert_eq!(b[0].ts, "2026-11-23T12:00:00.000Z");
    assert_eq!(b[0].evidence[0].line, 1);
    assert_eq!(b[0].evidence[0].request_id.as_deref(), Some("r-1"));
    assert_eq!(b[0].key.get("request_id").map(String::as_str), Some("r-1"));
    // The approve arrived after the call was judged: counted as late.
    assert_eq!(e.stats().late_approvals, 1);
}

#[test]
fn approval_bypass_approve_at_exactly_grace_is_in_time() {
    let mut e = Engine::new(&config_with_policy(POLICY));
    let t = DAY + 12 * H;
    let alerts = run(
        &mut e,
        &[
            send(t, "r-1"),
            approve(t + 5 * S, "r-1"),
            call(t + MIN, "u-9"),
        ],
    );
    assert!(bypasses(&alerts).is_empty());
}

#[test]
fn approval_bypass_approve_before_the_call_within_horizon_is_in_time() {
    let mut e = Engine::new(&config_with_policy(POLICY));
    let t = DAY + 12 * H;
    let alerts = run(
        &mut e,
        &[
            approve(t - H, "r-1"),
            send(t, "r-1"),
            approve(t - H - 1, "r-2"),
            send(t, "r-2"),
            call(t + MIN, "u-9"),
        ],
    );
    let b = bypasses(&alerts);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].key.get("request_id").map(String::as_str), Some("r-2"));
}

#[test]
fn approval_bypass_undecided_at_end_of_input_raises_nothing() {
    let mut e = Engine::new(&config_with_policy(POLICY));
    let alerts = run(&mut e, &[send(DAY + 12 * H, "r-1")]);
    assert!(bypasses(&alerts).is_empty());
}

#[test]
fn approval_bypass_skips_denied_auto_approved_and_counts_calls_without_request_id() {
    let mut e = Engine::new(&config_with_policy(POLICY));
    let t = DAY + 12 * H;
    let mut denied = send(t, "r-1");
    denied.outcome = Some(Outcome::Denied);
    let mut auto = call(t, "u-1");
    auto.request_id = Some("r-2".into());
    let mut anonymous = send(t, "x");
    anonymous.request_id = None;
    let alerts = run(&mut e, &[denied, auto, anonymous, call(t + MIN, "u-9")]);
    assert!(bypasses(&alerts).is_empty());
    assert_eq!(e.stats().bypass_unjudged, 1);
}

#[test]
fn approval_bypass_needs_a_policy() {
    let mut e = Engine::new(&config());
    let t = DAY + 12 * H;
    let alerts = run(&mut e, &[send(t, "r-1"), call(t + MIN, "u-9")]);
    assert!(bypasses(&alerts).is_empty());
    assert!(!e.enabled(RuleName::ApprovalBypass));
    assert!(!e.enabled(RuleName::DisabledTool));
}

#[test]
fn disabled_tool_fires_with_critical_severity_and_one_minute_realert() {
    let mut e = Engine::new(&config_with_policy(POLICY));
    let t = DAY + 12 * H;
    let mut admin = call(t, "u-1");
    admin.tool_name = Some("admin_reset".into());
    let mut again = admin.clone();
    again.ts = t + 59 * S;
    let mut later = admin.clone();
    later.ts = t + MIN;
    let alerts: Vec<Alert> = run(&mut e, &[admin, again, later])
        .into_iter()
        .filter(|a| a.rule == "disabled_tool")
        .collect();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].severity, crate::event::Severity::Critical);
    assert_eq!(alerts[1].suppressed, 1);
    assert_eq!(alerts[0].key.len(), 3);
}

#[test]
fn tools_named_in_the_policy_are_never_new() {
    let mut e = Engine::new(&config_with_policy(POLICY));
    let t = DAY + 12 * H;
    let mut named = call(t, "u-1");
    named.tool_name = Some("user_delete".into());
    let alerts = run(&mut e, &[named]);
    assert_eq!(rules_of(&alerts), ["disabled_tool"]);
}

#[test]
fn same_input_gives_same_alert_ids() {
    let evs: Vec<Event> = (0..11).map(|i| call(DAY + 12 * H + i * S, "u-1")).collect();
    let a = run(&mut Engine::new(&config()), &evs);
    let b = run(&mut Engine::new(&config()), &evs);
    assert_eq!(a, b);
    assert_eq!(a[0].id.len(), 64);
}

/// Every rule on, with windows, cooldowns and caps small enough that a few
/// hundred events hit every threshold, expire idle keys, evict at the caps
/// and compact the LRU queues (tests compact after 3 dead entries).
fn tight_config() -> Config {
    let mut c = config_with_policy(POLICY);
    let tight = |c: &mut Config, name, window, threshold, realert, max_keys| {
        let r = c.rules.get_mut(name);
        (r.window, r.threshold, r.realert, r.max_keys) = (window, threshold, realert, max_keys);
    };
    tight(
        &mut c,
        RuleName::RapidToolUsage,
        10 * S,
        2.0,
        Some(30 * S),
        2,
    );
    tight(&mut c, RuleName::ErrorSpike, 20 * S, 2.0, Some(MIN), 2);
    tight(&mut c, RuleName::HighDenialRate, MIN, 0.5, Some(2 * MIN), 3);
    c.rules.get_mut(RuleName::HighDenialRate).min_decisions = 3;
    c.rules.get_mut(RuleName::NewToolUsage).max_keys = 4;
    c.rules.get_mut(RuleName::UnusualHours).max_keys = 2;
    c.rules.get_mut(RuleName::ApprovalBypass).horizon = MIN;
    tight(
        &mut c,
        RuleName::ExfilSequence,
        20 * S,
        0.0,
        Some(30 * S),
        2,
    );
    c.rules.get_mut(RuleName::ToolDefinitionDrift).max_keys = 3;
    c.rules.get_mut(RuleName::ToolDefinitionDrift).max_hashes = 2;
    let b = c.rules.get_mut(RuleName::UsageBaselineSpike);
    (b.min_calls, b.min_history, b.z, b.max_keys) = (3, 2, 1.0, 2);
    c
}

/// One generated event: (ts step in ms, kind, user, server, tool,
/// request id, decision). Steps are mostly short, sometimes hours (to
/// cross unusual and usual hours and idle every key), sometimes back in
/// time (lines out of order within a file).
type Step = (i64, u8, u8, u8, u8, Option<u8>, u8);

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let gap = prop_oneof![
        6 => 0i64..1_500,
        2 => 1_500i64..60_000,
        1 => 3_600_000i64..8 * 3_600_000,
        1 => -20_000i64..0,
    ];
    (
        gap,
        0u8..3,
        0u8..3,
        0u8..2,
        0u8..6,
        proptest::option::of(0u8..6),
        0u8..3,
    )
}

fn event_of(t: Millis, (_, kind, user, server, tool, rid, verdict): Step) -> Event {
    const TOOLS: [&str; 6] = [
        "email_read",
        "email_send",
        "admin_reset",
        "user_delete",
        "calendar_list",
        "crm_export",
    ];
    let mut ev = match kind {
        0 => call(t, &format!("u-{user}")),
        1 => decision(
            t,
            &format!("u-{user}"),
            [Decision::Approve, Decision::Deny, Decision::Timeout][usize::from(verdict)],
        ),
        _ => error(t, &format!("srv-{server}")),
    };
    if kind == 0 {
        ev.server_name = Some(format!("srv-{server}").as_str().into());
        ev.tool_name = Some(TOOLS[usize::from(tool)].into());
        // Some calls carry a definition hash, of three.
        ev.tool_hash = rid.map(|_| format!("h{verdict}").as_str().into());
        ev.conversation_id = (user > 0).then(|| format!("c-{}", user % 2).as_str().into());
        ev.outcome = [Some(Outcome::Success), None, Some(Outcome::Error)][usize::from(verdict)];
    }
    ev.request_id = rid.map(|r| format!("r-{r}").as_str().into());
    ev
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// A restart anywhere: an engine checkpointed mid-stream (a snapshot
    /// of its state, serialized after the engine went on, through the
    /// engine file, as the daemon writes it; JSON would not
    /// give back the baseline's doubles bit for bit) and restored into a new
    /// engine raises exactly the alerts, in the same order, and ends with
    /// exactly the state and counters of one that ran straight through.
    #[test]
    fn a_checkpoint_and_restore_anywhere_changes_no_alert(
        steps in proptest::collection::vec(step(), 1..400),
        cut in 0usize..400,
    ) {
        let mut t = DAY;
        let events: Vec<Event> = (steps.iter())
            .map(|&s| {
                t += s.0;
                event_of(t, s)
            })
            .collect();
        let cut = cut.min(events.len());
        let config = tight_config();

        let mut straight = Engine::new(&config);
        let expected = run_from(&mut straight, &events, 0);

        // As the daemon does: a snapshot at the cut, serialized while
        // detection goes on past it.
        let mut before = Engine::new(&config);
        let mut alerts = run_from(&mut before, &events[..cut], 0);
        let snapshot = before.snapshot();
        let went_on = run_from(&mut before, &events[cut..], cut);
        proptest::prop_assert_eq!(&went_on[..], &expected[alerts.len()..]);
        let saved = snapshot.to_file().unwrap();
        drop(before);
        let mut after = Engine::new(&config);
        after.restore(EngineState::from_file(&saved).unwrap());
        alerts.extend(run_from(&mut after, &events[cut..], cut));

        proptest::prop_assert_eq!(&alerts, &expected);
        proptest::prop_assert_eq!(after.stats(), straight.stats());
        proptest::prop_assert_eq!(after.watermark(), straight.watermark());
        let state = |e: &Engine| serde_json::to_string(e.state()).unwrap();
        proptest::prop_assert_eq!(state(&after), state(&straight));
    }
}

#[test]
fn the_engine_file_restores_the_state_and_survives_rules_added_or_removed() {
    let mut e = Engine::new(&Config::defaults());
    let t = DAY + 12 * H;
    let first = run(&mut e, &[call(t, "u-1")]);
    assert_eq!(rules_of(&first), ["new_tool_usage"]);
    let json = |s: &EngineState| serde_json::to_value(s).unwrap();

    // Round trip through the per-rule file.
    let bytes = e.state().to_file().unwrap();
    let back = EngineState::from_file(&bytes).unwrap();
    assert_eq!(json(&back), json(e.state()));
    let mut e2 = Engine::new(&Config::defaults());
    e2.restore(back);
    assert!(
        run(&mut e2, &[call(t + H, "u-3")]).is_empty(),
        "seen set kept"
    );

    // A file of an earlier version (positional postcard) still loads.
    let old = postcard::to_stdvec(e.state()).unwrap();
    assert_eq!(
        json(&EngineState::from_file(&old).unwrap()),
        json(e.state())
    );

    // A rule this version does not know is dropped; a rule the file does
    // not have (added since) starts empty.
    let mut parts = e.state().rules.to_parts().unwrap();
    parts.retain(|(name, _)| name != "new_tool_usage");
    parts.push(("a_rule_removed_since".into(), vec![1, 2, 3]));
    let st = rules::RulesState::from_parts(parts).unwrap();
    let mut e3 = Engine::new(&Config::defaults());
    e3.restore(EngineState {
        rules: st,
        ..e.state().clone()
    });
    assert_eq!(
        rules_of(&run(&mut e3, &[call(t + H, "u-3")])),
        ["new_tool_usage"],
        "the seen set starts empty, so the tool is new again"
    );
}

#[test]
fn a_reload_keeps_a_rules_state_when_only_its_threshold_changed_and_drops_it_otherwise() {
    let old = config();
    let seven: Vec<Event> = (0..7).map(|i| call(DAY + 12 * H + i * S, "u-1")).collect();
    let eighth = [call(DAY + 12 * H + 7 * S, "u-1")];

    let mut tuned = old.clone();
    tuned.rules.get_mut(RuleName::RapidToolUsage).threshold = 7.0;
    tuned.rules.get_mut(RuleName::RapidToolUsage).severity = Severity::High;
    let mut e = Engine::new(&old);
    assert!(run(&mut e, &seven).is_empty());
    assert!(e.reconfigure(&old, &tuned).is_empty());
    let alerts = run_from(&mut e, &eighth, 8);
    assert_eq!(
        rules_of(&alerts),
        ["rapid_tool_usage"],
        "the window kept its seven calls"
    );
    assert_eq!(alerts[0].value, Some(Number::Int(8)));
    assert_eq!(alerts[0].severity, Severity::High);

    let mut rewindowed = tuned.clone();
    rewindowed.rules.get_mut(RuleName::RapidToolUsage).window = 2 * MIN;
    let mut e = Engine::new(&old);
    assert!(run(&mut e, &seven).is_empty());
    assert_eq!(e.reconfigure(&old, &rewindowed), [RuleName::RapidToolUsage]);
    assert!(
        run_from(&mut e, &eighth, 8).is_empty(),
        "a new window starts empty"
    );
}

mod seeded;
