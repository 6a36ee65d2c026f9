//! The seed-driven policy and rules directories the `seeded` scan bench
//! and the memory bench share: a `security-config.json` switching every
//! seed-driven rule on, and one rules directory per set, each turning on
//! the first N rules of SPEC §3 and off the rest; and their size.

use std::path::Path;

use mcpwatch::config::RuleName;

/// Writes `security-config.json` and, for each `(dir, n)`, `root/dir/`
/// with the first `n` rules on.
pub fn write_policy_and_rules(root: &Path, sets: &[(&str, usize)]) {
    std::fs::write(
        root.join("security-config.json"),
        r#"{"approvalMode":"fine_grained","rules":{"autoApproved":{"patterns":["tool_*"]},"requiresApproval":{"patterns":["*_send"]},"disabled":{"patterns":["admin_*"]}},
"rateLimiting":{"enabled":true,"requestsPerMinute":60,"burstLimit":10},
"authentication":{"tokenRotation":{"enabled":true,"intervalDays":30,"notifyBeforeDays":7}},
"monitoring":{"enabled":true,"healthCheckInterval":60}}"#,
    )
    .unwrap();
    for &(dir, on) in sets {
        let rules = root.join(dir);
        std::fs::create_dir_all(&rules).unwrap();
        for (i, r) in RuleName::ALL.iter().enumerate() {
            let text = if i < on {
                "enabled = true\n"
            } else {
                "enabled = false\n"
            };
            std::fs::write(rules.join(format!("{}.toml", r.as_str())), text).unwrap();
        }
    }
}

/// How many lines (the memory bench: users) the data sets hold:
/// `MCPWATCH_BENCH_LINES`, 1,000,000 by default.
pub fn bench_lines() -> usize {
    std::env::var("MCPWATCH_BENCH_LINES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}
