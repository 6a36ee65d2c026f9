//! Rotation, zstd compression and retention of the log directory (SPEC §6).
//!
//! One [`Rotator::pass`] looks at the log directory once and does what is
//! due, in this order:
//!
//! 1. **rotate** each live log (`tool-usage.log`, `approvals.log`,
//!    `errors.log`, `alerts.log`) that exceeds `max_size`, or, when `daily`,
//!    at the first pass after UTC midnight: rename it to
//!    `<log>.<YYYYMMDD-HHMMSS>` (`-1`, `-2`, … on a collision) and run the
//!    `post_rotate` hook;
//! 2. **prune** archives whose name is older than `retention.days`;
//! 3. **compress** rotated files (ours and `<log>.<N>` from another tool)
//!    once the reader has consumed them, they have been idle `rotate_wait`
//!    and the writer has moved on to a new live file, or once idle 24 h;
//!    every archive is verified before its plain file is deleted;
//! 4. **verify** archives found in the directory (each once per [`Rotator`]
//!    while unchanged), so a corrupt archive is reported, never taken as
//!    done.
//!
//! The pass is synchronous and never reads the wall clock: the caller passes
//! `now`, so tests drive midnight and 90-day ages without sleeping. It never
//! follows a symbolic link and only touches regular files whose names
//! [`crate::logs::classify`] accepts, directly in the log directory. What a reader
//! still needs is asked through [`Consumption`]: the daemon answers from its
//! tailer, `mcpwatch rotate` from the checkpoint on disk.
//!
//! # Use from the daemon
//!
//! ```no_run
//! # fn demo(cfg: &mcpwatch::config::Config, metrics: &mcpwatch::metrics::Metrics,
//! #         positions: Vec<mcpwatch::state::FilePosition>) {
//! use mcpwatch::rotate::{DaemonConsumption, RotateOptions, Rotator};
//! let dir = std::path::Path::new(".elevenlabs/audit");
//! let state_dir = std::path::Path::new(".elevenlabs/mcpwatch");
//! // Once, at start (keeps the set of archives already verified).
//! let mut rotator = Rotator::new(RotateOptions::from_config(cfg, dir, state_dir));
//! // Every minute, right after a tail cycle, on a blocking thread
//! // (compression of a 100 MiB file takes about a second):
//! let report = rotator
//!     .pass(chrono::Utc::now(), &DaemonConsumption::new(positions), metrics)
//!     .expect("log directory readable");
//! if report.rotated.iter().any(|(base, _)| *base == "alerts.log") {
//!     // reopen alerts.log before the next append
//! }
//! # }
//! ```
//!
//! # Rooms
//!
//! This file holds the options, the pass and its first two steps (rotate,
//! prune); `consume` answers what a reader still needs, `action` is
//! the pass's plan and report, and `compress` holds steps 3 and 4.

mod action;
mod archive;
mod compress;
mod consume;
pub(crate) mod hook;
use crate::logs as names;
pub(crate) mod state;

use std::collections::HashMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use action::{Action, PassReport};
pub(crate) use action::{RotateReason, fmt_age};
pub(crate) use archive::ArchiveError;
pub use archive::{compress_copy, verify_archive};
pub use consume::{CheckpointConsumption, Consumption, DaemonConsumption, NoConsumer};
pub(crate) use names::{INPUT_LOGS, LOGS, LogName, classify};
pub(crate) use state::{RotationState, StateError};

use crate::metrics::Metrics;
use action::name_of;
use compress::Stamp;

/// A rotated file idle this long is compressed even if the writer has not
/// moved on (SPEC §6): nothing is going to finish it any more.
pub(crate) const FORCE_IDLE: Duration = Duration::from_secs(24 * 3600);

/// A leftover archive temp (from a crash mid-compression) idle this long is
/// deleted; younger ones may belong to a pass running on another state dir.
pub(crate) const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Metric names (SPEC §8 style; `file` is the base log name).
pub(crate) const M_ROTATIONS: &str = "mcpwatch_rotations_total";
pub const M_COMPRESSED: &str = "mcpwatch_compressed_files_total";
pub const M_BYTES_IN: &str = "mcpwatch_compress_bytes_in_total";
pub const M_BYTES_OUT: &str = "mcpwatch_compress_bytes_out_total";
pub const M_PRUNED: &str = "mcpwatch_pruned_files_total";
pub(crate) const M_VERIFY_FAILURES: &str = "mcpwatch_verify_failures_total";

/// Everything one pass needs to know; build it from the configuration with
/// [`RotateOptions::from_config`] or directly (tests, embedding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotateOptions {
    /// The log directory; nothing outside it is touched.
    pub dir: PathBuf,
    /// Where `rotation.json` lives (the daemon's state directory).
    pub state_dir: PathBuf,
    /// Rotate a live log larger than this (bytes).
    pub max_size: u64,
    /// Rotate at the first pass after UTC midnight.
    pub daily: bool,
    /// Idle time before a consumed rotated file is compressed.
    pub(crate) rotate_wait: Duration,
    /// zstd level.
    pub(crate) level: i32,
    /// `sh -c` command run after each rotation; `None`: no hook.
    pub post_rotate: Option<String>,
    /// Archives older than this many days (by the time in their name) are
    /// deleted.
    pub(crate) retention_days: u32,
    /// `false`: the renamed file is the archive; nothing is compressed.
    pub compress: bool,
    /// Right after renaming a log, create an empty one under its name (as
    /// logrotate's `create`); the writer has then moved on once that file
    /// is no longer empty.
    pub create: bool,
    /// Plan only: report every action, change nothing.
    pub dry_run: bool,
}

impl RotateOptions {
    /// SPEC defaults: 100 MiB, daily, 60 s, level 3, no hook, 90 days,
    /// compressed.
    pub fn new(dir: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> RotateOptions {
        RotateOptions {
            dir: dir.into(),
            state_dir: state_dir.into(),
            max_size: 100 * 1024 * 1024,
            daily: true,
            rotate_wait: Duration::from_secs(60),
            level: 3,
            post_rotate: None,
            retention_days: 90,
            compress: true,
            create: false,
            dry_run: false,
        }
    }

    /// The `[rotation]` settings and the retention of a loaded configuration.
    pub fn from_config(
        cfg: &crate::config::Config,
        dir: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
    ) -> RotateOptions {
        let r = &cfg.settings.rotation;
        let hook = r.post_rotate.trim();
        RotateOptions {
            max_size: r.max_size,
            daily: r.daily,
            rotate_wait: Duration::from_millis(r.rotate_wait.max(0) as u64),
            level: r.level,
            post_rotate: (!hook.is_empty()).then(|| r.post_rotate.clone()),
            retention_days: cfg.retention.days,
            compress: cfg.retention.compress,
            create: r.create,
            ..RotateOptions::new(dir, state_dir)
        }
    }
}
/// Errors that stop a pass before it starts (the directory cannot be read,
/// the state cannot be read). Per-file failures are in
/// [`PassReport::problems`] instead.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("cannot read log directory {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}
/// One file of the directory the rotator may touch.
#[derive(Debug)]
struct Entry {
    path: PathBuf,
    name: String,
    kind: LogName,
    meta: Metadata,
}

/// The rotator. Keep one for the life of the daemon so archives are
/// verified once, not every minute; `mcpwatch rotate` makes one per pass.
#[derive(Debug)]
pub struct Rotator {
    opts: RotateOptions,
    /// Archives verified so far, with the verdict (`true`: good).
    verified: HashMap<PathBuf, (Stamp, bool)>,
}

fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

fn mtime(meta: &Metadata) -> DateTime<Utc> {
    meta.modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

impl Rotator {
    pub fn new(opts: RotateOptions) -> Rotator {
        Rotator {
            opts,
            verified: HashMap::new(),
        }
    }

    /// Registers help texts and makes every counter visible at 0.
    pub(crate) fn describe_metrics(metrics: &Metrics) {
        metrics.describe(M_ROTATIONS, "counter", "Log files rotated (renamed)");
        metrics.describe(
            M_COMPRESSED,
            "counter",
            "Rotated files compressed and verified",
        );
        metrics.describe(M_BYTES_IN, "counter", "Bytes read by compression");
        metrics.describe(M_BYTES_OUT, "counter", "Bytes of archives written");
        metrics.describe(M_PRUNED, "counter", "Archives deleted by retention");
        metrics.describe(
            M_VERIFY_FAILURES,
            "counter",
            "Archives that failed verification (plain file kept) or were found corrupt",
        );
        for base in LOGS {
            metrics.touch(M_ROTATIONS, &[("file", base)]);
        }
        for name in [
            M_COMPRESSED,
            M_BYTES_IN,
            M_BYTES_OUT,
            M_PRUNED,
            M_VERIFY_FAILURES,
        ] {
            metrics.touch(name, &[]);
        }
    }

    /// One pass over the log directory at wall-clock time `now`.
    pub fn pass(
        &mut self,
        now: DateTime<Utc>,
        consumption: &dyn Consumption,
        metrics: &Metrics,
    ) -> Result<PassReport, RotateError> {
        Self::describe_metrics(metrics);
        let mut report = PassReport {
            dry_run: self.opts.dry_run,
            ..PassReport::default()
        };
        let mut state = match RotationState::load(&self.opts.state_dir) {
            Ok(s) => s,
            Err(e @ StateError::Parse { .. }) => {
                // A damaged state file must not stop rotation by size; the
                // daily clock restarts from this pass.
                report.problem(format!("{e}; starting from an empty rotation state"));
                RotationState::default()
            }
            Err(e) => return Err(e.into()),
        };
        let mut state_changed = false;
        let mut entries = self.scan_dir(now, &mut report)?;

        let just_rotated = self.rotate_live(
            now,
            consumption,
            metrics,
            &mut entries,
            &mut state,
            &mut state_changed,
            &mut report,
        );
        self.prune(now, consumption, metrics, &mut entries, &mut report);
        // A dry run cannot know whether post_rotate makes the writer create
        // a new live file at once; assume not (the real pass looks).
        let moved_on_unknown: &[&str] = if self.opts.dry_run {
            &just_rotated
        } else {
            &[]
        };
        let created = self.compress_rotated(
            now,
            consumption,
            metrics,
            &entries,
            moved_on_unknown,
            &mut report,
        );
        self.verify_existing(metrics, &entries, &created, &mut report);

        if state_changed
            && !self.opts.dry_run
            && let Err(e) = state.save(&self.opts.state_dir)
        {
            report.problem(e.to_string());
        }
        Ok(report)
    }

    /// Lists the directory: our files (regular files only) and stale temps.
    fn scan_dir(
        &self,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> Result<Vec<Entry>, RotateError> {
        let dir = &self.opts.dir;
        let rd = std::fs::read_dir(dir).map_err(|source| RotateError::ReadDir {
            path: dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for de in rd {
            let de = match de {
                Ok(d) => d,
                Err(e) => {
                    report.problem(format!("{}: {e}", dir.display()));
                    continue;
                }
            };
            let Ok(name) = de.file_name().into_string() else {
                continue;
            };
            let path = dir.join(&name);
            if let Some(target) = names::temp_target(&name) {
                self.clean_temp(now, &path, target, report);
                continue;
            }
            let Some(kind) = classify(&name) else {
                continue;
            };
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    report.problem(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            if !meta.is_file() {
                let what = if meta.file_type().is_symlink() {
                    "a symbolic link"
                } else {
                    "not a regular file"
                };
                report.act(Action::Skip {
                    path,
                    reason: format!("{what}; left alone"),
                });
                continue;
            }
            out.push(Entry {
                path,
                name,
                kind,
                meta,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn clean_temp(&self, now: DateTime<Utc>, path: &Path, target: &str, report: &mut PassReport) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if !meta.is_file() || age(now, mtime(&meta)) < STALE_TEMP {
            return;
        }
        let action = Action::Delete {
            path: path.to_path_buf(),
            size: meta.len(),
            why: format!("unfinished temp of {target} from an interrupted pass"),
        };
        if self.opts.dry_run {
            report.act(action);
            return;
        }
        match archive::remove_same_file(path, &meta) {
            Ok(()) => report.act(action),
            Err(e) => report.problem(e.to_string()),
        }
    }

    /// Picks `<base>.<ts>[-N]` so that neither it nor its `.zst` (nor its
    /// archive temp) exists.
    fn free_rotated_name(&self, base: &str, now: DateTime<Utc>, from_seq: u64) -> (u64, PathBuf) {
        let mut seq = from_seq;
        loop {
            let name = names::rotated_name(base, now, seq);
            let zst = format!("{name}{}", names::ZST);
            let dir = &self.opts.dir;
            if !exists(&dir.join(&name))
                && !exists(&dir.join(&zst))
                && !exists(&dir.join(names::temp_name(&zst)))
            {
                return (seq, dir.join(name));
            }
            seq += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rotate_live(
        &self,
        now: DateTime<Utc>,
        consumption: &dyn Consumption,
        metrics: &Metrics,
        entries: &mut [Entry],
        state: &mut RotationState,
        state_changed: &mut bool,
        report: &mut PassReport,
    ) -> Vec<&'static str> {
        let o = &self.opts;
        let mut just_rotated = Vec::new();
        for base in LOGS {
            let Some(idx) = entries
                .iter()
                .position(|e| e.kind == LogName::Live { base })
            else {
                continue;
            };
            let size = entries[idx].meta.len();
            let last = state.last_rotation.get(base).copied();
            let reason = if size > o.max_size {
                Some(RotateReason::Size)
            } else if o.daily {
                match last {
                    // First sight: start the daily clock, as logrotate does.
                    None => {
                        state.last_rotation.insert(base.to_string(), now);
                        *state_changed = true;
                        None
                    }
                    Some(l) if now.date_naive() > l.date_naive() => {
                        if size > 0 {
                            Some(RotateReason::Daily)
                        } else {
                            // Nothing to rotate today; do not rotate at noon
                            // when the first line arrives.
                            state.last_rotation.insert(base.to_string(), now);
                            *state_changed = true;
                            None
                        }
                    }
                    Some(_) => None,
                }
            } else {
                None
            };
            let Some(reason) = reason else {
                if o.dry_run {
                    // The plan says why each log stays, even when nothing
                    // is due (the real pass keeps its report to actions).
                    let daily = match (o.daily, last) {
                        (false, _) => "no daily rotation".to_string(),
                        (true, None) => "daily rotation after the next UTC midnight".to_string(),
                        (true, Some(l)) => format!(
                            "daily rotation after UTC midnight (last {})",
                            l.format("%Y-%m-%dT%H:%M:%SZ")
                        ),
                    };
                    report.act(Action::Skip {
                        path: entries[idx].path.clone(),
                        reason: format!(
                            "not due: {size} bytes, max_size {} bytes; {daily}",
                            o.max_size
                        ),
                    });
                }
                continue;
            };
            let path = entries[idx].path.clone();
            if INPUT_LOGS.contains(&base) && !consumption.may_rename(&path, &entries[idx].meta) {
                let due = match reason {
                    RotateReason::Size => "rotation due (larger than max_size)",
                    RotateReason::Daily => "daily rotation due",
                };
                let why = consumption.why_not(&path, &entries[idx].meta);
                report.act(Action::Skip {
                    path,
                    reason: format!("{due} but left alone: {why}"),
                });
                continue;
            }
            let mut seq = 0;
            let renamed = loop {
                let (s, to) = self.free_rotated_name(base, now, seq);
                if o.dry_run {
                    break Some((s, to));
                }
                match archive::rename_noreplace(&path, &to) {
                    Ok(()) => break Some((s, to)),
                    // Raced with something creating that name: next suffix.
                    Err(ArchiveError::Exists { .. }) => seq = s + 1,
                    Err(e) => {
                        report.problem(format!("cannot rotate: {e}"));
                        break None;
                    }
                }
            };
            let Some((s, to)) = renamed else { continue };
            report.act(Action::Rotate {
                from: path.clone(),
                to: to.clone(),
                size,
                reason,
            });
            if o.create {
                let made = if o.dry_run {
                    Ok(())
                } else {
                    archive::create_like(&path, &entries[idx].meta)
                };
                match made {
                    Ok(()) => report.act(Action::Create { path: path.clone() }),
                    Err(e) => report.problem(format!("cannot create a new {base}: {e}")),
                }
            }
            if !o.dry_run {
                archive::sync_dir(&o.dir);
                metrics.inc(M_ROTATIONS, &[("file", base)], 1);
                state.last_rotation.insert(base.to_string(), now);
                *state_changed = true;
                report.rotated.push((base, to.clone()));
            }
            // The renamed file takes the live file's place in the list, so
            // the steps below see it under its new name (in a dry run too,
            // so the plan shows what the pass would do next).
            just_rotated.push(base);
            let e = &mut entries[idx];
            e.name = name_of(&to);
            e.path = to.clone();
            e.kind = LogName::Rotated {
                base,
                ts: now,
                seq: (s > 0).then_some(s),
                zst: false,
            };
            if let Some(cmd) = &o.post_rotate {
                let ok = if o.dry_run {
                    true
                } else {
                    match hook::run_post_rotate(cmd, &path, &to) {
                        Ok(()) => true,
                        Err(e) => {
                            report.problem(format!("post_rotate after rotating {base}: {e}"));
                            false
                        }
                    }
                };
                report.act(Action::PostRotate {
                    command: cmd.clone(),
                    ok,
                });
            }
        }
        just_rotated
    }

    /// Deletes archives older than the retention by the time in their name.
    fn prune(
        &self,
        now: DateTime<Utc>,
        consumption: &dyn Consumption,
        metrics: &Metrics,
        entries: &mut Vec<Entry>,
        report: &mut PassReport,
    ) {
        let keep = Duration::from_secs(u64::from(self.opts.retention_days) * 86400);
        let mut pruned = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let LogName::Rotated { ts, zst, .. } = e.kind else {
                continue;
            };
            let old = age(now, ts);
            if old <= keep {
                continue;
            }
            if !zst && !consumption.consumed(&e.path, &e.meta) {
                let why = consumption.why_not(&e.path, &e.meta);
                report.act(Action::Skip {
                    path: e.path.clone(),
                    reason: format!("past retention but left alone: {why}"),
                });
                continue;
            }
            let action = Action::Delete {
                path: e.path.clone(),
                size: e.meta.len(),
                why: format!(
                    "{} old, retention {}d",
                    fmt_age(old),
                    self.opts.retention_days
                ),
            };
            if self.opts.dry_run {
                report.act(action);
                pruned.push(i);
                continue;
            }
            match archive::remove_same_file(&e.path, &e.meta) {
                Ok(()) => {
                    metrics.inc(M_PRUNED, &[], 1);
                    report.act(action);
                    pruned.push(i);
                }
                Err(err) => report.problem(format!("cannot prune: {err}")),
            }
        }
        for i in pruned.into_iter().rev() {
            entries.remove(i);
        }
        archive::sync_dir(&self.opts.dir);
    }
}
