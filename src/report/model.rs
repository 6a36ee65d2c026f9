//! The report as data: what every format renders and what `--format json`
//! prints verbatim.
//!
//! Field names are a contract (documented in the README's field reference):
//! add fields, never rename or remove them. Timestamps are RFC 3339 UTC with
//! milliseconds (as alerts carry them), rates are ratios in `[0, 1]` rounded to
//! four decimals and `null` when there is nothing to divide by, latencies are
//! whole milliseconds.

use std::collections::BTreeMap;

use serde::Serialize;

/// Version of this JSON shape; bumped only on an incompatible change.
pub(crate) const REPORT_VERSION: u32 = 1;

/// The label used for the server and tool of the overflow row (pairs beyond
/// the cap) in the CSV and text formats.
pub(crate) const OTHER: &str = "(other)";

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub(crate) report_version: u32,
    /// The "now" the report was made at (period selection and record ages).
    pub(crate) generated_at: String,
    pub(crate) period: PeriodInfo,
    pub filters: Filters,
    pub inputs: Inputs,
    pub totals: Totals,
    /// Per server: the sum of its tools (the overflow row excluded).
    pub servers: Vec<ServerRow>,
    /// Per server × tool, sorted by server then tool.
    pub tools: Vec<ToolRow>,
    /// Events of server × tool pairs beyond `limits.max_pairs`, in one row
    /// (`null` when nothing overflowed).
    pub other: Option<ToolRow>,
    pub users: Vec<UserRow>,
    /// Events of users beyond `limits.max_users`, in one row.
    pub users_other: Option<UserRow>,
    /// Tool calls by UTC hour of day, index 0 = 00:00–00:59.
    pub hour_of_day: [u64; 24],
    pub new_tools: NewTools,
    /// `null` when no policy is known (no security-config.json).
    pub disabled_tool_invocations: Option<Listing<Invocation>>,
    pub approval_bypasses: Listing<Bypass>,
    /// Tools whose `tool_hash` changed in the period.
    pub(crate) drifted_tools: DriftedTools,
    pub alerts: AlertTotals,
    pub rejected: Rejected,
    pub coverage: Coverage,
    pub policy: PolicyInfo,
    pub limits: Limits,
    /// `--format timeline`: the subject's events and alerts in ts order
    /// (not part of the JSON report).
    #[serde(skip)]
    pub(crate) timeline: super::timeline::Timeline,
    /// What the HTML report's charts plot (not part of the JSON report).
    #[serde(skip)]
    pub(crate) series: Series,
}

/// Counts over time for the charts of `--format html`: a few numbers per
/// UTC hour or day of the period and per alert rule, never one per event,
/// so their size is bounded by the period's length (and [`MAX_SERIES_RULES`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Series {
    /// Selected tool calls per UTC hour (hours since the epoch): success,
    /// error, denied, unknown outcome.
    pub(crate) calls_per_hour: BTreeMap<i64, [u64; 4]>,
    /// Selected approval decisions per UTC day (days since the epoch):
    /// approve, deny, timeout.
    pub(crate) decisions_per_day: BTreeMap<i64, [u64; 3]>,
    /// Alerts of the report per rule (beyond [`MAX_SERIES_RULES`] rules, in
    /// `(other)`) per UTC hour.
    pub(crate) alerts_per_hour: BTreeMap<String, BTreeMap<i64, u64>>,
    /// The time the charts' axis covers, `[start, end)` in ms: the period
    /// (an open start from the oldest record's day, an open end to the end
    /// of "now"'s day), widened to every counted hour; `None` when there
    /// is nothing to place on it.
    pub(crate) span: Option<(i64, i64)>,
}

/// Alert rules with their own row in [`Series::alerts_per_hour`] (the
/// built-in catalog has sixteen; rules files may add some).
pub(crate) const MAX_SERIES_RULES: usize = 64;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct PeriodInfo {
    /// `daily`, `weekly`, `monthly`, or `null` for `--since`/`--until`.
    pub(crate) name: Option<String>,
    /// Inclusive start, `null` when unbounded.
    pub(crate) since: Option<String>,
    /// Exclusive end, `null` when unbounded.
    pub(crate) until: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Filters {
    pub(crate) user: Option<String>,
    pub(crate) server: Option<String>,
    pub(crate) token: Option<String>,
    /// `--request` (left out of the JSON when not given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<String>,
    /// With `token`: how many request ids its calls in the period have
    /// (approval and error lines without a `token_id` are attributed to the
    /// token through them); `null` without `token`.
    pub token_requests: Option<u64>,
    /// False when the calls had more request ids than the cap, so some
    /// approvals/errors without `token_id` may be missing.
    pub token_requests_complete: bool,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Inputs {
    pub(crate) dir: String,
    /// Log files (live, rotated, archived) read.
    pub(crate) log_files: u64,
    /// `alerts.log` and its rotations read.
    pub(crate) alert_files: u64,
    /// Bytes read from disk (compressed size for archives).
    pub(crate) bytes: u64,
    /// Accepted lines in all files (any time, any filter).
    pub(crate) events_read: u64,
    /// Accepted lines inside the period and matching the filters.
    pub(crate) events_selected: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Totals {
    pub tool_calls: u64,
    pub approvals: u64,
    pub errors: u64,
    pub servers: u64,
    pub tools: u64,
    pub users: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Outcomes {
    pub success: u64,
    pub error: u64,
    pub denied: u64,
    /// Calls without a (known) `outcome`.
    pub(crate) unknown: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Approvals {
    /// Decisions with a known `decision` value.
    pub decisions: u64,
    pub approve: u64,
    pub deny: u64,
    pub timeout: u64,
    pub approve_rate: Option<f64>,
    pub deny_rate: Option<f64>,
    pub timeout_rate: Option<f64>,
    /// Approval lines without a known `decision`.
    pub(crate) undecided: u64,
    /// Per `approval_mode` (`always_ask`, `fine_grained`, `no_approval`,
    /// `unknown`), sorted by mode.
    pub by_mode: Vec<ModeDecisions>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ModeDecisions {
    pub mode: String,
    pub(crate) approve: u64,
    pub(crate) deny: u64,
    pub(crate) timeout: u64,
    pub(crate) approve_rate: Option<f64>,
    pub(crate) deny_rate: Option<f64>,
    pub(crate) timeout_rate: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Errors {
    pub total: u64,
    /// By `error_type` (`unknown` when absent), sorted by type.
    pub by_type: BTreeMap<String, u64>,
}

/// Percentiles of `duration_ms` over the calls that carry one.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Calls with a duration.
    pub count: u64,
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ToolRow {
    pub server: String,
    pub tool: String,
    pub calls: u64,
    pub outcomes: Outcomes,
    pub approvals: Approvals,
    pub errors: Errors,
    pub latency_ms: Latency,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ServerRow {
    pub server: String,
    pub tools: u64,
    pub calls: u64,
    pub(crate) outcomes: Outcomes,
    pub(crate) approvals: Approvals,
    pub errors: Errors,
    pub latency_ms: Latency,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct UserRow {
    pub user: String,
    pub calls: u64,
    /// Calls whose `outcome` is `denied`.
    pub denied_calls: u64,
    /// Approval decisions on this user's calls: `approve`, `deny`, `timeout`.
    pub approvals: u64,
    pub denials: u64,
    pub timeouts: u64,
    pub errors: u64,
    /// First and last event of any kind in the period.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// The user's tool calls per UTC hour, from the hour of their first
    /// call to the hour of their last (`null` without a call, and in the
    /// overflow row).
    pub(crate) hourly_calls: Option<HourlyBaseline>,
    /// The UTC hour with the most of their calls (`null` likewise).
    pub(crate) busiest_hour: Option<BusiestHour>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub(crate) struct HourlyBaseline {
    /// Hours from the first call's to the last call's, both included.
    pub(crate) hours: u64,
    /// Mean and (population) standard deviation of the calls per hour,
    /// empty hours counted as 0; two decimals.
    pub(crate) mean: f64,
    pub(crate) sd: f64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub(crate) struct BusiestHour {
    /// The hour's start.
    pub(crate) hour: String,
    pub(crate) calls: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub(crate) struct DriftedTools {
    /// Pairs whose hash changed in the period.
    pub(crate) total: u64,
    pub(crate) listed: Vec<DriftedTool>,
    /// True when more pairs carried hashes than could be kept (`max_pairs`).
    pub(crate) approximate: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct DriftedTool {
    pub(crate) server: String,
    pub(crate) tool: String,
    /// The pair's earliest hash the report read (older data included),
    /// and the time of that call.
    pub(crate) first_hash: String,
    pub(crate) first_seen: String,
    /// The hash of its last call, and when the pair changed to it.
    pub(crate) last_hash: String,
    pub(crate) last_changed: String,
    /// Calls in the period whose hash differed from the previous call's.
    pub(crate) changes: u64,
    pub(crate) distinct_hashes: u64,
    /// The call of the last change in the period.
    pub(crate) evidence: Option<Place>,
}

/// Where a line is: file name as read and 1-based line number.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Place {
    pub file: String,
    pub line: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NewTool {
    pub(crate) server: String,
    pub tool: String,
    /// The first (selected) call in the period.
    pub(crate) first_seen: String,
    pub user: String,
    pub evidence: Place,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct NewTools {
    /// Pairs first called in the period (never called in older data on disk).
    pub total: u64,
    pub listed: Vec<NewTool>,
    /// True when older data held more pairs than the seen-set cap, so some
    /// listed tools may have been seen before.
    pub approximate: bool,
}

/// A list capped at `limits.max_listed`, with the full count.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Listing<T> {
    pub total: u64,
    pub listed: Vec<T>,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            total: 0,
            listed: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Invocation {
    pub ts: String,
    pub user: String,
    pub server: String,
    pub tool: String,
    /// The call's `outcome` (`success`, `error`, `denied`) or `unknown`.
    pub outcome: String,
    /// The policy rule that disabled the tool, e.g. `pattern admin_*`.
    pub rule: String,
    pub evidence: Place,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Bypass {
    /// Event time of the call (the alert's ts).
    pub(crate) ts: String,
    pub(crate) alert_id: String,
    pub request_id: Option<String>,
    pub(crate) message: String,
    pub evidence: Option<Place>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AlertTotals {
    pub total: u64,
    pub by_severity: BTreeMap<String, u64>,
    /// Per rule, sorted by rule name.
    pub by_rule: Vec<RuleAlerts>,
    /// Lines of the alert log that are not alerts.
    pub unreadable_lines: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RuleAlerts {
    pub rule: String,
    pub(crate) total: u64,
    pub(crate) low: u64,
    pub(crate) medium: u64,
    pub(crate) high: u64,
    pub(crate) critical: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Rejected {
    pub total: u64,
    /// Every reason of SPEC §1, zero included.
    pub by_reason: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Coverage {
    /// The oldest accepted line in any log file on disk (any filter).
    pub oldest_record: Option<String>,
    /// Whole days between `oldest_record` and `generated_at`.
    pub oldest_record_age_days: Option<i64>,
    pub(crate) retention_days: u32,
    /// `shorter_than_retention`, `meets_retention`, `exceeds_retention`
    /// (records older than retention plus two days: pruning is not
    /// running), or `no_records`.
    pub retention_status: String,
    /// The first and last day (UTC, `YYYY-MM-DD`) the gap check covers.
    pub(crate) first_day: Option<String>,
    pub(crate) last_day: Option<String>,
    /// UTC days of the period with no accepted line in any log.
    pub days_without_logs: Vec<String>,
    /// Days counted in `days_without_logs` beyond the listed ones.
    pub(crate) days_without_logs_total: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PolicyInfo {
    /// False when there is no security-config.json.
    pub known: bool,
    pub approval_mode: Option<String>,
    /// `auto_approved`, `requires_approval`, `disabled` → counts.
    pub lists: BTreeMap<String, ListCounts>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ListCounts {
    pub patterns: u64,
    pub tools: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Limits {
    pub max_pairs: u64,
    /// Selected events that went to the `other` row.
    pub pairs_overflow_events: u64,
    pub(crate) max_users: u64,
    pub(crate) users_overflow_events: u64,
    pub(crate) max_listed: u64,
    /// Accepted lines outside the period (read for coverage and new tools).
    pub(crate) events_outside_period: u64,
    /// Accepted lines in the period that the filters excluded.
    pub events_filtered_out: u64,
}
