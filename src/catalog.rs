//! The catalog of rules: the one list a rule is added to, in the order of
//! SPEC §3's tables (the order alerts of one event come out in).
//!
//! Each entry names the rule's module in `detect::rules` (which is the
//! rule's name, and the name of its shipped `rules/<name>.toml`) and type,
//! and what configuration needs to know of it without its code: the keys
//! its rules file may set beyond the common ones, whether it stays off
//! while the tool policy is unknown, and whether
//! `monitoring.anomalyDetection: false` turns it off.
//!
//! The list is handed to a macro of each layer: `config` writes the
//! [`RuleName`](crate::config::RuleName) enum and its tables from it
//! (names, shipped defaults, settings), `detect` its engine (one slot and
//! one state per rule, the dispatch). So configuration knows every rule
//! without depending on detection, and a rule is still added in one place.

/// Calls `$then!` with every rule of the catalog (see the module doc).
macro_rules! rule_catalog {
    ($then:ident) => {
        $then! {
            rapid_tool_usage::RapidToolUsage { settings: [Window, Threshold], needs_policy: false, anomaly: true },
            unusual_hours::UnusualHours { settings: [Hours, Timezone], needs_policy: false, anomaly: true },
            high_denial_rate::HighDenialRate { settings: [Window, Ratio, MinDecisions], needs_policy: false, anomaly: true },
            new_tool_usage::NewToolUsage { settings: [LearningPeriod], needs_policy: false, anomaly: true },
            disabled_tool::DisabledTool { settings: [], needs_policy: true, anomaly: false },
            approval_bypass::ApprovalBypass { settings: [Grace, Horizon], needs_policy: true, anomaly: false },
            error_spike::ErrorSpike { settings: [Window, Threshold], needs_policy: false, anomaly: false },
            rate_limit_exceeded::RateLimitExceeded { settings: [RequestsPerMinute, BurstLimit], needs_policy: false, anomaly: false },
            token_shared::TokenShared { settings: [By, Threshold, Window], needs_policy: false, anomaly: false },
            token_rotation_due::TokenRotationDue { settings: [IntervalDays, NotifyBeforeDays], needs_policy: false, anomaly: false },
            token_rotation_overdue::TokenRotationOverdue { settings: [IntervalDays], needs_policy: false, anomaly: false },
            server_silence::ServerSilence { settings: [After, MinEvents], needs_policy: false, anomaly: false },
            audit_silence::AuditSilence { settings: [After, MinEvents], needs_policy: false, anomaly: false },
            exfil_sequence::ExfilSequence { settings: [Window, Sources, Sinks], needs_policy: false, anomaly: false },
            tool_definition_drift::ToolDefinitionDrift { settings: [MaxHashes], needs_policy: false, anomaly: false },
            usage_baseline_spike::UsageBaselineSpike { settings: [Alpha, Z, MinCalls, MinHistory], needs_policy: false, anomaly: false },
        }
    };
}

pub(crate) use rule_catalog;
