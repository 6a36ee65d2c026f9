//! The state directory's ground floor: atomic writes (temp file, fsync,
//! rename, directory fsync), the directory's lock, and the one checkpoint
//! document every command reads or writes.
//!
//! The daemon's whole checkpoint is one JSON document at
//! `<state_dir>/checkpoint.json` ([`CheckpointDoc`]): the tailer owns its
//! `tail` part ([`TailCheckpoint`]), the daemon adds the name of the
//! detector state file and the alert log's offset beside it.
//! `mcpwatch rotate` reads only the `tail` part. [`writer`] writes it off
//! the detection thread.

pub(crate) mod writer;

use std::path::Path;

use serde::{Deserialize, Serialize};

/// File name of the checkpoint in the state directory.
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint.json";
/// File name of the lock in the state directory.
pub const LOCK_FILE: &str = "lock";

/// Position in one followed file. Identity is device + inode, confirmed by
/// a hash of the file's first bytes (inodes are reused after delete).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// The base log this file continues (`tool-usage.log`, ...).
    pub base: String,
    /// The name the file had when last seen (`tool-usage.log` or a rotated name).
    pub name: String,
    pub dev: u64,
    pub ino: u64,
    /// FNV-1a 64 hash of the file's first
    /// `head_len` bytes. `head_len` grows with the file up to
    /// [`crate::ingest::tail::HEAD_BYTES`]; while it is 0 (empty file)
    /// identity rests on dev + inode alone.
    pub head_hash: u64,
    pub head_len: u64,
    /// Byte offset just past the last consumed complete line.
    pub offset: u64,
    /// Number of lines consumed so far (the next line is `line + 1`).
    pub line: u64,
    /// The file's identity by content (SPEC §8): hex SHA-256 of its first
    /// line, at most [`crate::ingest::tail::FINGERPRINT_BYTES`] of it.
    /// Absent while that line is incomplete (then device + inode decide)
    /// and in checkpoints written before fingerprints existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// A file the tailer read to its end and let go of (a drained rotated
/// copy), remembered by content so that a restart does not read it again
/// under another name or compressed (SPEC §8: "reading nothing twice").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    pub(crate) base: String,
    /// Hex SHA-256 of the first line, as [`FilePosition::fingerprint`];
    /// absent for a file whose only line never ended (then `dev` and `ino`
    /// tell it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fingerprint: Option<String>,
    #[serde(default)]
    pub(crate) dev: u64,
    #[serde(default)]
    pub(crate) ino: u64,
    /// Bytes consumed: a plain copy longer than this is read on from here.
    pub(crate) offset: u64,
    pub(crate) line: u64,
}

/// The tailer's part of the checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailCheckpoint {
    pub files: Vec<FilePosition>,
    /// Files read to their end and let go, newest last (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finished: Vec<Finished>,
    /// Unix ms when this state directory's tailing began: a rotated copy
    /// the checkpoint does not know is read at a restart only if it was
    /// modified after this (older ones are history, for `scan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
}

/// The daemon's checkpoint document, `<state_dir>/checkpoint.json`. The
/// detector state is large (every key of every rule), so it lives beside it
/// in a compact binary file (postcard) that the document names: the engine
/// file is written and fsynced first, the document renamed into place
/// second, so the pair is always consistent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct CheckpointDoc {
    #[serde(default)]
    pub(crate) tail: TailCheckpoint,
    /// Detector state inline (JSON), as a hand-made checkpoint may hold it;
    /// the daemon writes `engine_file` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) engine: Option<serde_json::Value>,
    /// Name of the engine state file in the state directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) engine_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) alerts_log: Option<AlertLogPos>,
    /// The audit stream's position (`run --input nats://…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stream: Option<StreamCheckpoint>,
}

/// The audit stream's part of the checkpoint (`run --input nats://…`,
/// SPEC §10): see `pipeline::stream`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreamCheckpoint {
    pub(crate) stream: String,
    /// When the stream was created (Unix ns): a stream deleted and created
    /// again under the same name starts its sequences anew.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) created: String,
    /// Last stream sequence taken.
    pub(crate) seq: u64,
    /// Sequences taken but still held for reordering, as inclusive ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) held: Vec<(u64, u64)>,
    /// Highest offset taken per host and file identity.
    #[serde(default)]
    pub(crate) highest: Vec<Highest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Highest {
    pub(crate) host: String,
    pub(crate) file: String,
    pub(crate) offset: u64,
    /// The line number at `offset`, and the runs of lines below it not
    /// taken yet (see `ingest::nats::FileTaken`).
    #[serde(default)]
    pub(crate) line: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) gaps: Vec<[u64; 4]>,
}

/// Where `alerts.log` ended when the checkpoint was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AlertLogPos {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) len: u64,
}

impl CheckpointDoc {
    /// Reads `<state_dir>/checkpoint.json`; `Ok(None)` when there is no
    /// checkpoint yet.
    pub(crate) fn load(state_dir: &Path) -> std::io::Result<Option<CheckpointDoc>> {
        let path = state_dir.join(CHECKPOINT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }
}

/// Reads only the `tail` part of `<state_dir>/checkpoint.json`; `Ok(None)`
/// when there is no checkpoint yet.
pub fn load_tail(state_dir: &Path) -> std::io::Result<Option<TailCheckpoint>> {
    Ok(CheckpointDoc::load(state_dir)?.map(|d| d.tail))
}

/// Writes `data` to `path` atomically: a temp file beside it, fsync,
/// rename over `path`, fsync of the directory. A crash leaves either the old
/// or the new content, never a mix.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, data, None)
}

/// [`write_atomic`] for a file only its owner may read (`mode` 0600 for
/// the dead letters): the temporary file has that mode from its creation.
pub(crate) fn write_atomic_mode(
    path: &Path,
    data: &[u8],
    mode: Option<u32>,
) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let written = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        if let Some(m) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(m);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // A full or failing disk must not leave a half-written temporary
        // file behind (SPEC §8).
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The state directory's exclusive lock, held for the life of this value.
/// `run` and `rotate` take it; a second holder gets [`LockError::Held`].
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("state directory {0} is locked by another mcpwatch (is `mcpwatch run` running?)")]
    Held(String),
    #[error("cannot lock state directory {0}: {1}")]
    Io(String, std::io::Error),
}

impl StateLock {
    /// Creates the state directory if needed and takes its lock without
    /// waiting.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        let shown = state_dir.display().to_string();
        std::fs::create_dir_all(state_dir).map_err(|e| LockError::Io(shown.clone(), e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(state_dir.join(LOCK_FILE))
            .map_err(|e| LockError::Io(shown.clone(), e))?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held(shown)),
            Err(std::fs::TryLockError::Error(e)) => Err(LockError::Io(shown, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_same_state_dir_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let _a = StateLock::acquire(d.path()).unwrap();
        assert!(matches!(
            StateLock::acquire(d.path()),
            Err(LockError::Held(_))
        ));
    }

    #[test]
    fn atomic_write_replaces_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(CHECKPOINT_FILE);
        write_atomic(&p, b"{\"tail\":{\"files\":[]}}").unwrap();
        assert_eq!(
            load_tail(d.path()).unwrap(),
            Some(TailCheckpoint::default())
        );
        write_atomic(&p, b"{}").unwrap();
        assert_eq!(
            load_tail(d.path()).unwrap(),
            Some(TailCheckpoint::default())
        );
    }
}
