//! The investigation timeline (SPEC §7 `report --format timeline`): every
//! event and every alert of one subject (`--user`, `--server`, `--token`,
//! `--request`) in the period, in ts order, one line each — the seed's
//! "audit all activity with compromised token" and "review recent
//! activity".
//!
//! The collector ([`super::Collector`]) hands each selected event and each
//! alert of the subject to a [`Timeline`]; entries are sorted by ts once
//! reading is done (stably: events in merge order, an alert after the
//! line that fired it). An alert is the subject's when its firing line is
//! one of the subject's events (by log, line number and ts, so a line read
//! from an archive matches the evidence written while it was the live
//! file), or when its key names the subject.
//!
//! `timeline` is for people (fields escaped, SPEC §8); `timeline-json` is
//! one JSON object a line, for tools.

use std::collections::HashSet;
use std::io::{self, Write};

use serde::Serialize;

use crate::alert::{Alert, format_ts};
use crate::event::{Event, Kind, Millis, Outcome};
use crate::text::escape;

/// Most entries kept: a subject with more is cut there (counted and said),
/// so one busy user cannot exhaust memory (each entry is ~200 bytes).
pub(crate) const MAX_TIMELINE: usize = 1_000_000;

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Entry {
    #[serde(skip)]
    ms: Millis,
    ts: String,
    file: String,
    line: u64,
    /// `tool_call`, `approval`, `error` or `alert`.
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// The entries of one report, and the places of its events (to tell which
/// alerts they fired).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Timeline {
    pub(crate) entries: Vec<Entry>,
    /// Entries beyond [`MAX_TIMELINE`], not kept.
    pub(crate) cut: u64,
    /// (live log name, line, ts) of each selected event.
    places: HashSet<(&'static str, u64, Millis)>,
}

fn text(v: Option<&str>) -> Option<String> {
    v.map(str::to_string)
}

impl Timeline {
    fn push(&mut self, e: Entry) {
        if self.entries.len() < MAX_TIMELINE {
            self.entries.push(e);
        } else {
            self.cut += 1;
        }
    }

    /// A selected event read from `file` at `line`.
    pub(crate) fn event(&mut self, ev: &Event, file: &str, line: u64) {
        let Some(kind) = ev.kind else { return };
        if self.places.len() < MAX_TIMELINE {
            self.places.insert((kind.base_file(), line, ev.ts));
        }
        let error = (kind == Kind::Error).then(|| {
            let t = ev.error_type.as_deref().or(ev.error_code.as_deref());
            match (t, ev.error_message.as_deref()) {
                (Some(t), Some(m)) => format!("{t}: {m}"),
                (Some(t), None) => t.to_string(),
                (None, Some(m)) => m.to_string(),
                (None, None) => "-".to_string(),
            }
        });
        self.push(Entry {
            ms: ev.ts,
            ts: format_ts(ev.ts),
            file: file.to_string(),
            line,
            kind: kind.as_str(),
            user_id: text(ev.user_id.as_deref()),
            server_name: text(ev.server_name.as_deref()),
            tool_name: text(ev.tool_name.as_deref()),
            request_id: text(ev.request_id.as_deref()),
            token_id: text(ev.token_id.as_deref()),
            outcome: ev.outcome.map(|o| match o {
                Outcome::Success => "success",
                Outcome::Error => "error",
                Outcome::Denied => "denied",
            }),
            decision: ev.decision.map(|d| match d {
                crate::event::Decision::Approve => "approve",
                crate::event::Decision::Deny => "deny",
                crate::event::Decision::Timeout => "timeout",
            }),
            error,
            rule: None,
            severity: None,
            alert_id: None,
            message: None,
        });
    }

    /// Whether `a`'s firing line is one of the selected events.
    pub(crate) fn fired_by_subject(&self, a: &Alert) -> bool {
        let ts = a.ts_millis();
        a.evidence.iter().any(|e| {
            Kind::from_file_name(&e.file)
                .is_some_and(|k| self.places.contains(&(k.base_file(), e.line, ts)))
        })
    }

    /// An alert of the subject, read from `file` at `line`.
    pub(crate) fn alert(&mut self, a: &Alert, file: &str, line: u64) {
        let key = |f: &str| a.key.get(f).cloned();
        self.push(Entry {
            ms: a.ts_millis(),
            ts: a.ts.clone(),
            file: file.to_string(),
            line,
            kind: "alert",
            user_id: key("user_id"),
            server_name: key("server_name"),
            tool_name: key("tool_name"),
            request_id: key("request_id")
                .or_else(|| a.evidence.first().and_then(|e| e.request_id.clone())),
            token_id: key("token_id"),
            outcome: None,
            decision: None,
            error: None,
            rule: Some(a.rule.clone()),
            severity: Some(a.severity.as_str()),
            alert_id: Some(a.id.clone()),
            message: Some(a.message.clone()),
        });
    }

    /// Sorts by ts, keeping read order among equal times.
    pub(crate) fn finish(&mut self) {
        self.entries.sort_by_key(|e| e.ms);
        self.places = HashSet::new();
    }
}

/// `timeline`: one line per entry, fields escaped:
/// `<ts>  <file>:<line>  <kind>  user=<u>  server=<s>  tool=<t>  <what>`.
pub(crate) fn write_text(out: &mut dyn Write, t: &Timeline) -> io::Result<()> {
    let f = |v: &Option<String>| {
        v.as_deref()
            .map_or("-".to_string(), |s| escape(s).into_owned())
    };
    for e in &t.entries {
        let what = match (&e.rule, e.outcome, e.decision, &e.error) {
            (Some(rule), ..) => format!(
                "{rule} {}: {}",
                e.severity.unwrap_or("-"),
                escape(e.message.as_deref().unwrap_or(""))
            ),
            (None, Some(o), ..) => format!("outcome={o}"),
            (None, None, Some(d), _) => format!("decision={d}"),
            (None, None, None, Some(err)) => format!("error={}", escape(err)),
            _ => "-".to_string(),
        };
        writeln!(
            out,
            "{}  {}:{}  {}  user={}  server={}  tool={}  {what}",
            e.ts,
            escape(&e.file),
            e.line,
            e.kind,
            f(&e.user_id),
            f(&e.server_name),
            f(&e.tool_name),
        )?;
    }
    if t.cut > 0 {
        writeln!(
            out,
            "… {} more entries not shown (at most {MAX_TIMELINE}); narrow the period",
            t.cut
        )?;
    }
    Ok(())
}

/// `timeline-json`: one JSON object per entry and line.
pub(crate) fn write_json(out: &mut dyn Write, t: &Timeline) -> io::Result<()> {
    for e in &t.entries {
        serde_json::to_writer(&mut *out, e)?;
        out.write_all(b"\n")?;
    }
    if t.cut > 0 {
        serde_json::to_writer(&mut *out, &serde_json::json!({ "cut": t.cut }))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
