//! Configuration: four optional sources (SPEC §2) → one validated [`Config`].
//!
//! Raw files are parsed into position-keeping trees, checked field by field,
//! and every problem is collected as a [`ConfigError`] carrying
//! `file:line:col`, the field and the allowed values, so `check` can report
//! them all at once.

mod types;
pub use types::*;

use std::path::PathBuf;

use crate::event::Millis;

/// Where the configuration comes from. `None` means "the default place if
/// it exists" (SPEC §7), resolved by [`Sources::resolve`].
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `security-config.json`.
    pub config: Option<PathBuf>,
    /// Directory of `rules/<rule>.toml`.
    pub rules: Option<PathBuf>,
    /// `mcpwatch.toml`.
    pub settings: Option<PathBuf>,
    /// The audit log directory (its `config.json` holds retention); when
    /// `None`, the settings' `input.dir` (default `.elevenlabs/audit`).
    pub dir: Option<PathBuf>,
}

/// One configuration problem, displayed as `file:line:col: field: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {field}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub field: String,
    pub message: String,
}

/// Every problem found, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Loads and validates every source. TODO(config issue): implement.
pub fn load(_sources: &Sources) -> Result<Config, ConfigErrors> {
    todo!("config::load")
}

/// Parses a duration of SPEC §2: `"500ms"`, `"60s"`, `"10m"`, `"1h"`, `"90d"`.
pub fn parse_duration(s: &str) -> Result<Millis, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => return Err(format!("missing unit in {s:?}; expected ms, s, m, h or d")),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}; expected e.g. 500ms, 60s, 10m, 1h, 90d"))?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}; expected ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}
