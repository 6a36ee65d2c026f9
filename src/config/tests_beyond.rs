//! The settings of the rules beyond fixed thresholds (`sources`, `sinks`,
//! `max_hashes`, `alpha`, `z`, `min_calls`, `min_history`): read, and each
//! bad value reported with its place and the allowed values.

use super::tests::{Dir, ok};
use super::*;

#[test]
fn beyond_threshold_settings_errors_name_allowed_values() {
    let d = Dir::new();
    d.write(
        "rules/exfil_sequence.toml",
        "sources = [\"*_read\", \"a[\", 3]\nsinks = [\"class:needs_approval\"]\n",
    );
    d.write("rules/tool_definition_drift.toml", "max_hashes = 0\n");
    d.write(
        "rules/usage_baseline_spike.toml",
        "alpha = 0\nz = -1\nmin_calls = 1.5\nmin_history = -2\n",
    );
    let errors = d.errors();
    assert_eq!(
        errors,
        [
            "1:22: sources[1]: bad glob \"a[\": unclosed character class; missing ']'",
            "1:28: sources[2]: expected a tool-name glob such as \"*_send\", or \"class:requires_approval\", got a number",
            "2:10: sinks[0]: unknown policy class \"needs_approval\"; expected auto_approved, requires_approval or disabled",
            "1:14: max_hashes: 0 is out of range; expected a whole number from 1 to 65536",
            "1:9: alpha: 0 is out of range; expected a weight above 0 and at most 1, such as 0.1",
            "2:5: z: -1 is out of range; expected a number of standard deviations ≥ 0",
            "3:13: min_calls: expected a whole number ≥ 0, got 1.5",
            "4:15: min_history: -2 is out of range; expected a whole number ≥ 0",
        ]
    );
}

#[test]
fn beyond_threshold_settings_are_read() {
    let d = Dir::new();
    d.write(
        "rules/exfil_sequence.toml",
        "sinks = [\"*_send\", \"class:requires_approval\"]\nwindow = \"5m\"\n",
    );
    d.write(
        "rules/usage_baseline_spike.toml",
        "alpha = 0.25\nz = 3\nmin_calls = 10\nmin_history = 48\n",
    );
    let c = ok(&d);
    let x = c.rules.get(RuleName::ExfilSequence);
    assert_eq!(x.sinks, ["*_send", "class:requires_approval"]);
    assert_eq!(x.sources.len(), 7, "the shipped sources are kept");
    assert_eq!(x.window, 300_000);
    let b = c.rules.get(RuleName::UsageBaselineSpike);
    assert_eq!(
        (b.alpha, b.z, b.min_calls, b.min_history),
        (0.25, 3.0, 10, 48)
    );
    assert_eq!(c.rules.get(RuleName::ToolDefinitionDrift).max_hashes, 16);
}
