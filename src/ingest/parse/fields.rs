//! The field table of SPEC §1 and the winners kept while a line is walked.
//!
//! Both walks (the fast path and the serde path) ask [`slot`] what a key
//! means and hand its value to [`Fields`], so the alias priorities and the
//! value rules live here once, where the table can be read on its own.

use std::borrow::Cow;

use super::Parser;
use super::ts::ts_of;
use crate::event::{
    ApprovalMode, DecidedBy, Decision, Event, Kind, Millis, Outcome, RejectReason, Text,
};

/// A rank: 0 for the canonical name, 1.. for aliases in the spec's order.
/// A candidate replaces the held value only with a strictly lower rank, so
/// among duplicates of one name the first wins.
pub(super) type Rank = u8;

/// The string identity fields, indexing [`Fields::strs`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum StrField {
    RequestId,
    UserId,
    AgentId,
    ConversationId,
    ServerName,
    ToolName,
    TokenId,
    ErrorCode,
    ErrorType,
    ErrorMessage,
    Phase,
    ToolHash,
}

const STR_FIELDS: usize = 12;

/// What a key means for this kind of log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Slot {
    Ignore,
    Ts(Rank),
    Str(StrField, Rank),
    Outcome,
    /// `duration_ms`, `latency_ms` (ms) or `tool_latency_secs` (× 1000).
    Duration(Rank, f64),
    ArgsBytes,
    ApprovalMode,
    Decision(Rank),
    DecidedBy,
    WaitMs,
}

/// The meaning of `key` in a line of `kind`'s log: SPEC §1's names, each
/// alias ranked by its place in the table.
///
/// Every key of every line goes through here, so it dispatches on the
/// length first (one jump) and then compares against the few names of that
/// length. `token` may hold a secret and is never read (SPEC §1): it is no
/// name here, so it is skipped like any unknown key.
#[inline]
pub(super) fn slot(kind: Kind, key: &str) -> Slot {
    use Kind::{Approval as A, Error as E, ToolCall as T};
    use StrField as F;
    match (key.len(), kind) {
        (2, _) if key == "ts" => Slot::Ts(0),
        (4, _) => match key {
            "time" => Slot::Ts(2),
            "user" => Slot::Str(F::UserId, 1),
            "tool" => Slot::Str(F::ToolName, 1),
            _ => Slot::Ignore,
        },
        (5, _) => match (key, kind) {
            ("agent", _) => Slot::Str(F::AgentId, 1),
            ("error", E) => Slot::Str(F::ErrorMessage, 1),
            ("phase", E) => Slot::Str(F::Phase, 0),
            _ => Slot::Ignore,
        },
        (6, _) => match (key, kind) {
            ("userId", _) => Slot::Str(F::UserId, 2),
            ("server", _) => Slot::Str(F::ServerName, 1),
            ("result", A) => Slot::Decision(1),
            _ => Slot::Ignore,
        },
        (7, _) => match (key, kind) {
            ("user_id", _) => Slot::Str(F::UserId, 0),
            ("call_id", _) => Slot::Str(F::RequestId, 2),
            ("agentId", _) => Slot::Str(F::AgentId, 2),
            ("outcome", T) => Slot::Outcome,
            ("outcome", A) => Slot::Decision(2),
            ("wait_ms", A) => Slot::WaitMs,
            _ => Slot::Ignore,
        },
        (8, _) => match (key, kind) {
            ("loggedAt", _) => Slot::Ts(4),
            ("agent_id", _) => Slot::Str(F::AgentId, 0),
            ("token_id", _) => Slot::Str(F::TokenId, 0),
            ("decision", A) => Slot::Decision(0),
            _ => Slot::Ignore,
        },
        (9, _) => match key {
            "timestamp" => Slot::Ts(1),
            "requestId" => Slot::Str(F::RequestId, 1),
            "principal" => Slot::Str(F::UserId, 3),
            "tool_name" => Slot::Str(F::ToolName, 0),
            "tool_hash" if kind == T => Slot::Str(F::ToolHash, 0),
            _ => Slot::Ignore,
        },
        (10, _) => match (key, kind) {
            ("request_id", _) => Slot::Str(F::RequestId, 0),
            ("@timestamp", _) => Slot::Ts(3),
            ("session_id", _) => Slot::Str(F::ConversationId, 1),
            ("latency_ms", T) => Slot::Duration(1, 1.0),
            ("args_bytes", T) => Slot::ArgsBytes,
            ("decided_by", A) => Slot::DecidedBy,
            ("error_code", E) => Slot::Str(F::ErrorCode, 0),
            ("error_type", E) => Slot::Str(F::ErrorType, 0),
            _ => Slot::Ignore,
        },
        (11, _) => match (key, kind) {
            ("server_name", _) => Slot::Str(F::ServerName, 0),
            ("duration_ms", T) => Slot::Duration(0, 1.0),
            ("schema_hash", T) => Slot::Str(F::ToolHash, 3),
            _ => Slot::Ignore,
        },
        (13, _) => match (key, kind) {
            ("mcp_tool_name", _) => Slot::Str(F::ToolName, 2),
            ("approval_mode", A) => Slot::ApprovalMode,
            ("error_message", E) => Slot::Str(F::ErrorMessage, 0),
            _ => Slot::Ignore,
        },
        (14, _) if key == "conversationId" => Slot::Str(F::ConversationId, 2),
        (15, _) => match (key, kind) {
            ("conversation_id", _) => Slot::Str(F::ConversationId, 0),
            ("event_timestamp", _) => Slot::Ts(5),
            ("mcp_server_name", _) => Slot::Str(F::ServerName, 2),
            ("definition_hash", T) => Slot::Str(F::ToolHash, 2),
            _ => Slot::Ignore,
        },
        (17, _) => match (key, kind) {
            ("token_fingerprint", _) => Slot::Str(F::TokenId, 1),
            ("tool_latency_secs", T) => Slot::Duration(2, 1000.0),
            _ => Slot::Ignore,
        },
        (20, T) if key == "tool_definition_hash" => Slot::Str(F::ToolHash, 1),
        _ => Slot::Ignore,
    }
}

/// One JSON value as far as the parser cares: a string (borrowed from the
/// line unless it had escapes), a number, or absent (null, bool, object,
/// array — drained without being kept).
pub(super) enum Scalar<'de> {
    Str(Cow<'de, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Absent,
}

impl Scalar<'_> {
    /// A number given as a JSON number or as a numeric string.
    fn as_f64(&self) -> Option<f64> {
        let v = match self {
            Scalar::U64(n) => *n as f64,
            Scalar::I64(n) => *n as f64,
            Scalar::F64(f) => *f,
            Scalar::Str(s) => s.trim().parse::<f64>().ok()?,
            Scalar::Absent => return None,
        };
        v.is_finite().then_some(v)
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Winning candidates collected while walking the object. Strings stay
/// borrowed until the end so losers never allocate.
pub(super) struct Fields<'de> {
    ts: Option<(Rank, Millis)>,
    /// Some ts candidate was present but not usable (unparsable or out of
    /// range): the line is `bad_ts` rather than `missing_ts`.
    ts_unusable: bool,
    strs: [Option<(Rank, Scalar<'de>)>; STR_FIELDS],
    outcome: Option<Outcome>,
    duration_ms: Option<(Rank, f64)>,
    args_bytes: Option<u64>,
    approval_mode: Option<ApprovalMode>,
    decision: Option<(Rank, Decision)>,
    decided_by: Option<DecidedBy>,
    wait_ms: Option<f64>,
}

fn better<T>(held: &Option<(Rank, T)>, rank: Rank) -> bool {
    held.as_ref().is_none_or(|(r, _)| rank < *r)
}

impl<'de> Fields<'de> {
    pub(super) fn new() -> Self {
        Fields {
            ts: None,
            ts_unusable: false,
            strs: Default::default(),
            outcome: None,
            duration_ms: None,
            args_bytes: None,
            approval_mode: None,
            decision: None,
            decided_by: None,
            wait_ms: None,
        }
    }

    /// Whether a value for `slot` could still change the result; when not,
    /// the value is skipped without being decoded.
    #[inline]
    pub(super) fn wants(&self, slot: Slot) -> bool {
        match slot {
            Slot::Ignore => false,
            Slot::Ts(r) => better(&self.ts, r),
            Slot::Str(f, r) => better(&self.strs[f as usize], r),
            Slot::Outcome => self.outcome.is_none(),
            Slot::Duration(r, _) => better(&self.duration_ms, r),
            Slot::ArgsBytes => self.args_bytes.is_none(),
            Slot::ApprovalMode => self.approval_mode.is_none(),
            Slot::Decision(r) => better(&self.decision, r),
            Slot::DecidedBy => self.decided_by.is_none(),
            Slot::WaitMs => self.wait_ms.is_none(),
        }
    }

    /// Offers a candidate; it is kept only if usable.
    #[inline]
    pub(super) fn offer(&mut self, slot: Slot, value: Scalar<'de>, parser: &Parser) {
        match slot {
            Slot::Ignore => {}
            Slot::Ts(r) => match ts_of(&value) {
                Some(ms) if parser.ts_in_range(ms) => self.ts = Some((r, ms)),
                None if matches!(value, Scalar::Absent) => {}
                _ => self.ts_unusable = true,
            },
            Slot::Str(f, r) => {
                if !matches!(value, Scalar::Absent) {
                    self.strs[f as usize] = Some((r, value));
                }
            }
            Slot::Outcome => {
                self.outcome = value.as_str().and_then(parse_outcome);
            }
            Slot::Duration(r, scale) => {
                if let Some(v) = value.as_f64().filter(|v| *v >= 0.0) {
                    self.duration_ms = Some((r, v * scale));
                }
            }
            Slot::ArgsBytes => {
                self.args_bytes = match value {
                    Scalar::U64(n) => Some(n),
                    Scalar::Str(s) => s.trim().parse::<u64>().ok(),
                    Scalar::F64(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Some(f as u64),
                    _ => None,
                };
            }
            Slot::ApprovalMode => {
                self.approval_mode = value.as_str().and_then(ApprovalMode::parse);
            }
            Slot::Decision(r) => {
                if let Some(d) = value.as_str().and_then(Decision::parse) {
                    self.decision = Some((r, d));
                }
            }
            Slot::DecidedBy => {
                self.decided_by = value.as_str().and_then(parse_decided_by);
            }
            Slot::WaitMs => {
                self.wait_ms = value.as_f64().filter(|v| *v >= 0.0);
            }
        }
    }

    /// The event, once the whole line is walked; or why the ts made it
    /// unusable.
    pub(super) fn finish(self, kind: Kind) -> Result<Event, RejectReason> {
        let ts = match self.ts {
            Some((_, ts)) => ts,
            None if self.ts_unusable => return Err(RejectReason::BadTs),
            None => return Err(RejectReason::MissingTs),
        };
        let [
            request_id,
            user_id,
            agent_id,
            conversation_id,
            server_name,
            tool_name,
            token_id,
            error_code,
            error_type,
            error_message,
            phase,
            tool_hash,
        ] = self.strs.map(|s| s.and_then(|(_, v)| text(v)));
        Ok(Event {
            kind: Some(kind),
            ts,
            request_id,
            user_id,
            agent_id,
            conversation_id,
            server_name,
            tool_name,
            token_id,
            outcome: self.outcome,
            duration_ms: self.duration_ms.map(|(_, v)| v),
            args_bytes: self.args_bytes,
            tool_hash,
            approval_mode: self.approval_mode,
            decision: self.decision.map(|(_, d)| d),
            decided_by: self.decided_by,
            wait_ms: self.wait_ms,
            error_code,
            error_type,
            error_message,
            phase,
        })
    }
}

/// A string field's final value: strings as they are, numbers as their
/// decimal text (`Display`, as `to_string` writes them). Short values (most
/// ids) are stored inline in the [`Text`], without an allocation.
fn text(v: Scalar<'_>) -> Option<Text> {
    match v {
        Scalar::Str(Cow::Borrowed(s)) => Some(Text::from(s)),
        Scalar::Str(Cow::Owned(s)) => Some(Text::from(s)),
        Scalar::U64(n) => Some(compact_str::format_compact!("{n}")),
        Scalar::I64(n) => Some(compact_str::format_compact!("{n}")),
        Scalar::F64(f) => Some(compact_str::format_compact!("{f}")),
        Scalar::Absent => None,
    }
}

fn parse_outcome(s: &str) -> Option<Outcome> {
    match s {
        "success" => Some(Outcome::Success),
        "error" => Some(Outcome::Error),
        "denied" => Some(Outcome::Denied),
        _ => None,
    }
}

fn parse_decided_by(s: &str) -> Option<DecidedBy> {
    match s {
        "human" => Some(DecidedBy::Human),
        "policy" => Some(DecidedBy::Policy),
        "auto" => Some(DecidedBy::Auto),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC §1's table, name by name: what each key means in each log. The
    /// dispatch in `slot` is by length, so this holds it to the table.
    #[test]
    fn every_name_of_spec_section_1_means_what_the_table_says() {
        use Kind::{Approval as A, Error as E, ToolCall as T};
        use StrField as F;
        let all = [T, A, E];
        let common: &[(&str, Slot)] = &[
            ("ts", Slot::Ts(0)),
            ("timestamp", Slot::Ts(1)),
            ("time", Slot::Ts(2)),
            ("@timestamp", Slot::Ts(3)),
            ("loggedAt", Slot::Ts(4)),
            ("event_timestamp", Slot::Ts(5)),
            ("request_id", Slot::Str(F::RequestId, 0)),
            ("requestId", Slot::Str(F::RequestId, 1)),
            ("call_id", Slot::Str(F::RequestId, 2)),
            ("user_id", Slot::Str(F::UserId, 0)),
            ("user", Slot::Str(F::UserId, 1)),
            ("userId", Slot::Str(F::UserId, 2)),
            ("principal", Slot::Str(F::UserId, 3)),
            ("agent_id", Slot::Str(F::AgentId, 0)),
            ("agent", Slot::Str(F::AgentId, 1)),
            ("agentId", Slot::Str(F::AgentId, 2)),
            ("conversation_id", Slot::Str(F::ConversationId, 0)),
            ("session_id", Slot::Str(F::ConversationId, 1)),
            ("conversationId", Slot::Str(F::ConversationId, 2)),
            ("server_name", Slot::Str(F::ServerName, 0)),
            ("server", Slot::Str(F::ServerName, 1)),
            ("mcp_server_name", Slot::Str(F::ServerName, 2)),
            ("tool_name", Slot::Str(F::ToolName, 0)),
            ("tool", Slot::Str(F::ToolName, 1)),
            ("mcp_tool_name", Slot::Str(F::ToolName, 2)),
            ("token_id", Slot::Str(F::TokenId, 0)),
            ("token_fingerprint", Slot::Str(F::TokenId, 1)),
        ];
        for (name, want) in common {
            for kind in all {
                assert_eq!(slot(kind, name), *want, "{name} in {kind:?}");
            }
        }
        let specific: &[(Kind, &str, Slot)] = &[
            (T, "outcome", Slot::Outcome),
            (T, "duration_ms", Slot::Duration(0, 1.0)),
            (T, "latency_ms", Slot::Duration(1, 1.0)),
            (T, "tool_latency_secs", Slot::Duration(2, 1000.0)),
            (T, "args_bytes", Slot::ArgsBytes),
            (T, "tool_hash", Slot::Str(F::ToolHash, 0)),
            (T, "tool_definition_hash", Slot::Str(F::ToolHash, 1)),
            (T, "definition_hash", Slot::Str(F::ToolHash, 2)),
            (T, "schema_hash", Slot::Str(F::ToolHash, 3)),
            (A, "approval_mode", Slot::ApprovalMode),
            (A, "decision", Slot::Decision(0)),
            (A, "result", Slot::Decision(1)),
            (A, "outcome", Slot::Decision(2)),
            (A, "decided_by", Slot::DecidedBy),
            (A, "wait_ms", Slot::WaitMs),
            (E, "error_code", Slot::Str(F::ErrorCode, 0)),
            (E, "error_type", Slot::Str(F::ErrorType, 0)),
            (E, "error_message", Slot::Str(F::ErrorMessage, 0)),
            (E, "error", Slot::Str(F::ErrorMessage, 1)),
            (E, "phase", Slot::Str(F::Phase, 0)),
        ];
        for (kind, name, want) in specific {
            assert_eq!(slot(*kind, name), *want, "{name} in {kind:?}");
            for other in all.into_iter().filter(|k| k != kind) {
                // A kind-specific name means nothing in the other logs,
                // unless it is one of theirs too (`outcome`).
                if !specific.iter().any(|(k, n, _)| *k == other && n == name) {
                    assert_eq!(slot(other, name), Slot::Ignore, "{name} in {other:?}");
                }
            }
        }
        // The secret-bearing `token`, near misses and case are ignored.
        for name in [
            "token",
            "",
            "t",
            "TS",
            "Ts",
            "user_ids",
            "tool_nam",
            "ts ",
            "approval_modes",
        ] {
            for kind in all {
                assert_eq!(slot(kind, name), Slot::Ignore, "{name:?} in {kind:?}");
            }
        }
    }
}
