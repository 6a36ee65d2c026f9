//! The dead letters read back: `dead-letter.ndjson` (in the state
//! directory, one JSON object a line, appended by
//! [`Outbox::write_dead_letter`](super::Outbox)) holds exactly the groups
//! that are dead now. `mcpwatch outbox` lists them; a requeue takes a
//! line out again (after the [`Op::Requeue`](super::journal::Op) that
//! put its group back is durable).
//!
//! A line is known by its [`DeadKey`]: channel, group and the time it
//! died, so a group that dies again after a retry is a new dead letter.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::journal::StoredAlert;
use crate::alert::Alert;
use crate::event::Millis;

/// One dead letter's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeadKey {
    pub(crate) channel: String,
    pub(crate) group: String,
    /// `ts` of the line: when the group was given up on.
    pub(crate) ts: String,
}

/// One line of `dead-letter.ndjson` (docs/formats.md).
#[derive(Clone, Debug, Deserialize)]
pub(super) struct DeadLetter {
    pub(super) ts: String,
    pub(super) channel: String,
    pub(super) group: String,
    pub(super) entered: String,
    pub(super) attempts: u32,
    pub(super) reason: String,
    pub(super) error: String,
    pub(super) alerts: Vec<Alert>,
    /// Per alert id, the firing line's fields (an action's environment).
    #[serde(default)]
    pub(super) fields: BTreeMap<String, BTreeMap<String, String>>,
}

impl DeadLetter {
    pub(super) fn key(&self) -> DeadKey {
        DeadKey {
            channel: self.channel.clone(),
            group: self.group.clone(),
            ts: self.ts.clone(),
        }
    }

    /// The alerts as the outbox keeps them, entering it again at `at`.
    pub(super) fn stored(&self, at: Millis) -> Vec<StoredAlert> {
        self.alerts
            .iter()
            .map(|a| StoredAlert {
                at,
                alert: a.clone(),
                fields: self.fields.get(&a.id).cloned().unwrap_or_default(),
            })
            .collect()
    }
}

/// The file's lines: each complete line's bytes and what it holds (`None`
/// when it cannot be read as a dead letter: kept, never dropped).
pub(super) struct Lines {
    pub(super) lines: Vec<(Vec<u8>, Option<DeadLetter>)>,
}

impl Lines {
    /// Reads `path` (no file: no dead letters). A last line without its
    /// newline is being appended (or was torn by a crash): it is left out
    /// of the listing but kept by [`Lines::rewrite`].
    pub(super) fn read(path: &Path) -> std::io::Result<Lines> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let lines = bytes
            .split_inclusive(|b| *b == b'\n')
            .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
            .map(|l| {
                let letter = if l.ends_with(b"\n") {
                    serde_json::from_slice(l).ok()
                } else {
                    None
                };
                (l.to_vec(), letter)
            })
            .collect();
        Ok(Lines { lines })
    }

    /// The dead letters that could be read, in file order.
    pub(super) fn letters(&self) -> impl Iterator<Item = &DeadLetter> {
        self.lines.iter().filter_map(|(_, l)| l.as_ref())
    }

    /// Complete lines that are not dead letters (damage), for a warning.
    pub(super) fn unreadable(&self) -> usize {
        self.lines
            .iter()
            .filter(|(raw, l)| l.is_none() && raw.ends_with(b"\n"))
            .count()
    }

    /// Writes the file again without the dead letters `gone` says are
    /// gone (atomically, mode 0600); every other line stays byte for byte.
    /// Returns how many were removed; with none, nothing is written. Only
    /// the holder of the outbox (under its lock) may call this: the
    /// daemon appends to the same file.
    pub(super) fn rewrite(
        self,
        path: &Path,
        gone: impl Fn(&DeadKey) -> bool,
    ) -> std::io::Result<usize> {
        let mut removed = 0;
        let mut out = Vec::new();
        for (mut raw, letter) in self.lines {
            if letter.as_ref().is_some_and(|l| gone(&l.key())) {
                removed += 1;
                continue;
            }
            if !raw.ends_with(b"\n") {
                raw.push(b'\n');
            }
            out.extend_from_slice(&raw);
        }
        if removed > 0 {
            crate::state::write_atomic_mode(path, &out, Some(0o600))?;
        }
        Ok(removed)
    }
}
