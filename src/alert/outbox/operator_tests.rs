//! Unit tests of the operator's tools on the outbox: listing reads only,
//! a requeue happens once per dead letter whatever is replayed or asked
//! twice, and a refused retry changes nothing.

use std::path::Path;

use super::*;
use crate::alert::outbox::tests::open;
use crate::alert::outbox::{Failure, HOUR, Next};
use crate::alert::router::Placement;
use crate::alert::router::tests::{alert, webhook};
use crate::event::Severity;

const T0: Millis = 1_795_442_639_000;

fn cfg(channels: &[&str]) -> DeliveryConfig {
    DeliveryConfig {
        webhook: channels.iter().map(|c| webhook(c)).collect(),
        ..Default::default()
    }
}

/// Alert `id` queued for "siem", attempted at once and refused (HTTP 400):
/// one dead letter.
fn dead_letter(dir: &Path, id: &str) -> Outbox {
    let mut ob = open(dir, T0);
    let place = [Placement {
        channel: "siem".into(),
        route: "all".into(),
        group_wait: 0,
    }];
    ob.submit(&alert("rapid_tool_usage", Severity::Medium, id), &place, T0)
        .unwrap();
    assert!(matches!(
        ob.next("siem", false, 0, T0).unwrap(),
        Next::Send(_)
    ));
    ob.failed("siem", id, "HTTP 400 Bad Request: nope", false, T0 + 10)
        .unwrap();
    ob
}

fn dead_key(id: &str) -> DeadKey {
    DeadKey {
        channel: "siem".into(),
        group: id.into(),
        ts: format_ts(T0 + 10),
    }
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_listing_shows_a_dead_letter_with_its_error_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = dead_letter(d.path(), "a1");
    let place = [Placement {
        channel: "siem".into(),
        route: "all".into(),
        group_wait: 30_000,
    }];
    ob.submit(
        &alert("disabled_tool", Severity::Critical, "a2"),
        &place,
        T0 + 20,
    )
    .unwrap();
    // A line the daemon is still appending: not an operation yet.
    use std::io::Write;
    let journal = d.path().join(OUTBOX_DIR).join(super::super::JOURNAL_FILE);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap()
        .write_all(b"{\"op\":\"fail\",\"chan")
        .unwrap();
    let before = files(d.path());
    let listed = inspect(d.path()).unwrap();
    assert_eq!(files(d.path()), before, "listing wrote nothing");
    assert_eq!(
        listed,
        vec![
            Entry {
                channel: "siem".into(),
                state: "pending",
                group: "a2".into(),
                alerts: vec!["a2".into()],
                rule: "disabled_tool".into(),
                severity: "critical".into(),
                attempts: 0,
                entered: format_ts(T0 + 20),
                next_attempt: Some(format_ts(T0 + 30_020)),
                died: None,
                reason: None,
                last_error: None,
            },
            Entry {
                channel: "siem".into(),
                state: "dead",
                group: "a1".into(),
                alerts: vec!["a1".into()],
                rule: "rapid_tool_usage".into(),
                severity: "medium".into(),
                attempts: 1,
                entered: format_ts(T0),
                next_attempt: None,
                died: Some(format_ts(T0 + 10)),
                reason: Some("permanent".into()),
                last_error: Some("HTTP 400 Bad Request: nope".into()),
            },
        ]
    );
    // No state directory at all: nothing, and nothing made.
    let none = d.path().join("never");
    assert_eq!(inspect(&none).unwrap(), vec![]);
    assert!(!none.exists());
}

#[test]
fn a_requeued_dead_letter_is_sent_again_under_its_group_id_with_a_fresh_max_age() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = dead_letter(d.path(), "a1");
    let channels = Channels::of(&cfg(&["siem"]));
    let req = Request {
        dead: vec![dead_key("a1")],
        pending: vec![],
    };
    let t1 = T0 + 48 * HOUR; // long past the first max_age
    let done = ob.apply_request(&req, &channels, t1).unwrap();
    assert_eq!(done, vec![("siem".to_string(), "dead", "a1".to_string())]);
    assert_eq!(
        std::fs::read(d.path().join(super::super::DEAD_LETTER_FILE)).unwrap(),
        b"",
        "out of the dead letters"
    );
    let Next::Send(job) = ob.next("siem", false, 0, t1).unwrap() else {
        panic!("due at once");
    };
    assert_eq!(job.group, "a1");
    assert_eq!(job.attempts, 0);
    assert_eq!(job.alerts.len(), 1);
    // max_age counts from the requeue: a retryable failure is retried.
    assert!(matches!(
        ob.failed("siem", "a1", "HTTP 503", true, t1 + 1).unwrap(),
        Failure::Retry { .. }
    ));
    // Asked again: the dead letter is not there any more, nothing doubles.
    assert_eq!(ob.apply_request(&req, &channels, t1 + 2).unwrap(), vec![]);
    assert_eq!(ob.pending_count(), 1);
}

#[test]
fn a_request_applied_before_a_crash_queues_its_dead_letter_once() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = dead_letter(d.path(), "a1");
    let channels = Channels::of(&cfg(&["siem"]));
    let req = Request {
        dead: vec![dead_key("a1")],
        pending: vec![],
    };
    let path = write_request(d.path(), &req, T0 + 100).unwrap();
    // The requeue is journaled, then the process dies: the dead letter is
    // still in its file and the request file is still there.
    let stored = Lines::read(&d.path().join(super::super::DEAD_LETTER_FILE))
        .unwrap()
        .letters()
        .next()
        .unwrap()
        .stored(T0 + 100);
    ob.commit(
        Op::Requeue {
            at: T0 + 100,
            key: dead_key("a1"),
            route: REQUEUE_ROUTE.into(),
            alerts: stored,
        },
        T0 + 100,
    )
    .unwrap();
    drop(ob);
    // Restart (replay and compaction), then the request again.
    let mut ob = open(d.path(), T0 + 200);
    assert_eq!(ob.pending_count(), 1);
    assert_eq!(ob.take_requests(&channels, T0 + 200).unwrap(), vec![]);
    assert!(!path.exists(), "the request is done");
    assert_eq!(ob.pending_count(), 1, "queued once");
    assert_eq!(inspect(d.path()).unwrap().len(), 1, "no longer dead");
    // Delivered, then the same request once more (a second operator):
    // nothing comes back, through another restart too.
    ob.delivered("siem", "a1", T0 + 300).unwrap();
    drop(ob);
    let mut ob = open(d.path(), T0 + 400);
    write_request(d.path(), &req, T0 + 400).unwrap();
    assert_eq!(ob.take_requests(&channels, T0 + 400).unwrap(), vec![]);
    assert_eq!(ob.pending_count(), 0);
}

#[test]
fn a_pending_group_made_due_now_skips_its_backoff() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    let place = [Placement {
        channel: "siem".into(),
        route: "all".into(),
        group_wait: 0,
    }];
    ob.submit(&alert("x", Severity::Low, "a1"), &place, T0)
        .unwrap();
    ob.next("siem", false, 0, T0).unwrap();
    let Failure::Retry { at } = ob.failed("siem", "a1", "HTTP 503", true, T0).unwrap() else {
        panic!("retryable");
    };
    assert!(at > T0 + 1);
    assert!(matches!(ob.next("siem", false, 0, T0 + 1).unwrap(), Next::At(t) if t == at));
    let req = Request {
        dead: vec![],
        pending: vec![PendingKey {
            channel: "siem".into(),
            group: "a1".into(),
        }],
    };
    let done = ob
        .apply_request(&req, &Channels::of(&cfg(&["siem"])), T0 + 1)
        .unwrap();
    assert_eq!(
        done,
        vec![("siem".to_string(), "pending", "a1".to_string())]
    );
    assert!(matches!(
        ob.next("siem", false, 0, T0 + 1).unwrap(),
        Next::Send(_)
    ));
}

#[test]
fn a_retry_is_refused_whole_for_an_unknown_id_or_a_removed_channel() {
    let d = tempfile::tempdir().unwrap();
    drop(dead_letter(d.path(), "a1"));
    let before = files(d.path());
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let refused = |r: Result<(Vec<Entry>, Option<bool>), OutboxError>| match r {
        Err(OutboxError::Refused(why)) => why,
        other => panic!("refused, got {other:?}"),
    };
    assert_eq!(
        refused(retry(
            d.path(),
            &cfg(&["siem"]),
            true,
            &ids(&["a1", "zz"]),
            T0
        )),
        vec!["zz: no dead letter has this group or alert id"]
    );
    assert_eq!(
        refused(retry(d.path(), &cfg(&["siem"]), false, &ids(&["a1"]), T0)),
        vec!["a1: not pending but a dead letter (retry it with --dead)"]
    );
    assert_eq!(
        refused(retry(d.path(), &cfg(&["soc"]), true, &[], T0)),
        vec![
            "dead a1: channel \"siem\": refused while no channel of that name exists (configured: soc)"
        ]
    );
    let after: Vec<_> = files(d.path())
        .into_iter()
        .filter(|(p, _)| !p.ends_with(crate::state::LOCK_FILE))
        .collect();
    assert_eq!(after, before, "nothing changed");
    // Accepted: applied here, at once (no daemon holds the lock).
    let (entries, by) = retry(d.path(), &cfg(&["siem"]), true, &ids(&["a1"]), T0 + 1).unwrap();
    assert_eq!((entries.len(), by), (1, None));
    assert_eq!(inspect(d.path()).unwrap()[0].state, "pending");
}
