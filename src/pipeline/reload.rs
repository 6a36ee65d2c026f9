//! `SIGHUP` (SPEC §9): the four configuration sources are loaded again
//! and the running daemon takes the result, or refuses it whole.
//!
//! Refused, with every reason logged, when any source has an error or when
//! a setting that needs a restart changed (`input.dir`, `state_dir`,
//! `metrics_addr`: the lock, the files followed and the listening socket
//! belong to the process). Taken, the rules are rebuilt (a rule keeps its
//! state when nothing but its `severity`, `realert`, `threshold` or
//! `enabled` changed: [`Engine::reconfigure`](crate::detect::Engine)), the
//! tailer and the parser take the new input settings, the next rotation
//! pass the new rotation settings, and delivery restarts on the new
//! channels and routes when they changed (what is pending stays in the
//! outbox; pending work for a channel no longer configured goes to the
//! dead letters, as at a start).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Daemon, RunOptions};
use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::rotate::RotateOptions;

/// The metric counting reloads by `result` (`ok`, `refused`).
pub(super) const M_RELOADS: &str = "mcpwatch_config_reloads_total";

impl RunOptions {
    /// The configuration loaded again from [`RunOptions::sources`], or
    /// every reason it is refused.
    fn load_again(&self) -> Result<Config, Vec<String>> {
        let Some(sources) = &self.sources else {
            return Err(vec![
                "this daemon's configuration was not loaded from files".to_string(),
            ]);
        };
        let new = config::load(sources)
            .map_err(|errors| errors.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let (dir, state_dir) = new.dirs(sources.dir.as_deref(), self.state_dir_flag.as_deref());
        let metrics_addr = self.metrics_addr_flag.unwrap_or(new.settings.metrics_addr);
        let mut refused = Vec::new();
        let mut restart = |what: &str, was: String, now: String| {
            if was != now {
                refused.push(format!(
                    "{what} changed from {was} to {now}: that takes a restart"
                ));
            }
        };
        let shown = |p: &PathBuf| p.display().to_string();
        restart("input.dir", shown(&self.dir), shown(&dir));
        restart("state_dir", shown(&self.state_dir), shown(&state_dir));
        let addr = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_string(), |a| a.to_string());
        restart("metrics_addr", addr(self.metrics_addr), addr(metrics_addr));
        if refused.is_empty() {
            Ok(new)
        } else {
            Err(refused)
        }
    }

    /// On `SIGHUP`: the configuration loaded again, or `None` with every
    /// reason it was refused logged. Counted either way.
    pub(super) fn reload_config(&self, metrics: &Metrics) -> Option<Config> {
        match self.load_again() {
            Ok(new) => {
                metrics.inc(M_RELOADS, &[("result", "ok")], 1);
                for w in &new.warnings {
                    tracing::warn!("{w}");
                }
                Some(new)
            }
            Err(reasons) => {
                metrics.inc(M_RELOADS, &[("result", "refused")], 1);
                tracing::error!(
                    "configuration reload refused ({} problems); the running configuration stays",
                    reasons.len()
                );
                for r in reasons {
                    tracing::error!("reload refused: {r}");
                }
                None
            }
        }
    }
}

impl Daemon {
    /// Takes a configuration [`Reload::load`] accepted (delivery is the
    /// caller's: it lives on the runtime).
    pub(super) fn reconfigure(&mut self, old: &Config, new: &Config) {
        for rule in self.engine.reconfigure(old, new) {
            tracing::info!(
                "rule {} starts empty: a setting other than severity, realert, threshold or enabled changed",
                rule.as_str()
            );
        }
        let input = &new.settings.input;
        self.parser.max_line_bytes = input.max_line_bytes;
        self.tailer.reconfigure(
            input.max_line_bytes,
            Duration::from_millis(new.settings.rotation.rotate_wait.max(0) as u64),
        );
        self.next_rotation = Some(RotateOptions::from_config(new, &self.dir, &self.state_dir));
    }
}
