//! The planted anomalies of SPEC §3 "Rules beyond fixed thresholds":
//! an exfiltration sequence, a tool whose definition changes (a rug pull)
//! and a service account ten times busier than its own normal.
//!
//! A child of the example module, like `traffic`.

use super::*;

/// The default `sources` and `sinks` globs of `exfil_sequence` (all are
/// `*_suffix`), for shaping normal traffic around them.
pub(super) const SOURCE_SUFFIXES: [&str; 7] = [
    "_read",
    "_get",
    "_search",
    "_export",
    "_list",
    "_query",
    "_download",
];
pub(super) const SINK_SUFFIXES: [&str; 6] = [
    "_send", "_post", "_upload", "_share", "_forward", "_publish",
];

pub(super) fn is_source(tool: &str) -> bool {
    SOURCE_SUFFIXES.iter().any(|s| tool.ends_with(s))
}

pub(super) fn is_sink(tool: &str) -> bool {
    SINK_SUFFIXES.iter().any(|s| tool.ends_with(s))
}

/// The planted service account: steady, around the clock but for the
/// night hours `unusual_hours` watches, from the day before the example's.
const SERVICE: &str = "svc-sync";

impl Builder {
    /// A planted call (canonical names) by `user` in conversation `conv`,
    /// with an approval `before` ms earlier when given; `hash` adds a
    /// `tool_hash`.
    #[allow(clippy::too_many_arguments)]
    fn call_as(
        &mut self,
        user: &str,
        conv: &str,
        ts: Millis,
        (server, tool): (&str, &str),
        approval: Option<(Millis, &str)>,
        hash: Option<&str>,
        fires: Option<usize>,
    ) {
        let st = Style { canonical: true };
        let agent = match user.strip_prefix("u-").and_then(|n| n.parse().ok()) {
            Some(n) => agent_of(n),
            None => "ag-sync".to_string(),
        };
        let c = Call {
            ts,
            rid: self.rid(),
            user,
            agent: &agent,
            conv,
            server,
            tool,
            outcome: "success",
            duration_ms: self.rng.range(40, 900),
            args_bytes: self.rng.range(60, 2000),
        };
        if let Some((before, decision)) = approval {
            let line = approval_line(&mut self.rng, &st, &c, ts - before, decision);
            self.push(File::Approvals, ts - before, line, None);
        }
        let mut line = call_line(&mut self.rng, &st, &c);
        if let Some(h) = hash {
            line.pop();
            line.push_str(&format!(r#","tool_hash":{}}}"#, js(h)));
        }
        self.push(File::Calls, ts, line, fires);
    }
}

pub(super) fn planted_beyond_thresholds(b: &mut Builder) {
    // (h) exfil_sequence: in one conversation, u-10's agent searches the
    // CRM, then sends mail 4.5 minutes later (approved: no bypass).
    let exfil = b.plant(
        "exfil_sequence",
        key(&[("conversation_id", "c-u-10-exfil")]),
        None,
        "contact_search on crm at 12:10:00, then email_send on gmail 270 s later in the same conversation",
    );
    b.call_as(
        "u-10",
        "c-u-10-exfil",
        at(12, 10, 0, 0),
        ("crm", "contact_search"),
        None,
        None,
        None,
    );
    b.call_as(
        "u-10",
        "c-u-10-exfil",
        at(12, 14, 30, 0),
        ("gmail", "email_send"),
        Some((2000, "approve")),
        None,
        Some(exfil),
    );

    // (i) tool_definition_drift: contact_search (auto-approved) changes
    // its definition hash; going back to the first hash raises nothing.
    let drift = b.plant(
        "tool_definition_drift",
        key(&[("server_name", "crm"), ("tool_name", "contact_search")]),
        None,
        "first hash learned at 09:00:00 (silently); the new hash at 13:30 fires (auto-approved: the dangerous case); the first hash again at 13:45 does not",
    );
    let hashes = [
        (at(9, 0, 0, 0), "sha256:9c1185a5c5e9fc54", None),
        (at(13, 30, 0, 0), "sha256:b6d767d2f8ed5d21", Some(drift)),
        (at(13, 45, 0, 0), "sha256:9c1185a5c5e9fc54", None),
    ];
    for (i, (ts, hash, fires)) in hashes.into_iter().enumerate() {
        let conv = format!("c-u-05-h{i}");
        let tool = ("crm", "contact_search");
        b.call_as("u-05", &conv, ts, tool, None, Some(hash), fires);
    }

    // (j) usage_baseline_spike: svc-sync makes 2 calls an hour (06:00 to
    // 23:59) from the day before, then 40 in the hour from 15:00.
    let spike = b.plant(
        "usage_baseline_spike",
        key(&[("user_id", SERVICE)]),
        Some("30"),
        "2 calls an hour since 2026-11-22T06:00 (none 00:00-05:59), then one a minute from 15:00:30; the 30th fires, the 10 after it are suppressed (realert 1h)",
    );
    let tools = [("drive", "file_search"), ("drive", "file_read")];
    let day_before = -24 * 60;
    for hour in (6..24).chain(24 + 6..24 + 15) {
        for (i, minute) in [10, 40].into_iter().enumerate() {
            let ts = at(0, day_before + hour * 60 + minute, 0, 0);
            let conv = format!("c-{SERVICE}-{hour}");
            b.call_as(SERVICE, &conv, ts, tools[i], None, None, None);
        }
    }
    for i in 0..40 {
        let ts = at(15, i, 30, 0);
        let conv = format!("c-{SERVICE}-burst");
        let fires = (i == 29).then_some(spike);
        b.call_as(SERVICE, &conv, ts, tools[i as usize % 2], None, None, fires);
    }
}
