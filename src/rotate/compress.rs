//! Steps 3 and 4 of a pass: compress rotated files once they are due, and
//! verify archives found in the directory (each once per [`Rotator`] while
//! unchanged, remembered by their [`Stamp`]).
//!
//! The archive format and its checks live in [`archive`];
//! this file decides when a file is due and records what happened.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::action::name_of;
use super::{
    Action, ArchiveError, Consumption, Entry, FORCE_IDLE, LogName, M_BYTES_IN, M_BYTES_OUT,
    M_COMPRESSED, M_VERIFY_FAILURES, PassReport, Rotator, age, archive, exists, fmt_age, mtime,
    names,
};
use crate::metrics::Metrics;

/// Identity and version of an archive already verified by this rotator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
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

impl Rotator {
    /// Compresses rotated files that are due; returns the archives created.
    pub(super) fn compress_rotated(
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
                LogName::Numbered { zst: false, .. } => None,
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
            // With `create`, the new file is there at once: the writer has
            // moved on when it holds something.
            let moved_on = !moved_on_unknown.contains(&base)
                && std::fs::symlink_metadata(o.dir.join(base))
                    .map(|m| m.is_file() && (!o.create || m.len() > 0))
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
    pub(super) fn verify_existing(
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
