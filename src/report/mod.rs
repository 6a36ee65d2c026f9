//! Audit reports over logs and archives (SPEC §7 `report`).
//!
//! [`build`] reads every log of a directory (live files, rotated copies and
//! `.zst` archives, ts-merged exactly as `scan` reads them) plus `alerts.log`
//! and its archives, and folds them into one [`Report`]; [`render`] prints it
//! as text, JSON, CSV, a compliance summary or an HTML page with charts
//! ([`html`], [`svg`]). Nothing here reads the
//! configuration or the clock: the caller passes "now", the selection and the
//! policy in [`ReportOptions`], so reports are reproducible in tests.
//!
//! Memory is bounded whatever the input size: see [`Caps`]. Data older than
//! the period is read too (to tell which tools are new and how old the oldest
//! record is), but cheaply: files last written well before the period are
//! read outside the merge, and of their approvals/errors only the first
//! record is parsed.

pub(crate) mod collect;
pub(crate) mod html;
pub mod model;
pub(crate) mod period;
pub mod render;
pub(crate) mod svg;
pub(crate) mod timeline;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub(crate) use collect::Collector;
pub use collect::stats::Caps;
pub(crate) use model::Report;
pub use period::Period;

use crate::event::{Kind, Millis};
use crate::ingest::input::{InputError, InputFile, discover};
use crate::ingest::lines::each_line;
use crate::ingest::merge::{Reading, TimeRange, merge_files_auto};
use crate::ingest::parse::Parser;
use crate::logs::{ALERTS_LOG, AgeRank, rotation_of};
use crate::policy::{Policy, ToolClass};

/// Decides whether a tool is disabled. The policy of `security-config.json`
/// implements it; tests bring their own.
pub trait ToolClassifier {
    /// The class of `tool` and the rule that decided it.
    fn explain_tool(&self, tool: &str) -> (ToolClass, String);
}

impl ToolClassifier for Policy {
    fn explain_tool(&self, tool: &str) -> (ToolClass, String) {
        self.explain(tool)
    }
}

/// What to report on. Built by the CLI from flags and configuration, or
/// directly by tests and the bench.
pub struct ReportOptions<'a> {
    /// The audit log directory.
    pub dir: PathBuf,
    /// `[since, until)` of event time; unbounded sides are `None`.
    pub(crate) range: TimeRange,
    /// The named period the range came from, if any (shown in the report).
    pub period: Option<Period>,
    pub user: Option<String>,
    pub server: Option<String>,
    /// A `token_id`.
    pub token: Option<String>,
    /// A `request_id`.
    pub request: Option<String>,
    /// Collect the investigation timeline (`--format timeline`).
    pub timeline: bool,
    /// "Now" for record ages and open-ended gap checks.
    pub(crate) now: Millis,
    /// Line parser (max line length; the wall clock for `bad_ts`).
    pub parser: Parser,
    /// `None` when no policy is known: disabled-tool invocations are then
    /// not judged (`null` in JSON).
    pub policy: Option<&'a dyn ToolClassifier>,
    /// The policy as the compliance section shows it.
    pub policy_info: model::PolicyInfo,
    /// `retention.days` of the configuration.
    pub retention_days: u32,
    pub caps: Caps,
    /// Bytes read so far, for a progress bar.
    pub progress: Option<Arc<AtomicU64>>,
}

impl<'a> ReportOptions<'a> {
    /// Options with no filter, no policy, default caps and retention.
    pub fn new(dir: impl Into<PathBuf>, range: TimeRange, now: Millis) -> Self {
        ReportOptions {
            dir: dir.into(),
            range,
            period: None,
            user: None,
            server: None,
            token: None,
            request: None,
            timeline: false,
            now,
            parser: Parser {
                max_line_bytes: crate::ingest::parse::DEFAULT_MAX_LINE_BYTES,
                now_ms: now,
            },
            policy: None,
            policy_info: model::PolicyInfo::default(),
            retention_days: 90,
            caps: Caps::default(),
            progress: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// A file last written more than this before the period starts holds no
/// line of the period (a line's ts is not later than its write, give or take
/// clock skew): it is read only for coverage and new-tool bookkeeping.
const OLD_FILE_MARGIN_MS: Millis = 3_600_000;

/// The log files and alert files of `dir`, with their modification times.
pub(crate) struct ReportInputs {
    pub(crate) logs: Vec<InputFile>,
    pub(crate) alerts: Vec<PathBuf>,
    pub(crate) mtimes: HashMap<String, Millis>,
    pub(crate) bytes: u64,
}

/// The size of the log files a report over `dir` reads (for the caller's
/// progress bar).
pub fn input_bytes(dir: &Path) -> Result<u64, ReportError> {
    inputs(dir).map(|i| i.bytes)
}

/// Lists the inputs of a report.
pub(crate) fn inputs(dir: &Path) -> Result<ReportInputs, ReportError> {
    let logs = discover(&[dir.to_path_buf()], dir)?;
    let mut alerts: Vec<(AgeRank, PathBuf)> = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| ReportError::Io(dir.display().to_string(), e))?;
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_ok_and(|t| t.is_file())
            && let Some((age, _)) = rotation_of(&name, ALERTS_LOG)
        {
            alerts.push((age, entry.path()));
        }
    }
    alerts.sort();
    let mut mtimes = HashMap::new();
    let mut bytes = 0;
    for f in &logs {
        if let Ok(m) = std::fs::metadata(&f.path) {
            bytes += m.len();
            if let Some(t) = m.modified().ok().and_then(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_millis() as Millis)
            }) {
                mtimes.insert(f.name.to_string(), t);
            }
        }
    }
    Ok(ReportInputs {
        logs,
        alerts: alerts.into_iter().map(|(_, p)| p).collect(),
        mtimes,
        bytes,
    })
}

/// Reads the directory of `opts` and builds the report.
pub fn build(opts: &ReportOptions<'_>) -> Result<Report, ReportError> {
    let inp = inputs(&opts.dir)?;
    let mut col = Collector::new(opts);
    col.inputs.dir = opts.dir.display().to_string();
    col.inputs.log_files = inp.logs.len() as u64;
    col.inputs.alert_files = inp.alerts.len() as u64;
    col.inputs.bytes = inp.bytes;

    // Files written entirely before the period: outside the merge.
    let mut current = Vec::with_capacity(inp.logs.len());
    for f in inp.logs {
        let old = match (opts.range.since, inp.mtimes.get(&*f.name)) {
            (Some(s), Some(m)) => *m < s - OLD_FILE_MARGIN_MS,
            _ => false,
        };
        if old && read_old(&f, opts, &mut col)? {
            continue;
        }
        current.push(f);
    }

    if let Some(token) = &opts.token {
        let (ids, complete) = token_requests(&current, opts, token)?;
        col.set_token_requests(ids, complete);
    }

    let col = std::cell::RefCell::new(col);
    // Reading and parsing on a thread of their own when there is a core.
    let read = Reading {
        bytes_read: opts.progress.clone(),
        ..Reading::all(&current, &opts.parser)
    };
    merge_files_auto(
        read,
        &mut |r| col.borrow_mut().reject(r.file, r.reason),
        &mut |ev, line| col.borrow_mut().event(ev, line),
    )?;
    let mut col = col.into_inner();
    col.finish_rejects(&inp.mtimes);

    for path in &inp.alerts {
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let mut n = 0u64;
        each_line(path, opts.parser.max_line_bytes, |line| {
            n += 1;
            col.alert_line(line.unwrap_or(b"-"), &name, n);
            ControlFlow::Continue(())
        })
        .map_err(|e| ReportError::Io(path.display().to_string(), e))?;
    }
    Ok(col.finish())
}

/// The request ids of the calls made with `token` in the period (a pass over
/// the tool-usage files only), capped; false when the cap was hit.
fn token_requests(
    files: &[InputFile],
    opts: &ReportOptions<'_>,
    token: &str,
) -> Result<(HashSet<Box<str>>, bool), ReportError> {
    let mut ids = HashSet::new();
    let mut complete = true;
    for f in files.iter().filter(|f| f.kind == Kind::ToolCall) {
        f.each_event(&opts.parser, |ev| {
            if ev.token_id.as_deref() == Some(token)
                && opts.range.contains(ev.ts)
                && let Some(r) = ev.request_id
            {
                if ids.len() < opts.caps.max_token_requests || ids.contains(r.as_str()) {
                    ids.insert(r.as_str().into());
                } else {
                    complete = false;
                }
            }
            ControlFlow::Continue(())
        })?;
    }
    Ok((ids, complete))
}

/// Reads a file older than the period: every tool call is remembered as
/// seen; of approvals and errors only the first record (for the oldest
/// record on disk). Returns false, having taken nothing, when the file turns
/// out to hold a line of the period after all: it then goes to the merge.
fn read_old(
    f: &InputFile,
    opts: &ReportOptions<'_>,
    col: &mut Collector<'_>,
) -> Result<bool, ReportError> {
    let since = opts.range.since.unwrap_or(Millis::MIN);
    let mut oldest: Option<Millis> = None;
    let mut count = 0u64;
    let mut in_period = false;
    f.each_event(&opts.parser, |ev| {
        if ev.ts >= since {
            in_period = true;
            return ControlFlow::Break(());
        }
        count += 1;
        oldest = Some(oldest.map_or(ev.ts, |o| o.min(ev.ts)));
        if f.kind != Kind::ToolCall {
            return ControlFlow::Break(());
        }
        // Idempotent and capped: harmless even if the file goes to the
        // merge after all.
        col.note_before(&ev);
        ControlFlow::Continue(())
    })?;
    if in_period {
        return Ok(false);
    }
    if let Some(o) = oldest {
        col.note_old_file(o, count);
    }
    Ok(true)
}

/// The policy as the compliance section shows it: the approval mode the
/// loaded policy uses, and how many patterns and tools each list of the raw
/// `security-config.json` holds (`None` for either when there is no policy).
pub fn policy_info(
    mode: Option<crate::event::ApprovalMode>,
    security_config: Option<&str>,
) -> model::PolicyInfo {
    let mut info = model::PolicyInfo {
        known: mode.is_some(),
        approval_mode: mode.map(|m| m.as_str().to_string()),
        lists: Default::default(),
    };
    if !info.known {
        return info;
    }
    let raw: serde_json::Value = security_config
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    for (json, name) in [
        ("autoApproved", "auto_approved"),
        ("requiresApproval", "requires_approval"),
        ("disabled", "disabled"),
    ] {
        let list = &raw["rules"][json];
        let len = |k: &str| list[k].as_array().map_or(0, |a| a.len() as u64);
        info.lists.insert(
            name.to_string(),
            model::ListCounts {
                patterns: len("patterns"),
                tools: len("tools"),
            },
        );
    }
    info
}
