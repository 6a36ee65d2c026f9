//! What the reader of the logs still needs, asked by a pass before it
//! renames or compresses a file: the [`Consumption`] trait and its three
//! answers (nobody reads, a stopped daemon's checkpoint, the running
//! daemon's tailer).
//!
//! Kept apart from the pass so the rules of "may this file be touched"
//! can be read, and changed, in one place.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::state::{FilePosition, TailCheckpoint};

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

    /// Whether a rotated file idle for [`FORCE_IDLE`](super::FORCE_IDLE) may be compressed even
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
