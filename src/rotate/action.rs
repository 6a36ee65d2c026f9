//! A pass's actions and its report: what [`Rotator::pass`](super::Rotator::pass)
//! did or, under `--dry-run`, plans to do, each printable as one line an
//! operator reads (`rotate a -> b (…; larger than max_size)`).
//!
//! Kept apart from the pass so the plan `mcpwatch rotate --dry-run` prints
//! and the log lines of the daemon come from one place.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a live log is rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotateReason {
    /// Larger than `max_size`.
    Size,
    /// First pass after UTC midnight.
    Daily,
}

/// One action of a pass: done, or planned under `--dry-run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Rotate {
        from: PathBuf,
        to: PathBuf,
        size: u64,
        reason: RotateReason,
    },
    PostRotate {
        command: String,
        ok: bool,
    },
    /// Compress `from` into `to` (verify and delete `from` are part of it).
    Compress {
        from: PathBuf,
        to: PathBuf,
        size: u64,
        /// Size of the archive (0 when planned).
        size_out: u64,
        idle: Duration,
    },
    /// Verify an existing archive by decompressing it.
    Verify {
        archive: PathBuf,
        size: u64,
    },
    Delete {
        path: PathBuf,
        size: u64,
        why: String,
    },
    Skip {
        path: PathBuf,
        reason: String,
    },
    /// Create an empty live log right after its rotation (`create`).
    Create {
        path: PathBuf,
    },
}

pub(super) fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// `90d`, `3h12m`, `45s`: ages as an operator reads them.
pub(crate) fn fmt_age(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m{sec:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{days}d{h:02}h"),
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Rotate {
                from,
                to,
                size,
                reason,
            } => {
                let why = match reason {
                    RotateReason::Size => "larger than max_size",
                    RotateReason::Daily => "first pass after UTC midnight",
                };
                write!(
                    f,
                    "rotate {} -> {} ({size} bytes; {why})",
                    name_of(from),
                    name_of(to)
                )
            }
            Action::PostRotate { command, ok } => {
                write!(
                    f,
                    "post_rotate `{command}`{}",
                    if *ok { "" } else { " FAILED" }
                )
            }
            Action::Compress {
                from,
                to,
                size,
                size_out,
                idle,
            } => {
                write!(
                    f,
                    "compress {} -> {} ({size} bytes, idle {}",
                    name_of(from),
                    name_of(to),
                    fmt_age(*idle)
                )?;
                if *size_out > 0 {
                    write!(f, "; {size_out} bytes compressed")?;
                }
                write!(f, "), verify, delete {}", name_of(from))
            }
            Action::Verify { archive, size } => {
                write!(f, "verify {} ({size} bytes)", name_of(archive))
            }
            Action::Delete { path, size, why } => {
                write!(f, "delete {} ({size} bytes; {why})", name_of(path))
            }
            Action::Skip { path, reason } => write!(f, "skip {}: {reason}", name_of(path)),
            Action::Create { path } => write!(f, "create empty {}", name_of(path)),
        }
    }
}

/// What one pass did (or, under `dry_run`, would do).
#[derive(Clone, Debug, Default)]
pub struct PassReport {
    pub dry_run: bool,
    pub actions: Vec<Action>,
    /// Logs renamed in this pass: (base name, new path). The daemon reopens
    /// `alerts.log` when it appears here.
    pub rotated: Vec<(&'static str, PathBuf)>,
    /// Writers still writing into renamed files, archives kept back because
    /// their source changed under us.
    pub warnings: Vec<String>,
    /// Failures: verification failures, corrupt archives, I/O errors, hook
    /// failures. Each was logged; none stopped the pass.
    pub problems: Vec<String>,
    /// Verification failures and corrupt archives found in this pass.
    pub verify_failures: u64,
}

impl PassReport {
    pub(super) fn act(&mut self, a: Action) {
        // Skips repeat every minute and verifications of old archives come
        // by the hundred at start: debug. What changed the directory: info.
        if matches!(a, Action::Skip { .. } | Action::Verify { .. }) {
            tracing::debug!(dry_run = self.dry_run, "{a}");
        } else {
            tracing::info!(dry_run = self.dry_run, "{a}");
        }
        self.actions.push(a);
    }
    pub(super) fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        self.warnings.push(msg);
    }
    pub(super) fn problem(&mut self, msg: String) {
        tracing::error!("{msg}");
        self.problems.push(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_an_operator_writes_them() {
        assert_eq!(fmt_age(Duration::from_secs(45)), "45s");
        assert_eq!(fmt_age(Duration::from_secs(125)), "2m05s");
        assert_eq!(fmt_age(Duration::from_secs(3 * 3600 + 60)), "3h01m");
        assert_eq!(fmt_age(Duration::from_secs(91 * 86400)), "91d00h");
    }
}
