//! The one `Event` type every stage speaks.
//!
//! An event is one accepted line of one of the three audit logs, reduced to
//! the canonical fields of SPEC §1. The parser (`ingest::parse`) produces it,
//! detectors (`detect`) and reports (`report`) consume it. Event time is kept
//! as milliseconds since the Unix epoch (UTC), which is all the precision the
//! spec keeps and makes window arithmetic plain integer arithmetic.

use serde::{Deserialize, Serialize};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// A string field of an event. Ids, names and codes are short, so values of
/// up to 24 bytes are stored inline: building an event from a line costs no
/// allocation in the common case. Serialized as a plain string.
pub(crate) type Text = compact_str::CompactString;

/// Which log a line came from; decided by the file name, never by content.
///
/// The declaration order is the tie-break order of the merge (SPEC §3:
/// tool-usage, approvals, errors), so `Ord` is meaningful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ToolCall,
    Approval,
    Error,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::ToolCall, Kind::Approval, Kind::Error];

    /// The kind of a log file by its name: `tool-usage*`, `approvals*`,
    /// `errors*` (so rotated copies and archives keep their kind).
    pub(crate) fn from_file_name(name: &str) -> Option<Kind> {
        if name.starts_with("tool-usage") {
            Some(Kind::ToolCall)
        } else if name.starts_with("approvals") {
            Some(Kind::Approval)
        } else if name.starts_with("errors") {
            Some(Kind::Error)
        } else {
            None
        }
    }

    /// The live file name of this kind in the audit directory.
    pub const fn base_file(self) -> &'static str {
        match self {
            Kind::ToolCall => "tool-usage.log",
            Kind::Approval => "approvals.log",
            Kind::Error => "errors.log",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ToolCall => "tool_call",
            Kind::Approval => "approval",
            Kind::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Error,
    Denied,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    AlwaysAsk,
    FineGrained,
    NoApproval,
}

impl ApprovalMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalMode::AlwaysAsk => "always_ask",
            ApprovalMode::FineGrained => "fine_grained",
            ApprovalMode::NoApproval => "no_approval",
        }
    }

    /// Accepts the spec names and the platform's API names (SPEC §1).
    pub(crate) fn parse(s: &str) -> Option<ApprovalMode> {
        match s {
            "always_ask" | "require_approval_all" => Some(ApprovalMode::AlwaysAsk),
            "fine_grained" | "require_approval_per_tool" => Some(ApprovalMode::FineGrained),
            "no_approval" | "auto_approve_all" => Some(ApprovalMode::NoApproval),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
    Timeout,
}

impl Decision {
    /// Accepts the canonical values and their synonyms (SPEC §1).
    pub(crate) fn parse(s: &str) -> Option<Decision> {
        match s {
            "approve" | "approved" | "allow" | "allowed" => Some(Decision::Approve),
            "deny" | "denied" | "rejected" | "blocked" => Some(Decision::Deny),
            "timeout" | "timed_out" | "expired" => Some(Decision::Timeout),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DecidedBy {
    Human,
    Policy,
    Auto,
}

/// The canonical identity fields shared by all kinds (SPEC §1), in the
/// order of the spec's table. Used to name key fields in rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Field {
    RequestId,
    UserId,
    AgentId,
    ConversationId,
    ServerName,
    ToolName,
    TokenId,
}

impl Field {
    pub(crate) const ALL: [Field; 7] = [
        Field::RequestId,
        Field::UserId,
        Field::AgentId,
        Field::ConversationId,
        Field::ServerName,
        Field::ToolName,
        Field::TokenId,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Field::RequestId => "request_id",
            Field::UserId => "user_id",
            Field::AgentId => "agent_id",
            Field::ConversationId => "conversation_id",
            Field::ServerName => "server_name",
            Field::ToolName => "tool_name",
            Field::TokenId => "token_id",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// A word for messages: `user u-42`, `server gmail`.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Field::RequestId => "request",
            Field::UserId => "user",
            Field::AgentId => "agent",
            Field::ConversationId => "conversation",
            Field::ServerName => "server",
            Field::ToolName => "tool",
            Field::TokenId => "token",
        }
    }
}

/// One accepted audit line. String fields are `None` when absent (SPEC §1:
/// objects, arrays, booleans and null count as absent). The `token` field is
/// never read, so it cannot be here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: Option<Kind>,
    /// Event time, ms since the epoch (UTC).
    pub ts: Millis,
    pub request_id: Option<Text>,
    pub user_id: Option<Text>,
    pub(crate) agent_id: Option<Text>,
    pub(crate) conversation_id: Option<Text>,
    pub server_name: Option<Text>,
    pub tool_name: Option<Text>,
    pub(crate) token_id: Option<Text>,
    // tool_call
    pub outcome: Option<Outcome>,
    pub(crate) duration_ms: Option<f64>,
    pub(crate) args_bytes: Option<u64>,
    /// `tool_hash` (SPEC §1): a digest of the tool's definition as the
    /// agent saw it, for `tool_definition_drift`. Not serialized: no
    /// persisted event needs it (the pending calls of `approval_bypass`
    /// are the only events in a checkpoint), and leaving it out keeps
    /// checkpoints written before it existed readable.
    #[serde(skip)]
    pub(crate) tool_hash: Option<Text>,
    // approval
    pub(crate) approval_mode: Option<ApprovalMode>,
    pub decision: Option<Decision>,
    pub(crate) decided_by: Option<DecidedBy>,
    pub(crate) wait_ms: Option<f64>,
    // error
    pub(crate) error_code: Option<Text>,
    pub(crate) error_type: Option<Text>,
    pub(crate) error_message: Option<Text>,
    pub(crate) phase: Option<Text>,
}

impl Event {
    /// The value of a canonical identity field, if present.
    #[inline]
    pub(crate) fn field(&self, f: Field) -> Option<&str> {
        match f {
            Field::RequestId => self.request_id.as_deref(),
            Field::UserId => self.user_id.as_deref(),
            Field::AgentId => self.agent_id.as_deref(),
            Field::ConversationId => self.conversation_id.as_deref(),
            Field::ServerName => self.server_name.as_deref(),
            Field::ToolName => self.tool_name.as_deref(),
            Field::TokenId => self.token_id.as_deref(),
        }
    }

    /// The value of a key field, `"unknown"` when missing (SPEC §3).
    #[inline]
    pub(crate) fn key_value(&self, f: Field) -> &str {
        self.field(f).unwrap_or("unknown")
    }
}

/// Why a line was rejected (SPEC §1). The label is the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    Empty,
    NotJson,
    NotObject,
    MissingTs,
    BadTs,
    TooLong,
    NotUtf8,
}

impl RejectReason {
    pub(crate) const ALL: [RejectReason; 7] = [
        RejectReason::Empty,
        RejectReason::NotJson,
        RejectReason::NotObject,
        RejectReason::MissingTs,
        RejectReason::BadTs,
        RejectReason::TooLong,
        RejectReason::NotUtf8,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::NotJson => "not_json",
            RejectReason::NotObject => "not_object",
            RejectReason::MissingTs => "missing_ts",
            RejectReason::BadTs => "bad_ts",
            RejectReason::TooLong => "too_long",
            RejectReason::NotUtf8 => "not_utf8",
        }
    }
}

/// Severity, ordered `low < medium < high < critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub(crate) const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the event being processed was read: evidence and the alert id
/// need the file name, the line number and the raw line.
#[derive(Clone, Copy, Debug)]
pub struct LineRef<'a> {
    pub file: &'a std::sync::Arc<str>,
    pub line: u64,
    /// The line as read (a BOM or line ending is stripped when hashing).
    pub raw: &'a [u8],
}
