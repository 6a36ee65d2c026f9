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
//! [`names::classify`] accepts, directly in the log directory. What a reader
//! still needs is asked through [`Consumption`]: the daemon answers from its
//! tailer, `mcpwatch rotate` from the checkpoint on disk.
//!
//! # Use from the daemon
//!
//! ```no_run
//! # fn demo(cfg: &mcpwatch::config::Config, metrics: &mcpwatch::metrics::Metrics,
//! #         positions: Vec<mcpwatch::ingest::checkpoint::FilePosition>) {
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

pub mod archive;
pub mod hook;
pub mod names;
pub mod state;

use std::collections::HashMap;
use std::fmt;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use archive::{ArchiveError, CompressStats, Digest256, verify_archive};
pub use names::{INPUT_LOGS, LOGS, LogName, classify};
pub use state::{RotationState, StateError};

use crate::ingest::checkpoint::{FilePosition, TailCheckpoint};
use crate::metrics::Metrics;

/// A rotated file idle this long is compressed even if the writer has not
/// moved on (SPEC §6): nothing is going to finish it any more.
pub const FORCE_IDLE: Duration = Duration::from_secs(24 * 3600);

/// A leftover archive temp (from a crash mid-compression) idle this long is
/// deleted; younger ones may belong to a pass running on another state dir.
pub const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Metric names (SPEC §8 style; `file` is the base log name).
pub const M_ROTATIONS: &str = "mcpwatch_rotations_total";
pub const M_COMPRESSED: &str = "mcpwatch_compressed_files_total";
pub const M_BYTES_IN: &str = "mcpwatch_compress_bytes_in_total";
pub const M_BYTES_OUT: &str = "mcpwatch_compress_bytes_out_total";
pub const M_PRUNED: &str = "mcpwatch_pruned_files_total";
pub const M_VERIFY_FAILURES: &str = "mcpwatch_verify_failures_total";

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
    pub rotate_wait: Duration,
    /// zstd level.
    pub level: i32,
    /// `sh -c` command run after each rotation; `None`: no hook.
    pub post_rotate: Option<String>,
    /// Archives older than this many days (by the time in their name) are
    /// deleted.
    pub retention_days: u32,
    /// `false`: the renamed file is the archive; nothing is compressed.
    pub compress: bool,
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
            ..RotateOptions::new(dir, state_dir)
        }
    }
}

/// What the reader of the logs still needs. The daemon implements it with
/// its tailer; `mcpwatch rotate` with [`CheckpointConsumption`].
pub trait Consumption {
    /// True when no reader has anything left to read in this file: it was
    /// read to its end (`meta.len()`), or it is not followed at all (a
    /// renamed file is read only as the continuation of a followed one).
    fn consumed(&self, path: &Path, meta: &Metadata) -> bool;

    /// Whether the live log at `path` may be renamed now. A tailer that
    /// follows renames by inode says yes; a stopped daemon's checkpoint only
    /// when it has read the file to its end (after a restart it resumes by
    /// name).
    fn may_rename(&self, path: &Path, meta: &Metadata) -> bool;

    /// Whether a rotated file idle for [`FORCE_IDLE`] may be compressed even
    /// though [`Consumption::consumed`] says no. The daemon: yes (SPEC §6; a
    /// tailer behind on a file idle that long is stuck on it). A stopped
    /// daemon's checkpoint: no, it resumes there.
    fn idle_overrides(&self) -> bool {
        true
    }

    /// Why a file is not consumed, for the skip message.
    fn why_not(&self, _path: &Path, _meta: &Metadata) -> String {
        "not yet consumed to its end".into()
    }
}

/// No reader at all (`mcpwatch rotate --no-consumer`): every file is
/// consumed and live logs may be renamed.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoConsumer;

impl Consumption for NoConsumer {
    fn consumed(&self, _: &Path, _: &Metadata) -> bool {
        true
    }
    fn may_rename(&self, _: &Path, _: &Metadata) -> bool {
        true
    }
}

/// A stopped daemon's view, read from `<state_dir>/checkpoint.json`. A file
/// is identified by device + inode; with no checkpoint at all
/// ([`CheckpointConsumption::absent`]) a future `mcpwatch run` would read the
/// live logs from their beginning, so they are not renamed, while rotated
/// files (never read by a fresh daemon) count as consumed.
#[derive(Clone, Debug, Default)]
pub struct CheckpointConsumption {
    files: Vec<FilePosition>,
    /// `Some(why)` when there is no checkpoint.
    absent: Option<String>,
}

impl CheckpointConsumption {
    pub fn new(tail: TailCheckpoint) -> CheckpointConsumption {
        CheckpointConsumption {
            files: tail.files,
            absent: None,
        }
    }

    /// No checkpoint exists; `why` names where it was looked for.
    pub fn absent(why: impl Into<String>) -> CheckpointConsumption {
        CheckpointConsumption {
            files: Vec::new(),
            absent: Some(why.into()),
        }
    }

    fn positions<'a>(&'a self, meta: &'a Metadata) -> impl Iterator<Item = &'a FilePosition> {
        self.files
            .iter()
            .filter(move |p| p.dev == meta.dev() && p.ino == meta.ino())
            // A file shorter than the fingerprint the tailer took of it is
            // not the file it saw (inode reused after a delete).
            .filter(move |p| p.head_len == 0 || meta.len() >= p.head_len)
    }
}

impl Consumption for CheckpointConsumption {
    fn consumed(&self, _: &Path, meta: &Metadata) -> bool {
        self.positions(meta).all(|p| p.offset >= meta.len())
    }
    fn may_rename(&self, _: &Path, meta: &Metadata) -> bool {
        let mut any = false;
        for p in self.positions(meta) {
            if p.offset < meta.len() {
                return false;
            }
            any = true;
        }
        any || meta.len() == 0
    }
    fn idle_overrides(&self) -> bool {
        false
    }
    fn why_not(&self, _: &Path, meta: &Metadata) -> String {
        if let Some(why) = &self.absent {
            return why.clone();
        }
        match self.positions(meta).map(|p| p.offset).min() {
            Some(off) => format!("checkpoint has consumed {off} of its {} bytes", meta.len()),
            None => "not in the checkpoint: the daemon has not read it yet".into(),
        }
    }
}

/// The running daemon's view: the tailer's current positions (the same
/// [`FilePosition`]s it checkpoints), taken just after a tail cycle.
///
/// A live log may be renamed once the tailer follows it (it then keeps
/// reading the renamed file by inode, SPEC §6), even if it is behind; a log
/// the tailer has not opened yet waits for the next cycle, or its content
/// would never be read. A rotated file is consumed when no position on it is
/// behind its size.
#[derive(Clone, Debug, Default)]
pub struct DaemonConsumption {
    inner: CheckpointConsumption,
}

impl DaemonConsumption {
    pub fn new(positions: Vec<FilePosition>) -> DaemonConsumption {
        DaemonConsumption {
            inner: CheckpointConsumption::new(TailCheckpoint {
                files: positions,
                ..TailCheckpoint::default()
            }),
        }
    }
}

impl Consumption for DaemonConsumption {
    fn consumed(&self, path: &Path, meta: &Metadata) -> bool {
        self.inner.consumed(path, meta)
    }
    fn may_rename(&self, _: &Path, meta: &Metadata) -> bool {
        self.inner.positions(meta).next().is_some()
    }
    fn why_not(&self, path: &Path, meta: &Metadata) -> String {
        match self.inner.positions(meta).next() {
            Some(_) => self.inner.why_not(path, meta),
            None => "the tailer has not opened it yet".into(),
        }
    }
}

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
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// `90d`, `3h12m`, `45s`: ages as an operator reads them.
pub fn fmt_age(d: Duration) -> String {
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
    fn act(&mut self, a: Action) {
        // Skips repeat every minute and verifications of old archives come
        // by the hundred at start: debug. What changed the directory: info.
        if matches!(a, Action::Skip { .. } | Action::Verify { .. }) {
            tracing::debug!(dry_run = self.dry_run, "{a}");
        } else {
            tracing::info!(dry_run = self.dry_run, "{a}");
        }
        self.actions.push(a);
    }
    fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        self.warnings.push(msg);
    }
    fn problem(&mut self, msg: String) {
        tracing::error!("{msg}");
        self.problems.push(msg);
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

/// Identity and version of an archive already verified by this rotator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }
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

    pub fn options(&self) -> &RotateOptions {
        &self.opts
    }

    /// Registers help texts and makes every counter visible at 0.
    pub fn describe_metrics(metrics: &Metrics) {
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
            let Some(reason) = reason else { continue };
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

    /// Compresses rotated files that are due; returns the archives created.
    fn compress_rotated(
        &mut self,
        now: DateTime<Utc>,
        consumption: &dyn Consumption,
        metrics: &Metrics,
        entries: &[Entry],
        moved_on_unknown: &[&str],
        report: &mut PassReport,
    ) -> Vec<PathBuf> {
        let mut created = Vec::new();
        let o = self.opts.clone();
        for e in entries {
            let base = e.kind.base();
            let rotated_at = match e.kind {
                LogName::Rotated { zst: false, ts, .. } => Some(ts),
                LogName::Numbered { .. } => None,
                _ => continue,
            };
            let last_write = mtime(&e.meta);
            let idle = age(now, last_write);
            if let Some(ts) = rotated_at {
                let wait = chrono::Duration::from_std(o.rotate_wait).unwrap_or_default();
                if last_write > ts + wait && idle < o.rotate_wait {
                    report.warn(format!(
                        "a writer keeps writing into {} (last write {} after its rotation); \
                         make it reopen {base} after rotation (post_rotate hook, or open per write)",
                        e.name,
                        fmt_age(age(last_write, ts)),
                    ));
                }
            }
            if !o.compress {
                continue;
            }
            let consumed = consumption.consumed(&e.path, &e.meta);
            let moved_on = !moved_on_unknown.contains(&base)
                && std::fs::symlink_metadata(o.dir.join(base))
                    .map(|m| m.is_file())
                    .unwrap_or(false);
            let due_a = consumed && idle >= o.rotate_wait && moved_on;
            let due_b = idle >= FORCE_IDLE && (consumed || consumption.idle_overrides());
            if !(due_a || due_b) {
                let reason = if !consumed {
                    format!("waiting: {}", consumption.why_not(&e.path, &e.meta))
                } else if idle < o.rotate_wait {
                    format!(
                        "waiting: idle {} < rotate_wait {}",
                        fmt_age(idle),
                        fmt_age(o.rotate_wait)
                    )
                } else {
                    format!(
                        "waiting: no new {base} yet (the writer has not moved on); \
                         compressed after 24h idle"
                    )
                };
                report.act(Action::Skip {
                    path: e.path.clone(),
                    reason,
                });
                continue;
            }
            if rotated_at.is_some() {
                let dst = PathBuf::from(format!("{}{}", e.path.display(), names::ZST));
                if exists(&dst) {
                    self.finish_interrupted(&e.path, &e.meta, &dst, metrics, report);
                    // Verified there; not again below.
                    created.push(dst);
                    continue;
                }
                self.compress_one(e, &e.path, &dst, idle, metrics, report, &mut created);
            } else {
                // `<log>.<N>`: first take a name with the time of compression,
                // so a crash between here and the delete cannot archive the
                // same file twice under two names.
                let (_, plain) = self.free_rotated_name(base, now, 0);
                let dst = PathBuf::from(format!("{}{}", plain.display(), names::ZST));
                if o.dry_run {
                    self.compress_one(e, &e.path, &dst, idle, metrics, report, &mut created);
                    continue;
                }
                if let Err(err) = archive::rename_noreplace(&e.path, &plain) {
                    report.problem(format!("cannot take {} for compression: {err}", e.name));
                    continue;
                }
                archive::sync_dir(&o.dir);
                self.compress_one(e, &plain, &dst, idle, metrics, report, &mut created);
            }
        }
        created
    }

    #[allow(clippy::too_many_arguments)]
    fn compress_one(
        &mut self,
        e: &Entry,
        src: &Path,
        dst: &Path,
        idle: Duration,
        metrics: &Metrics,
        report: &mut PassReport,
        created: &mut Vec<PathBuf>,
    ) {
        let mut action = Action::Compress {
            from: e.path.clone(),
            to: dst.to_path_buf(),
            size: e.meta.len(),
            size_out: 0,
            idle,
        };
        if self.opts.dry_run {
            report.act(action);
            return;
        }
        match archive::archive_file(src, dst, self.opts.level) {
            Ok(stats) => {
                metrics.inc(M_COMPRESSED, &[], 1);
                metrics.inc(M_BYTES_IN, &[], stats.bytes_in);
                metrics.inc(M_BYTES_OUT, &[], stats.bytes_out);
                if let Action::Compress { size, size_out, .. } = &mut action {
                    *size = stats.bytes_in;
                    *size_out = stats.bytes_out;
                }
                report.act(action);
                if let Ok(m) = std::fs::symlink_metadata(dst) {
                    self.verified
                        .insert(dst.to_path_buf(), (Stamp::of(&m), true));
                }
                created.push(dst.to_path_buf());
            }
            Err(err @ ArchiveError::Changed { .. }) => {
                report.warn(format!("{err}; compression retried on a later pass"));
            }
            Err(err) if err.is_verify_failure() => {
                metrics.inc(M_VERIFY_FAILURES, &[], 1);
                report.verify_failures += 1;
                report.problem(format!("{err}; kept {} uncompressed", name_of(src)));
            }
            Err(err) => report.problem(format!("cannot compress {}: {err}", name_of(src))),
        }
    }

    /// A plain rotated file and its archive both exist: a pass was
    /// interrupted between the archive's rename and the plain file's delete.
    /// Delete the plain file only if the archive holds exactly its bytes.
    fn finish_interrupted(
        &mut self,
        plain: &Path,
        meta: &Metadata,
        archive: &Path,
        metrics: &Metrics,
        report: &mut PassReport,
    ) {
        let action = Action::Delete {
            path: plain.to_path_buf(),
            size: meta.len(),
            why: format!("{} already holds it (verified first)", name_of(archive)),
        };
        if self.opts.dry_run {
            if let Ok(m) = std::fs::symlink_metadata(archive) {
                report.act(Action::Verify {
                    archive: archive.to_path_buf(),
                    size: m.len(),
                });
            }
            report.act(action);
            return;
        }
        match archive::archive_matches(archive, plain) {
            Ok(true) => match archive::remove_same_file(plain, meta) {
                Ok(()) => {
                    archive::sync_dir(&self.opts.dir);
                    report.act(action);
                }
                Err(e) => report.problem(e.to_string()),
            },
            Ok(false) => {
                metrics.inc(M_VERIFY_FAILURES, &[], 1);
                report.verify_failures += 1;
                report.problem(format!(
                    "{} and {} both exist and differ; both kept for an operator to decide",
                    name_of(plain),
                    name_of(archive)
                ));
            }
            Err(e) if e.is_verify_failure() => {
                metrics.inc(M_VERIFY_FAILURES, &[], 1);
                report.verify_failures += 1;
                report.problem(format!("{e}; kept {} uncompressed", name_of(plain)));
            }
            Err(e) => report.problem(e.to_string()),
        }
    }

    /// Verifies archives not yet verified by this rotator (or changed since).
    fn verify_existing(
        &mut self,
        metrics: &Metrics,
        entries: &[Entry],
        created: &[PathBuf],
        report: &mut PassReport,
    ) {
        for e in entries {
            if !matches!(e.kind, LogName::Rotated { zst: true, .. }) || created.contains(&e.path) {
                continue;
            }
            let stamp = Stamp::of(&e.meta);
            if self.verified.get(&e.path).is_some_and(|(s, _)| *s == stamp) {
                continue;
            }
            let action = Action::Verify {
                archive: e.path.clone(),
                size: e.meta.len(),
            };
            if self.opts.dry_run {
                report.act(action);
                continue;
            }
            match archive::verify_archive(&e.path) {
                Ok(_) => {
                    report.act(action);
                    self.verified.insert(e.path.clone(), (stamp, true));
                }
                Err(err) if err.is_verify_failure() => {
                    metrics.inc(M_VERIFY_FAILURES, &[], 1);
                    report.verify_failures += 1;
                    report.problem(format!("{err} (left in place for an operator)"));
                    self.verified.insert(e.path.clone(), (stamp, false));
                }
                Err(err) => report.problem(err.to_string()),
            }
        }
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
