//! The committed `fixtures/example/` is exactly what `testkit::write_example`
//! writes, and its planted anomalies are exactly what a brute-force reading
//! of SPEC §3 finds in it.
//!
//! Set `MCPWATCH_BLESS=1` to rewrite the committed files from the
//! generator (then review the diff and commit it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use mcpwatch::event::{Decision, Event, Kind, Millis, Outcome};
use mcpwatch::ingest::lines::{LineReader, open_log};
use mcpwatch::ingest::parse::Parser;
use mcpwatch::testkit::{self, EXAMPLE_DAY_MS, EXAMPLE_FILES};

use crate::support;

fn committed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example")
}

#[test]
fn committed_example_equals_generator_output() {
    if support::blessing() {
        testkit::write_example(&committed()).expect("regenerate fixtures/example");
    }
    let fresh = tempfile::tempdir().expect("tempdir");
    testkit::write_example(fresh.path()).expect("generate");
    for name in EXAMPLE_FILES {
        let want = std::fs::read(fresh.path().join(name)).expect("generated file");
        let have = std::fs::read(committed().join(name)).unwrap_or_else(|e| {
            panic!("fixtures/example/{name}: {e}; run MCPWATCH_BLESS=1 cargo test --test it fixtures_gen::")
        });
        assert!(
            have == want,
            "fixtures/example/{name} differs from the generator; \
             run MCPWATCH_BLESS=1 cargo test --test it fixtures_gen::"
        );
    }
}

struct Line {
    file: usize,
    line: u64,
    event: Event,
    /// The line as JSON, for the fields `Event` keeps to the crate
    /// (`conversation_id`, `tool_hash`; the example writes them by their
    /// canonical names).
    json: serde_json::Value,
}

impl Line {
    fn text(&self, field: &str) -> Option<&str> {
        self.json.get(field).and_then(|v| v.as_str())
    }
}

const FILES: [(&str, Kind); 3] = [
    ("tool-usage.log", Kind::ToolCall),
    ("approvals.log", Kind::Approval),
    ("errors.log", Kind::Error),
];

/// Every line of the example, parsed; panics on any rejected line.
fn read_example(dir: &Path) -> Vec<Line> {
    let parser = Parser {
        max_line_bytes: 1 << 20,
        now_ms: EXAMPLE_DAY_MS + 2 * 86_400_000,
    };
    let mut out = Vec::new();
    for (i, (name, kind)) in FILES.into_iter().enumerate() {
        let path = dir.join(".elevenlabs/audit").join(name);
        let mut r = LineReader::new(open_log(&path).expect("open"), 1 << 20);
        let mut last_ts = Millis::MIN;
        while let Some((n, line)) = r.next_line().expect("read") {
            let line = line.expect("no too_long line");
            let event = parser
                .parse(kind, line)
                .unwrap_or_else(|e| panic!("{name}:{n}: rejected as {}", e.as_str()));
            assert!(event.ts >= last_ts, "{name}:{n}: out of ts order");
            last_ts = event.ts;
            out.push(Line {
                file: i,
                line: n,
                event,
                json: serde_json::from_slice(line).expect("JSON"),
            });
        }
    }
    // The merge of SPEC §3: by ts, ties in file order, each file in order.
    out.sort_by_key(|l| (l.event.ts, l.file, l.line));
    out
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Class {
    Auto,
    Requires,
    Disabled,
}

/// A direct reading of the tool policy of SPEC §2 over the example config.
struct Policy {
    lists: Vec<(Class, Vec<String>, Vec<String>)>,
}

fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, rest)) => {
            if !name.starts_with(pre) {
                return false;
            }
            let tail = &name[pre.len()..];
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

impl Policy {
    fn load(dir: &Path) -> Policy {
        let text = std::fs::read_to_string(dir.join("security-config.json")).expect("config");
        let v: serde_json::Value = serde_json::from_str(&text).expect("config is JSON");
        assert_eq!(v["approvalMode"], "fine_grained");
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let lists = [
            (Class::Auto, "autoApproved"),
            (Class::Requires, "requiresApproval"),
            (Class::Disabled, "disabled"),
        ]
        .into_iter()
        .map(|(c, k)| {
            let r = &v["rules"][k];
            (c, strings(&r["tools"]), strings(&r["patterns"]))
        })
        .collect();
        Policy { lists }
    }

    fn named(&self, tool: &str) -> bool {
        self.lists
            .iter()
            .any(|(_, tools, _)| tools.iter().any(|t| t == tool))
    }

    fn class(&self, tool: &str) -> Class {
        let exact = self
            .lists
            .iter()
            .filter(|(_, tools, _)| tools.iter().any(|t| t == tool))
            .map(|(c, _, _)| *c)
            .max();
        let pattern = self
            .lists
            .iter()
            .filter(|(_, _, pats)| pats.iter().any(|p| glob(p, tool)))
            .map(|(c, _, _)| *c)
            .max();
        exact.or(pattern).unwrap_or(Class::Requires)
    }
}

type Key = BTreeMap<String, String>;

fn key(pairs: &[(&str, Option<&str>)]) -> Key {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.unwrap_or("unknown").to_string()))
        .collect()
}

/// Fired alerts as (rule, key, ts, file, line): SPEC §3 read as plainly as
/// possible, quadratic where that is simplest.
fn reference_alerts(dir: &Path) -> BTreeSet<(String, Key, Millis, String, u64)> {
    const S: Millis = 1000;
    let policy = Policy::load(dir);
    let lines = read_example(dir);
    let mut fired = BTreeSet::new();
    let mut last: HashMap<(String, Key), Millis> = HashMap::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut hit = |rule: &str, k: Key, l: &Line, realert: Option<Millis>| {
        let t = l.event.ts;
        if let Some(prev) = last.get(&(rule.to_string(), k.clone())) {
            match realert {
                None => return,
                Some(r) if t < prev + r => return,
                Some(_) => {}
            }
        }
        last.insert((rule.to_string(), k.clone()), t);
        fired.insert((rule.to_string(), k, t, FILES[l.file].0.to_string(), l.line));
    };
    let mut hashes: HashMap<(String, String), Vec<String>> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        let e = &l.event;
        let t = e.ts;
        let done = &lines[..=i];
        if e.kind == Some(Kind::ToolCall) {
            beyond_thresholds(&lines[..i], l, &mut hit);
            // tool_definition_drift: every new hash of a pair but its first.
            if let Some(h) = l.text("tool_hash") {
                let server = e.server_name.as_deref().unwrap_or("unknown");
                let tool = e.tool_name.as_deref().unwrap_or("unknown");
                let seen = hashes.entry((server.into(), tool.into())).or_default();
                if !seen.iter().any(|s| s == h) {
                    if !seen.is_empty() {
                        let k = key(&[("server_name", Some(server)), ("tool_name", Some(tool))]);
                        hit("tool_definition_drift", k, l, Some(0));
                    }
                    seen.push(h.to_string());
                }
            }
        }
        let same = |f: usize, pred: &dyn Fn(&Event) -> bool, w: Millis| {
            done.iter()
                .filter(|o| o.file == f && o.event.ts > t - w && pred(&o.event))
                .count()
        };
        match e.kind {
            Some(Kind::ToolCall) => {
                let user = e.user_id.as_deref();
                let n = same(0, &|o| o.user_id.as_deref() == user, 60 * S);
                if n > 10 {
                    hit(
                        "rapid_tool_usage",
                        key(&[("user_id", user)]),
                        l,
                        Some(600 * S),
                    );
                }
                let hour = t.rem_euclid(86_400_000) / 3_600_000;
                if hour <= 5 {
                    hit(
                        "unusual_hours",
                        key(&[("user_id", user)]),
                        l,
                        Some(3600 * S),
                    );
                }
                let tool = e.tool_name.as_deref().unwrap_or("unknown");
                let server = e.server_name.as_deref().unwrap_or("unknown");
                if !policy.named(tool) && seen.insert((server.into(), tool.into())) {
                    let k = key(&[("server_name", Some(server)), ("tool_name", Some(tool))]);
                    hit("new_tool_usage", k, l, None);
                }
                let class = policy.class(tool);
                if class == Class::Disabled {
                    let k = key(&[
                        ("user_id", user),
                        ("server_name", Some(server)),
                        ("tool_name", Some(tool)),
                    ]);
                    hit("disabled_tool", k, l, Some(60 * S));
                }
                if class == Class::Requires
                    && e.outcome != Some(Outcome::Denied)
                    && let Some(rid) = e.request_id.as_deref()
                {
                    let approved = lines.iter().any(|o| {
                        o.file == 1
                            && o.event.request_id.as_deref() == Some(rid)
                            && o.event.decision == Some(Decision::Approve)
                            && o.event.ts >= t - 3600 * S
                            && o.event.ts <= t + 5 * S
                    });
                    let decided = lines.iter().any(|o| o.event.ts > t + 5 * S);
                    if !approved && decided {
                        hit(
                            "approval_bypass",
                            key(&[("request_id", Some(rid))]),
                            l,
                            None,
                        );
                    }
                }
            }
            Some(Kind::Approval) => {
                let user = e.user_id.as_deref();
                let mine = |o: &Event| o.user_id.as_deref() == user && o.decision.is_some();
                let n = same(1, &mine, 3600 * S);
                let denied = same(
                    1,
                    &|o| mine(o) && matches!(o.decision, Some(Decision::Deny | Decision::Timeout)),
                    3600 * S,
                );
                if n >= 5 && denied as f64 / n as f64 > 0.5 {
                    hit(
                        "high_denial_rate",
                        key(&[("user_id", user)]),
                        l,
                        Some(1800 * S),
                    );
                }
            }
            Some(Kind::Error) => {
                let server = e.server_name.as_deref();
                let n = same(2, &|o| o.server_name.as_deref() == server, 300 * S);
                if n > 5 {
                    hit(
                        "error_spike",
                        key(&[("server_name", server)]),
                        l,
                        Some(900 * S),
                    );
                }
            }
            None => unreachable!("the parser sets kind"),
        }
    }
    fired
}

/// Records a hit: (rule, key, firing line, realert).
type Hit<'a> = dyn FnMut(&str, Key, &Line, Option<Millis>) + 'a;

/// `exfil_sequence` and `usage_baseline_spike` at the call `l`, given
/// every line processed before it: SPEC §3 read plainly.
fn beyond_thresholds(before: &[Line], l: &Line, hit: &mut Hit<'_>) {
    const MIN: Millis = 60_000;
    const HOUR: Millis = 3_600_000;
    let e = &l.event;
    let t = e.ts;
    let calls = || before.iter().filter(|o| o.file == 0);
    let ok = |o: &Line| !matches!(o.event.outcome, Some(Outcome::Denied | Outcome::Error));
    let ends = |o: &Line, suffixes: &[&str]| {
        let tool = o.event.tool_name.as_deref().unwrap_or("unknown");
        suffixes.iter().any(|s| tool.ends_with(s))
    };
    // The key: the conversation, else the user.
    let key_of = |o: &Line| {
        o.text("conversation_id")
            .map(|c| ("conversation_id", c.to_string()))
            .or_else(|| {
                o.event
                    .user_id
                    .as_deref()
                    .map(|u| ("user_id", u.to_string()))
            })
    };
    let sinks = [
        "_send", "_post", "_upload", "_share", "_forward", "_publish",
    ];
    let sources = [
        "_read",
        "_get",
        "_search",
        "_export",
        "_list",
        "_query",
        "_download",
    ];
    if let Some(k) = key_of(l)
        && ends(l, &sinks)
        && ok(l)
        && calls().any(|o| {
            key_of(o).as_ref() == Some(&k)
                && ends(o, &sources)
                && ok(o)
                && o.event.server_name != e.server_name
                && o.event.ts > t - 10 * MIN
                && o.event.ts <= t
        })
    {
        hit(
            "exfil_sequence",
            key(&[(k.0, Some(&k.1))]),
            l,
            Some(60 * MIN),
        );
    }
    // The user's hourly counts so far, folded from scratch.
    let user = e.user_id.as_deref();
    let mine: Vec<Millis> = calls()
        .filter(|o| o.event.user_id.as_deref() == user)
        .map(|o| o.event.ts)
        .chain([t])
        .collect();
    let (mut hours, mut current, mut c) = (Vec::new(), mine[0] / HOUR, 0u64);
    for ts in &mine {
        let h = ts / HOUR;
        if h > current {
            hours.push(c as f64);
            hours.extend(std::iter::repeat_n(
                0.0,
                (h - current - 1).min(168) as usize,
            ));
            (current, c) = (h, 0);
        }
        c += 1;
    }
    let (mut m, mut v) = (0.0f64, 0.0f64);
    for x in &hours {
        let d = x - m;
        m += 0.1 * d;
        v = 0.9 * (v + (0.1 * d) * d);
    }
    if hours.len() >= 24 && c >= 30 && c as f64 > m + 4.0 * v.sqrt() {
        hit(
            "usage_baseline_spike",
            key(&[("user_id", user)]),
            l,
            Some(HOUR),
        );
    }
}

#[test]
fn example_fires_exactly_the_planted_anomalies() {
    let dir = tempfile::tempdir().expect("tempdir");
    testkit::write_example(dir.path()).expect("generate");
    let got = reference_alerts(dir.path());
    let want: BTreeSet<_> = testkit::planted()
        .into_iter()
        .map(|p| (p.rule.to_string(), p.key, p.ts, p.file.to_string(), p.line))
        .collect();
    assert_eq!(got, want);
    let rules: BTreeSet<_> = want.iter().map(|w| w.0.clone()).collect();
    assert_eq!(rules.len(), 10, "one planted anomaly per rule of SPEC §3");
}

#[test]
fn example_has_a_realistic_volume_and_alias_mix() {
    let dir = tempfile::tempdir().expect("tempdir");
    testkit::write_example(dir.path()).expect("generate");
    let lines = read_example(dir.path());
    let calls = lines.iter().filter(|l| l.file == 0).count();
    let approvals = lines.iter().filter(|l| l.file == 1).count();
    let errors = lines.iter().filter(|l| l.file == 2).count();
    assert!((2000..6000).contains(&calls), "{calls} calls");
    assert!(approvals > 300, "{approvals} approvals");
    assert!((10..100).contains(&errors), "{errors} errors");
    let users: BTreeSet<_> = lines
        .iter()
        .filter_map(|l| l.event.user_id.clone())
        .collect();
    // 36 users of normal traffic and the planted service account.
    assert_eq!(users.len(), 37);
    let raw =
        std::fs::read_to_string(dir.path().join(".elevenlabs/audit/tool-usage.log")).expect("read");
    for alias in [
        "\"timestamp\"",
        "\"requestId\"",
        "\"user\"",
        "\"latency_ms\"",
    ] {
        assert!(raw.contains(alias), "some lines use {alias}");
    }
}
