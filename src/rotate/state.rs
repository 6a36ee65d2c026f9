//! `<state_dir>/rotation.json`: when each log was last rotated, so the daily
//! rotation happens at the first pass after UTC midnight and only once, even
//! across restarts and between `run` and `mcpwatch rotate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// File name in the state directory.
pub(crate) const STATE_FILE: &str = "rotation.json";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RotationState {
    /// Per base log name: the time of its last rotation, or of the pass that
    /// first saw it (so a log met for the first time is not rotated at once
    /// as if it were a day old; logrotate does the same).
    #[serde(default, with = "rfc3339_map")]
    pub(crate) last_rotation: BTreeMap<String, DateTime<Utc>>,
}

/// Times as RFC 3339 strings (readable by an operator; chrono's own serde
/// support is not enabled in this crate).
mod rfc3339_map {
    use std::collections::BTreeMap;

    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        m: &BTreeMap<String, DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(
            m.iter()
                .map(|(k, v)| (k, v.to_rfc3339_opts(SecondsFormat::Millis, true))),
        )
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        raw.into_iter()
            .map(|(k, v)| {
                DateTime::parse_from_rfc3339(&v)
                    .map(|t| (k, t.with_timezone(&Utc)))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unreadable rotation state: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl RotationState {
    /// `Ok(default)` when the file does not exist.
    pub(crate) fn load(state_dir: &Path) -> Result<RotationState, StateError> {
        let path = state_dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|source| StateError::Parse { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RotationState::default()),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }

    /// Atomic write (temp, fsync, rename, directory fsync).
    pub(crate) fn save(&self, state_dir: &Path) -> Result<(), StateError> {
        let path = state_dir.join(STATE_FILE);
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io)?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| StateError::Parse {
            path: path.clone(),
            source: e,
        })?;
        crate::state::write_atomic(&path, &bytes).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn state_round_trips_and_missing_file_is_empty() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            RotationState::load(d.path()).unwrap(),
            RotationState::default()
        );
        let mut s = RotationState::default();
        s.last_rotation.insert(
            "errors.log".into(),
            Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 5).unwrap(),
        );
        s.save(d.path()).unwrap();
        assert_eq!(RotationState::load(d.path()).unwrap(), s);
    }
}
