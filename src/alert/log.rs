//! The append-only alert log (`<dir>/alerts.log`, SPEC §4): one JSON line
//! per alert, reopened when rotated, fsynced before each checkpoint; after
//! a crash, the ids written past the checkpoint are not written again.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::state::AlertLogPos;

/// The alert log could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct AlertLogError {
    path: String,
    #[source]
    source: std::io::Error,
}

impl AlertLogError {
    fn new(path: &Path, source: std::io::Error) -> AlertLogError {
        AlertLogError {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The append-only alert log (`<dir>/alerts.log`), reopened when rotated.
pub(crate) struct AlertLog {
    path: PathBuf,
    file: Option<File>,
}

impl AlertLog {
    pub(crate) fn open(path: &Path) -> Result<AlertLog, AlertLogError> {
        let mut log = AlertLog {
            path: path.to_path_buf(),
            file: None,
        };
        if path.parent().is_some_and(Path::exists) {
            log.reopen()?;
        }
        Ok(log)
    }

    pub(crate) fn reopen(&mut self) -> Result<(), AlertLogError> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| AlertLogError::new(&self.path, e))?;
        self.file = Some(f);
        Ok(())
    }

    /// Whether the file at `path` is still the one open (a rotation renames it).
    pub(crate) fn current(&self) -> bool {
        match (&self.file, std::fs::metadata(&self.path)) {
            (Some(f), Ok(m)) => f
                .metadata()
                .is_ok_and(|o| o.ino() == m.ino() && o.dev() == m.dev()),
            _ => false,
        }
    }

    /// Appends complete lines (`text` ends with a newline).
    pub(crate) fn append(&mut self, text: &str) -> Result<(), AlertLogError> {
        if !self.current() {
            if let Some(parent) = self.path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| AlertLogError::new(parent, e))?;
            }
            self.reopen()?;
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        f.write_all(text.as_bytes())
            .map_err(|e| AlertLogError::new(&self.path, e))
    }

    /// fsyncs and returns the position to checkpoint.
    pub(crate) fn sync(&mut self) -> Result<AlertLogPos, AlertLogError> {
        let Some(f) = self.file.as_mut() else {
            return Ok(AlertLogPos {
                dev: 0,
                ino: 0,
                len: 0,
            });
        };
        f.sync_data()
            .map_err(|e| AlertLogError::new(&self.path, e))?;
        let m = f
            .metadata()
            .map_err(|e| AlertLogError::new(&self.path, e))?;
        Ok(AlertLogPos {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
        })
    }

    /// Alert ids written after `pos` (all of the current file when there
    /// is no checkpoint or it describes another file).
    pub(crate) fn ids_since(&self, pos: Option<AlertLogPos>) -> HashSet<String> {
        let mut ids = HashSet::new();
        let Ok(mut f) = File::open(&self.path) else {
            return ids;
        };
        // No checkpoint: a lifetime may have written alerts and died before
        // its first checkpoint, so every id in the file counts.
        let start = match (pos, f.metadata()) {
            (Some(pos), Ok(m)) if m.ino() == pos.ino && m.dev() == pos.dev => pos.len,
            _ => 0,
        };
        if f.seek(std::io::SeekFrom::Start(start)).is_err() {
            return ids;
        }
        #[derive(Deserialize)]
        struct IdOnly {
            id: String,
        }
        for line in std::io::BufReader::new(f)
            .split(b'\n')
            .map_while(Result::ok)
        {
            if let Ok(a) = serde_json::from_slice::<IdOnly>(&line) {
                ids.insert(a.id);
            }
        }
        ids
    }
}
