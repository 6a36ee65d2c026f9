//! Unit tests of [`Parser`](super::Parser): SPEC §1 line by line, through
//! the public entry (so both walks and the field table are exercised
//! together). A file of their own, as in `config/` and `detect/`, because
//! they outweigh the parser they test.

use super::*;
use crate::event::{ApprovalMode, DecidedBy, Decision, Field, Outcome};

/// The reading clock of these tests: 2026-11-24T00:00:00Z.
const NOW: Millis = 1_795_478_400_000;

fn parser() -> Parser {
    Parser {
        max_line_bytes: 1024,
        now_ms: NOW,
    }
}

fn ms(rfc3339: &str) -> Millis {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("test timestamp")
        .timestamp_millis()
}

fn call(line: &str) -> Event {
    parser()
        .parse(Kind::ToolCall, line.as_bytes())
        .expect("line parses")
}

fn reject(kind: Kind, line: &[u8]) -> RejectReason {
    parser().parse(kind, line).expect_err("line is rejected")
}

fn ts_of_line(line: &str) -> Result<Millis, RejectReason> {
    parser()
        .parse(Kind::ToolCall, line.as_bytes())
        .map(|e| e.ts)
}

fn b(s: &str) -> Option<crate::event::Text> {
    Some(s.into())
}

#[test]
fn now_constant_is_2026_11_24() {
    assert_eq!(NOW, ms("2026-11-24T00:00:00Z"));
}

#[test]
fn spec_example_tool_call_line() {
    let e = call(
        r#"{"ts":"2026-11-23T14:03:07.412Z","request_id":"r-81","user_id":"u-42","agent_id":"ag-7","server_name":"gmail","tool_name":"email_send","outcome":"success","duration_ms":182}"#,
    );
    assert_eq!(
        e,
        Event {
            kind: Some(Kind::ToolCall),
            ts: ms("2026-11-23T14:03:07.412Z"),
            request_id: b("r-81"),
            user_id: b("u-42"),
            agent_id: b("ag-7"),
            server_name: b("gmail"),
            tool_name: b("email_send"),
            outcome: Some(Outcome::Success),
            duration_ms: Some(182.0),
            ..Event::default()
        }
    );
}

#[test]
fn spec_example_approval_line() {
    let e = parser()
        .parse(
            Kind::Approval,
            br#"{"ts":"2026-11-23T14:03:05.100Z","request_id":"r-81","user_id":"u-42","server_name":"gmail","tool_name":"email_send","approval_mode":"always_ask","decision":"approve","decided_by":"human","wait_ms":5300}"#,
        )
        .expect("parses");
    assert_eq!(
        e,
        Event {
            kind: Some(Kind::Approval),
            ts: ms("2026-11-23T14:03:05.100Z"),
            request_id: b("r-81"),
            user_id: b("u-42"),
            server_name: b("gmail"),
            tool_name: b("email_send"),
            approval_mode: Some(ApprovalMode::AlwaysAsk),
            decision: Some(Decision::Approve),
            decided_by: Some(DecidedBy::Human),
            wait_ms: Some(5300.0),
            ..Event::default()
        }
    );
}

#[test]
fn spec_example_error_line() {
    let e = parser()
        .parse(
            Kind::Error,
            br#"{"ts":"2026-11-23T14:03:09.000Z","request_id":"r-82","server_name":"gmail","tool_name":"email_send","error_type":"upstream_timeout","error_message":"timed out after 30s"}"#,
        )
        .expect("parses");
    assert_eq!(
        e,
        Event {
            kind: Some(Kind::Error),
            ts: ms("2026-11-23T14:03:09.000Z"),
            request_id: b("r-82"),
            server_name: b("gmail"),
            tool_name: b("email_send"),
            error_type: b("upstream_timeout"),
            error_message: b("timed out after 30s"),
            ..Event::default()
        }
    );
}

const T: &str = r#""ts":"2026-11-23T14:00:00Z""#;

#[test]
fn every_identity_alias_is_read() {
    let cases: &[(&str, Field)] = &[
        ("requestId", Field::RequestId),
        ("call_id", Field::RequestId),
        ("user", Field::UserId),
        ("userId", Field::UserId),
        ("principal", Field::UserId),
        ("agent", Field::AgentId),
        ("agentId", Field::AgentId),
        ("session_id", Field::ConversationId),
        ("conversationId", Field::ConversationId),
        ("server", Field::ServerName),
        ("mcp_server_name", Field::ServerName),
        ("tool", Field::ToolName),
        ("mcp_tool_name", Field::ToolName),
        ("token_fingerprint", Field::TokenId),
    ];
    for &(alias, field) in cases {
        let e = call(&format!(r#"{{{T},"{alias}":"v-1"}}"#));
        assert_eq!(e.field(field), Some("v-1"), "alias {alias}");
        for other in Field::ALL.into_iter().filter(|f| *f != field) {
            assert_eq!(e.field(other), None, "alias {alias} leaks into {other:?}");
        }
    }
}

#[test]
fn canonical_names_are_read() {
    for field in Field::ALL {
        let e = call(&format!(r#"{{{T},"{}":"v-1"}}"#, field.as_str()));
        assert_eq!(e.field(field), Some("v-1"));
    }
}

#[test]
fn canonical_beats_alias_in_any_key_order() {
    let e = call(&format!(r#"{{"user":"alias",{T},"user_id":"canon"}}"#));
    assert_eq!(e.user_id, b("canon"));
    let e = call(&format!(r#"{{"user_id":"canon",{T},"user":"alias"}}"#));
    assert_eq!(e.user_id, b("canon"));
}

#[test]
fn first_alias_in_table_order_wins_not_first_in_line() {
    // Table order for user_id: user, userId, principal.
    let e = call(&format!(
        r#"{{{T},"principal":"p","userId":"u2","user":"u1"}}"#
    ));
    assert_eq!(e.user_id, b("u1"));
    let e = call(&format!(r#"{{{T},"principal":"p","userId":"u2"}}"#));
    assert_eq!(e.user_id, b("u2"));
}

#[test]
fn unusable_canonical_falls_back_to_alias() {
    for bad in ["null", "true", "{}", r#"{"name":"x"}"#, "[1]"] {
        let e = call(&format!(r#"{{{T},"tool_name":{bad},"tool":"email_send"}}"#));
        assert_eq!(e.tool_name, b("email_send"), "canonical {bad}");
    }
    // Nested object counts as absent and is not read.
    let e = call(&format!(
        r#"{{{T},"tool":{{"name":"x"}},"mcp_tool_name":"t"}}"#
    ));
    assert_eq!(e.tool_name, b("t"));
    let e = call(&format!(r#"{{{T},"tool":{{"name":"x"}}}}"#));
    assert_eq!(e.tool_name, None);
}

#[test]
fn numbers_become_their_decimal_text() {
    let e = call(&format!(
        r#"{{{T},"user_id":42,"request_id":-7,"agent_id":1.5,"server_name":""}}"#
    ));
    assert_eq!(e.user_id, b("42"));
    assert_eq!(e.request_id, b("-7"));
    assert_eq!(e.agent_id, b("1.5"));
    assert_eq!(e.server_name, b(""), "strings are used as they are");
}

#[test]
fn escaped_strings_and_keys_are_decoded() {
    let e = call(&format!(
        r#"{{{T},"user_\u0069d":"u-\"42\"","tool_name":"caf\u00e9"}}"#
    ));
    assert_eq!(e.user_id, b("u-\"42\""));
    assert_eq!(e.tool_name, b("café"));
}

#[test]
fn token_field_is_never_read() {
    let e = call(&format!(
        r#"{{{T},"token":"secret-abc","token_id":"tk-1"}}"#
    ));
    assert_eq!(e.token_id, b("tk-1"));
    let e = call(&format!(r#"{{{T},"token":"secret-abc"}}"#));
    assert_eq!(e.token_id, None);
    assert!(!format!("{e:?}").contains("secret"));
}

#[test]
fn unknown_fields_are_ignored() {
    let e = call(&format!(
        r#"{{"extra":{{"deep":[1,2,{{"a":null}}]}},{T},"other":"x","user_id":"u"}}"#
    ));
    assert_eq!(e.user_id, b("u"));
}

#[test]
fn tool_call_fields_and_aliases() {
    let e = call(&format!(
        r#"{{{T},"outcome":"denied","latency_ms":12.5,"args_bytes":300}}"#
    ));
    assert_eq!(e.outcome, Some(Outcome::Denied));
    assert_eq!(e.duration_ms, Some(12.5));
    assert_eq!(e.args_bytes, Some(300));
    let e = call(&format!(
        r#"{{{T},"tool_latency_secs":0.25,"outcome":"error"}}"#
    ));
    assert_eq!(e.duration_ms, Some(250.0));
    assert_eq!(e.outcome, Some(Outcome::Error));
    let e = call(&format!(
        r#"{{{T},"tool_latency_secs":9,"latency_ms":8,"duration_ms":7}}"#
    ));
    assert_eq!(e.duration_ms, Some(7.0), "canonical beats aliases");
    let e = call(&format!(r#"{{{T},"tool_latency_secs":9,"latency_ms":8}}"#));
    assert_eq!(
        e.duration_ms,
        Some(8.0),
        "latency_ms before tool_latency_secs"
    );
    let e = call(&format!(r#"{{{T},"outcome":"maybe","decision":"deny"}}"#));
    assert_eq!(e.outcome, None);
    assert_eq!(e.decision, None, "decision is not a tool_call field");
}

#[test]
fn tool_hash_is_read_from_its_name_else_the_first_alias_in_spec_order() {
    let e = call(&format!(
        r#"{{{T},"schema_hash":"d","definition_hash":"c","tool_definition_hash":"b","tool_hash":"a"}}"#
    ));
    assert_eq!(e.tool_hash, b("a"), "canonical beats aliases");
    let e = call(&format!(
        r#"{{{T},"schema_hash":"d","definition_hash":"c","tool_definition_hash":"b"}}"#
    ));
    assert_eq!(e.tool_hash, b("b"));
    let e = call(&format!(
        r#"{{{T},"schema_hash":"d","definition_hash":"c"}}"#
    ));
    assert_eq!(e.tool_hash, b("c"));
    let e = call(&format!(r#"{{{T},"schema_hash":"d"}}"#));
    assert_eq!(e.tool_hash, b("d"));
    // Numbers as their decimal text; objects and null count as absent.
    let e = call(&format!(
        r#"{{{T},"tool_hash":{{"sha":1}},"schema_hash":12}}"#
    ));
    assert_eq!(e.tool_hash, b("12"));
    let e = call(&format!(r#"{{{T},"tool_hash":null}}"#));
    assert_eq!(e.tool_hash, None);
}

#[test]
fn approval_fields_modes_and_decision_synonyms() {
    let a = |line: String| {
        parser()
            .parse(Kind::Approval, line.as_bytes())
            .expect("parses")
    };
    let modes = [
        ("always_ask", ApprovalMode::AlwaysAsk),
        ("fine_grained", ApprovalMode::FineGrained),
        ("no_approval", ApprovalMode::NoApproval),
        ("require_approval_all", ApprovalMode::AlwaysAsk),
        ("require_approval_per_tool", ApprovalMode::FineGrained),
        ("auto_approve_all", ApprovalMode::NoApproval),
    ];
    for (text, mode) in modes {
        let e = a(format!(r#"{{{T},"approval_mode":"{text}"}}"#));
        assert_eq!(e.approval_mode, Some(mode), "{text}");
    }
    let decisions = [
        ("approve", Decision::Approve),
        ("approved", Decision::Approve),
        ("allow", Decision::Approve),
        ("allowed", Decision::Approve),
        ("deny", Decision::Deny),
        ("denied", Decision::Deny),
        ("rejected", Decision::Deny),
        ("blocked", Decision::Deny),
        ("timeout", Decision::Timeout),
        ("timed_out", Decision::Timeout),
        ("expired", Decision::Timeout),
    ];
    for field in ["decision", "result", "outcome"] {
        for (text, d) in decisions {
            let e = a(format!(r#"{{{T},"{field}":"{text}"}}"#));
            assert_eq!(e.decision, Some(d), "{field}={text}");
            assert_eq!(e.outcome, None);
        }
    }
    let e = a(format!(r#"{{{T},"outcome":"deny","result":"approve"}}"#));
    assert_eq!(e.decision, Some(Decision::Approve), "result before outcome");
    let e = a(format!(r#"{{{T},"outcome":"deny","decision":"timeout"}}"#));
    assert_eq!(e.decision, Some(Decision::Timeout), "canonical first");
    let e = a(format!(r#"{{{T},"decision":"perhaps","result":"deny"}}"#));
    assert_eq!(
        e.decision,
        Some(Decision::Deny),
        "unusable canonical falls back"
    );
    for (text, by) in [
        ("human", DecidedBy::Human),
        ("policy", DecidedBy::Policy),
        ("auto", DecidedBy::Auto),
    ] {
        let e = a(format!(r#"{{{T},"decided_by":"{text}","wait_ms":"1200"}}"#));
        assert_eq!(e.decided_by, Some(by));
        assert_eq!(e.wait_ms, Some(1200.0));
    }
}

#[test]
fn error_fields_and_alias() {
    let e = parser()
        .parse(
            Kind::Error,
            format!(r#"{{{T},"error_code":503,"error":"boom","phase":"execute","error_type":"upstream"}}"#)
                .as_bytes(),
        )
        .expect("parses");
    assert_eq!(e.error_code, b("503"));
    assert_eq!(e.error_message, b("boom"));
    assert_eq!(e.error_type, b("upstream"));
    assert_eq!(e.phase, b("execute"));
    let e = parser()
        .parse(
            Kind::Error,
            format!(r#"{{{T},"error":"alias","error_message":"canon"}}"#).as_bytes(),
        )
        .expect("parses");
    assert_eq!(e.error_message, b("canon"));
}

#[test]
fn ts_rfc3339_forms() {
    let want = ms("2026-11-23T14:03:07.412Z");
    for s in [
        "2026-11-23T14:03:07.412Z",
        "2026-11-23T14:03:07.412999Z",
        "2026-11-23T14:03:07.412123456Z",
        "2026-11-23T15:03:07.412+01:00",
        "2026-11-23T09:03:07.412-05:00",
        "2026-11-23T15:03:07.412+0100",
        "2026-11-23t14:03:07.412z",
    ] {
        assert_eq!(ts_of_line(&format!(r#"{{"ts":"{s}"}}"#)), Ok(want), "{s}");
    }
    let whole = ms("2026-11-23T14:03:07Z");
    assert_eq!(ts_of_line(r#"{"ts":"2026-11-23T14:03:07Z"}"#), Ok(whole));
    assert_eq!(
        ts_of_line(r#"{"ts":"2026-11-23T19:33:07+05:30"}"#),
        Ok(whole)
    );
    assert_eq!(
        ts_of_line(r#"{"ts":"2026-11-23T14:03:07.4Z"}"#),
        Ok(whole + 400)
    );
}

#[test]
fn ts_space_separated_form_is_utc() {
    assert_eq!(
        ts_of_line(r#"{"ts":"2026-11-23 14:03:07"}"#),
        Ok(ms("2026-11-23T14:03:07Z"))
    );
}

#[test]
fn ts_epoch_forms() {
    let s = ms("2026-11-23T14:03:07Z");
    assert_eq!(s, 1_795_442_587_000);
    assert_eq!(ts_of_line(r#"{"ts":1795442587}"#), Ok(s), "epoch seconds");
    assert_eq!(
        ts_of_line(r#"{"ts":1795442587.412}"#),
        Ok(s + 412),
        "float seconds"
    );
    assert_eq!(
        ts_of_line(r#"{"ts":1795442587.4129}"#),
        Ok(s + 412),
        "truncated"
    );
    assert_eq!(
        ts_of_line(r#"{"ts":1795442587412}"#),
        Ok(s + 412),
        "epoch millis"
    );
    assert_eq!(
        ts_of_line(r#"{"ts":"1795442587"}"#),
        Ok(s),
        "numeric string"
    );
    assert_eq!(ts_of_line(r#"{"ts":"1795442587412"}"#), Ok(s + 412));
    assert_eq!(ts_of_line(r#"{"ts":"1795442587.412"}"#), Ok(s + 412));
    assert_eq!(
        ts_of_line(r#"{"ts":1795442587412.9}"#),
        Ok(s + 412),
        "ms with fraction"
    );
    assert_eq!(ts_of_line(r#"{"ts":"1795442587412.9"}"#), Ok(s + 412));
    assert_eq!(ts_of_line(r#"{"ts":"2026-11-23T14:03:07Z"}"#), Ok(s));
}

#[test]
fn every_ts_alias_in_order() {
    let aliases = [
        "timestamp",
        "time",
        "@timestamp",
        "loggedAt",
        "event_timestamp",
    ];
    let base = ms("2026-11-23T14:00:00Z");
    for (i, alias) in aliases.iter().enumerate() {
        assert_eq!(
            ts_of_line(&format!(r#"{{"{alias}":{}}}"#, base / 1000)),
            Ok(base)
        );
        // Every later alias loses to this one; put them first in the line.
        let mut parts: Vec<String> = aliases[i + 1..]
            .iter()
            .map(|a| format!(r#""{a}":{}"#, base / 1000 + 60))
            .collect();
        parts.push(format!(r#""{alias}":{}"#, base / 1000));
        assert_eq!(
            ts_of_line(&format!("{{{}}}", parts.join(","))),
            Ok(base),
            "{alias}"
        );
    }
    let line = format!(
        r#"{{"timestamp":{},"ts":{}}}"#,
        base / 1000 + 60,
        base / 1000
    );
    assert_eq!(ts_of_line(&line), Ok(base), "ts beats timestamp");
}

#[test]
fn unusable_ts_falls_back_to_alias() {
    let base = ms("2026-11-23T14:00:00Z");
    for bad in ["null", r#""soon""#, "{}", "123"] {
        let line = format!(r#"{{"ts":{bad},"timestamp":{}}}"#, base);
        assert_eq!(ts_of_line(&line), Ok(base), "ts {bad}");
    }
}

#[test]
fn missing_ts_rejects() {
    assert_eq!(
        reject(Kind::ToolCall, br#"{"user_id":"u"}"#),
        RejectReason::MissingTs
    );
    assert_eq!(
        reject(Kind::ToolCall, br#"{"ts":null}"#),
        RejectReason::MissingTs
    );
    assert_eq!(
        reject(Kind::ToolCall, br#"{"ts":{"s":1}}"#),
        RejectReason::MissingTs
    );
    assert_eq!(reject(Kind::ToolCall, b"{}"), RejectReason::MissingTs);
}

#[test]
fn bad_ts_rejects_out_of_range_and_garbage() {
    let r = |s: &str| reject(Kind::ToolCall, s.as_bytes());
    assert_eq!(
        r(r#"{"ts":"1999-12-31T23:59:59.999Z"}"#),
        RejectReason::BadTs
    );
    assert_eq!(
        ts_of_line(r#"{"ts":"2000-01-01T00:00:00Z"}"#),
        Ok(MIN_TS_MS)
    );
    let limit = NOW + MAX_FUTURE_MS;
    assert_eq!(ts_of_line(&format!(r#"{{"ts":{limit}}}"#)), Ok(limit));
    assert_eq!(
        r(&format!(r#"{{"ts":{}}}"#, limit + 1)),
        RejectReason::BadTs
    );
    assert_eq!(r(r#"{"ts":"2026-11-24T00:10:01Z"}"#), RejectReason::BadTs);
    assert_eq!(r(r#"{"ts":"yesterday"}"#), RejectReason::BadTs);
    assert_eq!(r(r#"{"ts":"2026-02-30T00:00:00Z"}"#), RejectReason::BadTs);
    assert_eq!(r(r#"{"ts":"2026-11-23T24:00:00Z"}"#), RejectReason::BadTs);
    assert_eq!(
        r(r#"{"ts":"2026-11-23T14:00:00+25:00"}"#),
        RejectReason::BadTs
    );
    assert_eq!(r(r#"{"ts":-5}"#), RejectReason::BadTs);
    assert_eq!(r(r#"{"ts":0}"#), RejectReason::BadTs);
    assert_eq!(r(r#"{"ts":1e300}"#), RejectReason::BadTs);
    assert_eq!(r(r#"{"ts":18446744073709551615}"#), RejectReason::BadTs);
    assert_eq!(r(r#"{"ts":true}"#), RejectReason::MissingTs);
}

#[test]
fn reject_reasons() {
    let k = Kind::ToolCall;
    assert_eq!(reject(k, b""), RejectReason::Empty);
    assert_eq!(reject(k, b" \t \r"), RejectReason::Empty);
    assert_eq!(reject(k, &[b'x'; 1025]), RejectReason::TooLong);
    let head = r#"{"ts":1795442587,"pad":""#;
    let exactly = format!(r#"{head}{}"}}"#, "x".repeat(1024 - head.len() - 2));
    assert_eq!(exactly.len(), 1024);
    assert!(
        parser().parse(k, exactly.as_bytes()).is_ok(),
        "max itself is fine"
    );
    assert_eq!(reject(k, b"{\"ts\":\"\xff\"}"), RejectReason::NotUtf8);
    assert_eq!(reject(k, b"{\"ts\":"), RejectReason::NotJson);
    assert_eq!(reject(k, b"hello"), RejectReason::NotJson);
    assert_eq!(reject(k, b"{\"ts\":1795442587} x"), RejectReason::NotJson);
    assert_eq!(
        reject(k, b"{\"ts\":1795442587}{\"ts\":1795442587}"),
        RejectReason::NotJson
    );
    assert_eq!(reject(k, b"{\"ts\":1795442587,}"), RejectReason::NotJson);
    assert_eq!(reject(k, b"[1,2,3]"), RejectReason::NotObject);
    assert_eq!(reject(k, b"\"str\""), RejectReason::NotObject);
    assert_eq!(reject(k, b"42"), RejectReason::NotObject);
    assert_eq!(reject(k, b"null"), RejectReason::NotObject);
    assert_eq!(reject(k, b"[1,2"), RejectReason::NotJson);
}

#[test]
fn deep_nesting_never_overflows_the_stack() {
    let p = Parser {
        max_line_bytes: usize::MAX,
        now_ms: NOW,
    };
    let open = "[".repeat(100_000);
    let close = "]".repeat(100_000);
    // Skipped values are walked iteratively by serde_json: valid, accepted.
    let skipped = format!(r#"{{"ts":1795442587,"x":{open}{close}}}"#);
    assert_eq!(
        p.parse(Kind::ToolCall, skipped.as_bytes()).map(|e| e.ts),
        Ok(1_795_442_587_000)
    );
    let in_field = format!(r#"{{"ts":1795442587,"tool":{open}{close}}}"#);
    assert_eq!(
        p.parse(Kind::ToolCall, in_field.as_bytes())
            .map(|e| e.tool_name),
        Ok(None)
    );
    let top = format!("{open}{close}");
    assert_eq!(
        p.parse(Kind::ToolCall, top.as_bytes()),
        Err(RejectReason::NotObject)
    );
    // Unbalanced deep input is not JSON.
    assert_eq!(
        p.parse(Kind::ToolCall, open.as_bytes()),
        Err(RejectReason::NotJson)
    );
    let objs = format!(r#"{{"ts":1795442587,"x":{}}}"#, r#"{"a":"#.repeat(50_000));
    assert_eq!(
        p.parse(Kind::ToolCall, objs.as_bytes()),
        Err(RejectReason::NotJson)
    );
}

#[test]
fn bom_and_surrounding_whitespace_are_tolerated() {
    assert_eq!(
        ts_of_line("\u{feff} {\"ts\":1795442587} "),
        Ok(1_795_442_587_000)
    );
}

#[test]
fn kind_is_set_from_the_caller() {
    for kind in Kind::ALL {
        let e = parser()
            .parse(kind, br#"{"ts":1795442587}"#)
            .expect("parses");
        assert_eq!(e.kind, Some(kind));
    }
}
