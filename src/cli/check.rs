//! `mcpwatch check` (SPEC §7): load every configuration source, print what
//! was loaded (exit 0) or every error (exit 2); with `--tool`, classify
//! tools under the policy instead.

use std::path::PathBuf;

use clap::Args;

use super::{CommonArgs, EXIT_OK};
use mcpwatch::alert::router::DeliveryConfig;
use mcpwatch::config::{Config, RuleName};
use mcpwatch::text::escape;

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// The audit log directory (for its config.json) [default: .elevenlabs/audit]
    #[arg(long, value_name = "D")]
    pub(crate) dir: Option<PathBuf>,
    /// Print this tool's policy class and the rule that decided it (repeatable)
    #[arg(long = "tool", value_name = "NAME")]
    pub(crate) tools: Vec<String>,
}

pub(crate) fn run(common: &CommonArgs, args: CheckArgs) -> anyhow::Result<u8> {
    let cfg = match super::load_config(common, args.dir.as_deref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if args.tools.is_empty() {
        print!("{}", summary(&cfg));
    } else {
        for line in tool_lines(&cfg, &args.tools) {
            println!("{line}");
        }
    }
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
    Ok(EXIT_OK)
}

/// `NAME: <class> (<rule>)` per tool, in the order given.
pub(crate) fn tool_lines(cfg: &Config, tools: &[String]) -> Vec<String> {
    tools
        .iter()
        .map(|t| match &cfg.policy {
            Some(p) => {
                let (class, why) = p.decide(t);
                format!("{t}: {class} ({why})")
            }
            None => format!("{t}: unknown (no security-config.json: the policy is unknown)"),
        })
        .collect()
}

/// What was loaded, one fact per line.
pub(crate) fn summary(cfg: &Config) -> String {
    use std::fmt::Write;
    let s = &cfg.sources;
    let mut out = String::new();
    let _ = match (&s.config, &cfg.policy) {
        (Some(path), Some(p)) => writeln!(out, "security-config: {} ({p})", path.display()),
        _ => writeln!(
            out,
            "security-config: none (policy unknown; disabled_tool and approval_bypass off)"
        ),
    };
    let _ = writeln!(
        out,
        "audit config: {}",
        s.audit_config
            .as_ref()
            .map_or("none (defaults)".to_string(), |p| p.display().to_string())
    );
    let _ = writeln!(
        out,
        "retention: {} days, compress {}",
        cfg.retention.days, cfg.retention.compress
    );
    let _ = match &s.rules_dir {
        Some(d) => {
            let names: Vec<&str> = s.rule_files.iter().map(|r| r.as_str()).collect();
            writeln!(
                out,
                "rules: {} (files for {} of {} rules{}{}; the rest built-in)",
                d.display(),
                names.len(),
                RuleName::COUNT,
                if names.is_empty() { "" } else { ": " },
                names.join(", ")
            )
        }
        None => writeln!(out, "rules: built-in"),
    };
    let active: Vec<&str> = RuleName::ALL
        .iter()
        .filter(|r| cfg.rule_active(**r))
        .map(|r| r.as_str())
        .collect();
    let _ = writeln!(
        out,
        "rules active: {} of {} ({})",
        active.len(),
        RuleName::ALL.len(),
        active.join(", ")
    );
    let _ = writeln!(
        out,
        "settings: {}",
        s.settings
            .as_ref()
            .map_or("none (defaults)".to_string(), |p| p.display().to_string())
    );
    let _ = writeln!(out, "log dir: {}", s.dir.display());
    let st = &cfg.settings;
    let _ = writeln!(
        out,
        "channels: {} email, {} webhook; routes: {}",
        st.email.len(),
        st.webhook.len(),
        st.routes.len()
    );
    for line in action_lines(cfg) {
        let _ = writeln!(out, "{line}");
    }
    for (targets, rules) in DeliveryConfig::from(cfg).critical_targets() {
        let to = if targets.is_empty() {
            "no channel (only alerts.log; add a channel, a route or incidentResponse contacts)"
                .to_string()
        } else {
            targets.join(", ")
        };
        let which = if rules.len() == RuleName::COUNT {
            String::new()
        } else {
            format!(" of {}", rules.join(", "))
        };
        let _ = writeln!(out, "critical alerts{which} go to: {to}");
    }
    let _ = writeln!(
        out,
        "metrics: {}",
        st.metrics_addr.map_or("off".to_string(), |a| a.to_string())
    );
    let _ = writeln!(out, "configuration OK");
    out
}

/// The `[[actions]]` and whether they will run (SPEC §5): one line each,
/// after a count.
pub(crate) fn action_lines(cfg: &Config) -> Vec<String> {
    let d = DeliveryConfig::from(cfg);
    if d.actions.is_empty() {
        return vec!["actions: none".to_string()];
    }
    let mut out = vec![format!(
        "actions: {}, {}",
        d.actions.len(),
        if d.run_actions {
            "will run (incidentResponse.autoDisableOnSuspicious is true)"
        } else {
            "will not run (incidentResponse.autoDisableOnSuspicious is not true; run logs what it would have run)"
        }
    )];
    for a in &d.actions {
        let rules: Vec<&str> = a.rules.iter().map(|r| r.as_str()).collect();
        out.push(format!(
            "action {}: {} for {} and above, {}, timeout {}: {}",
            escape(&a.name),
            if d.run_actions {
                "will run"
            } else {
                "would run"
            },
            a.min_severity.as_str(),
            if rules.is_empty() {
                "every rule".to_string()
            } else {
                format!("rules {}", rules.join(", "))
            },
            fmt_ms(a.timeout),
            escape(&a.command)
        ));
    }
    out
}

/// `60s`, `1500ms`.
fn fmt_ms(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
