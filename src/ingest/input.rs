//! Inputs of `scan` and `report`: which files a list of paths names, what
//! kind each holds, and in what order files of one kind follow each other.
//!
//! A directory contributes the three logs and their rotated copies and
//! archives (SPEC §6 names: `<log>`, `<log>.<N>`, `<log>.<YYYYMMDD-HHMMSS>[-N]`,
//! each optionally `.zst`); a file named on the command line is taken as
//! given, its kind read from its name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::event::Kind;
use crate::logs::{AgeRank, INPUT_LOGS, rotation_of};

/// One file to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    /// The file name, as evidence names it (`tool-usage.log.20261102-000000.zst`).
    pub(crate) name: Arc<str>,
    pub(crate) kind: Kind,
    pub(crate) zst: bool,
    /// Age order within a kind: older files first, the live log last.
    pub(crate) age: AgeRank,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error(
        "{0}: cannot tell the log kind from the file name (expected tool-usage*, approvals* or errors*)"
    )]
    UnknownKind(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

impl InputFile {
    /// Reads the file front to back, handing each accepted event to `visit`
    /// until it says stop; rejected lines are skipped (a merge over the
    /// same files counts them).
    pub(crate) fn each_event(
        &self,
        parser: &crate::ingest::parse::Parser,
        mut visit: impl FnMut(crate::event::Event) -> std::ops::ControlFlow<()>,
    ) -> Result<(), InputError> {
        crate::ingest::lines::each_line(&self.path, parser.max_line_bytes, |line| {
            match line.map(|bytes| parser.parse(self.kind, bytes)) {
                Ok(Ok(ev)) => visit(ev),
                _ => std::ops::ControlFlow::Continue(()),
            }
        })
        .map_err(|e| InputError::Io(self.path.display().to_string(), e))
    }
}

/// The files `paths` name, sorted by kind (tool-usage, approvals, errors)
/// then age. With no paths, `default_dir`.
pub fn discover(paths: &[PathBuf], default_dir: &Path) -> Result<Vec<InputFile>, InputError> {
    let owned;
    let paths = if paths.is_empty() {
        owned = vec![default_dir.to_path_buf()];
        &owned[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => InputError::NotFound(p.display().to_string()),
            _ => InputError::Io(p.display().to_string(), e),
        })?;
        if meta.is_dir() {
            let rd =
                std::fs::read_dir(p).map_err(|e| InputError::Io(p.display().to_string(), e))?;
            for entry in rd {
                let entry = entry.map_err(|e| InputError::Io(p.display().to_string(), e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(ft) = entry.file_type() else { continue };
                if !(ft.is_file() || ft.is_symlink() && live_link(&entry.path(), &name)) {
                    continue;
                }
                if let Some(f) = classify(&entry.path(), &name) {
                    files.push(f);
                }
            }
        } else {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match classify(p, &name) {
                Some(f) => files.push(f),
                None => {
                    let kind = Kind::from_file_name(&name)
                        .ok_or_else(|| InputError::UnknownKind(p.display().to_string()))?;
                    files.push(InputFile {
                        path: p.clone(),
                        zst: name.ends_with(".zst"),
                        name: Arc::from(name),
                        kind,
                        age: AgeRank::Live,
                    });
                }
            }
        }
    }
    files.sort_by(|a, b| (a.kind, &a.age, &a.name).cmp(&(b.kind, &b.age, &b.name)));
    files.dedup_by(|a, b| a.path == b.path);
    Ok(files)
}

/// A live log name (`tool-usage.log`, ...) that is a symbolic link to a
/// regular file is read like the file, by every command alike (SPEC §8):
/// `run` opens it through the link too. Rotated names are never followed.
fn live_link(path: &Path, name: &str) -> bool {
    INPUT_LOGS.contains(&name) && std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

fn classify(path: &Path, name: &str) -> Option<InputFile> {
    for (kind, base) in Kind::ALL.into_iter().zip(INPUT_LOGS) {
        if let Some((age, zst)) = rotation_of(name, base) {
            return Some(InputFile {
                path: path.to_path_buf(),
                name: Arc::from(name),
                kind,
                zst,
                age,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_live_log_is_read_and_a_symlinked_rotation_is_not() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("elsewhere.jsonl");
        std::fs::write(&target, b"").unwrap();
        let audit = d.path().join("audit");
        std::fs::create_dir(&audit).unwrap();
        std::os::unix::fs::symlink(&target, audit.join("tool-usage.log")).unwrap();
        std::os::unix::fs::symlink(&target, audit.join("approvals.log.1")).unwrap();
        std::os::unix::fs::symlink(audit.join("nowhere"), audit.join("errors.log")).unwrap();
        let files = discover(std::slice::from_ref(&audit), Path::new("unused")).unwrap();
        let names: Vec<&str> = files.iter().map(|f| &*f.name).collect();
        assert_eq!(names, ["tool-usage.log"]);
    }

    #[test]
    fn directory_files_sort_by_kind_then_age() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "errors.log",
            "tool-usage.log",
            "tool-usage.log.20261102-000000.zst",
            "tool-usage.log.1",
            "tool-usage.log.2",
            "approvals.log",
            "alerts.log",
            "notes.txt",
        ] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        let files = discover(&[d.path().to_path_buf()], Path::new("unused")).unwrap();
        let names: Vec<&str> = files.iter().map(|f| &*f.name).collect();
        assert_eq!(
            names,
            [
                "tool-usage.log.2",
                "tool-usage.log.1",
                "tool-usage.log.20261102-000000.zst",
                "tool-usage.log",
                "approvals.log",
                "errors.log"
            ]
        );
    }
}
