//! Unit tests of the [`Outbox`](super::Outbox), through its public methods:
//! grouping, de-duplication, backoff, dead letters, `max_per_hour` folding,
//! restart and compaction. A file of their own (as in `config/` and
//! `detect/`) because they span every room of the outbox.

use std::fs::OpenOptions;
use std::io::Write;

use super::*;
use crate::alert::router::Placement;
use crate::alert::router::tests::alert;
use crate::event::Severity;

const T0: Millis = 1_795_442_639_000;

fn place(channel: &str, route: &str, wait: Millis) -> Placement {
    Placement {
        channel: channel.to_string(),
        route: route.to_string(),
        group_wait: wait,
    }
}

/// An outbox with the defaults the tests assume: 24 h max_age, backoff
/// from 1 s to a minute.
pub(super) fn open(dir: &Path, now: Millis) -> Outbox {
    Outbox::open(
        dir,
        24 * HOUR,
        Backoff {
            base: 1_000,
            max: 60_000,
        },
        now,
    )
    .unwrap()
}

fn job(n: Next) -> Job {
    match n {
        Next::Send(j) => j,
        other => panic!("expected a job, got {other:?}"),
    }
}

fn ids(j: &Job) -> Vec<&str> {
    j.alerts.iter().map(|a| a.id.as_str()).collect()
}

#[test]
fn alerts_within_group_wait_form_one_group_keyed_by_first_id() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    let p = [place("siem", "r0", 30_000)];
    for (i, id) in ["a1", "a2", "a3"].iter().enumerate() {
        let r = ob
            .submit(
                &alert("rapid_tool_usage", Severity::Medium, id),
                &p,
                T0 + i as i64 * 1000,
            )
            .unwrap();
        assert_eq!(r, Submitted::Queued(vec!["siem".to_string()]));
    }
    assert!(
        matches!(ob.next("siem", false, 0, T0 + 29_999).unwrap(), Next::At(t) if t == T0 + 30_000)
    );
    let j = job(ob.next("siem", false, 0, T0 + 30_000).unwrap());
    assert_eq!(j.group, "a1");
    assert_eq!(ids(&j), vec!["a1", "a2", "a3"]);
    // The group is closed now: a new alert starts a new group.
    ob.submit(&alert("x", Severity::Medium, "a4"), &p, T0 + 30_001)
        .unwrap();
    assert_eq!(ob.pending_count(), 2);
    ob.delivered("siem", "a1", T0 + 30_002).unwrap();
    assert!(
        matches!(ob.next("siem", false, 0, T0 + 30_003).unwrap(), Next::At(t) if t == T0 + 60_001)
    );
}

#[test]
fn submit_deduplicates_pending_and_recently_delivered_ids() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    let p = [place("siem", "r0", 0)];
    let a = alert("x", Severity::Low, "dup");
    assert!(matches!(
        ob.submit(&a, &p, T0).unwrap(),
        Submitted::Queued(_)
    ));
    assert_eq!(ob.submit(&a, &p, T0).unwrap(), Submitted::Duplicate);
    let j = job(ob.next("siem", false, 0, T0).unwrap());
    ob.delivered("siem", &j.group, T0 + 1).unwrap();
    assert_eq!(ob.submit(&a, &p, T0 + 2).unwrap(), Submitted::Duplicate);
    // Also across a restart.
    drop(ob);
    let mut ob = open(d.path(), T0 + 3);
    assert_eq!(ob.submit(&a, &p, T0 + 3).unwrap(), Submitted::Duplicate);
    assert_eq!(ob.pending_count(), 0);
}

#[test]
fn retryable_failures_back_off_exponentially_with_jitter() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    ob.submit(
        &alert("x", Severity::Low, "a"),
        &[place("siem", "r0", 0)],
        T0,
    )
    .unwrap();
    let mut now = T0;
    for attempt in 1..=8u32 {
        let j = job(ob.next("siem", false, 0, now).unwrap());
        assert_eq!(j.attempts, attempt - 1);
        let f = ob.failed("siem", "a", "HTTP 503", true, now).unwrap();
        let Failure::Retry { at } = f else {
            panic!("{f:?}")
        };
        let full = (1_000i64 << (attempt - 1)).min(60_000);
        assert!(
            at - now >= full / 2 && at - now <= full,
            "attempt {attempt}: {}",
            at - now
        );
        assert!(matches!(ob.next("siem", false, 0, at - 1).unwrap(), Next::At(t) if t == at));
        now = at;
    }
    assert_eq!(ob.pending()[0].last_error.as_deref(), Some("HTTP 503"));
}

#[test]
fn permanent_failure_goes_straight_to_dead_letters_with_error() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    ob.submit(
        &alert("x", Severity::Low, "a"),
        &[place("siem", "r0", 0)],
        T0,
    )
    .unwrap();
    job(ob.next("siem", false, 0, T0).unwrap());
    let f = ob
        .failed("siem", "a", "HTTP 400 Bad Request", false, T0)
        .unwrap();
    assert_eq!(f, Failure::Dead { expired: false });
    assert_eq!(ob.pending_count(), 0);
    let dl = std::fs::read_to_string(d.path().join(DEAD_LETTER_FILE)).unwrap();
    let v: serde_json::Value = serde_json::from_str(dl.trim()).unwrap();
    assert_eq!(v["channel"], "siem");
    assert_eq!(v["group"], "a");
    assert_eq!(v["attempts"], 1);
    assert_eq!(v["reason"], "permanent");
    assert_eq!(v["error"], "HTTP 400 Bad Request");
    assert_eq!(v["alerts"][0]["id"], "a");
}

#[test]
fn retries_stop_exactly_at_max_age_then_dead_letter() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = Outbox::open(
        d.path(),
        10_000,
        Backoff {
            base: 4_000,
            max: 8_000,
        },
        T0,
    )
    .unwrap();
    ob.submit(
        &alert("x", Severity::Low, "a"),
        &[place("siem", "r0", 0)],
        T0,
    )
    .unwrap();
    let mut now = T0;
    let mut last = None;
    for _ in 0..10 {
        let Next::Send(j) = ob.next("siem", false, 0, now).unwrap() else {
            break;
        };
        let f = ob
            .failed("siem", &j.group, "connection refused", true, now)
            .unwrap();
        last = Some(f);
        match f {
            Failure::Retry { at } => {
                assert!(at <= T0 + 10_000, "never scheduled past max_age");
                now = at;
            }
            Failure::Dead { .. } => break,
        }
    }
    assert_eq!(last, Some(Failure::Dead { expired: true }));
    assert_eq!(now, T0 + 10_000, "the last attempt is at max_age exactly");
    let dl = std::fs::read_to_string(d.path().join(DEAD_LETTER_FILE)).unwrap();
    assert!(dl.contains("\"reason\":\"max_age\""));
    assert!(dl.contains("connection refused"));
}

#[test]
fn retryable_failure_holds_the_whole_channel_until_its_retry() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    for (i, r) in ["r0", "r1", "r2"].iter().enumerate() {
        ob.submit(
            &alert("x", Severity::Low, &format!("g{i}")),
            &[place("siem", r, 0)],
            T0,
        )
        .unwrap();
    }
    let j = job(ob.next("siem", false, 0, T0).unwrap());
    let Failure::Retry { at } = ob.failed("siem", &j.group, "HTTP 503", true, T0).unwrap() else {
        panic!("expected a retry")
    };
    // Two more groups are due, but the receiver is down: no request.
    assert!(matches!(ob.next("siem", false, 0, T0 + 1).unwrap(), Next::At(t) if t == at));
    // A second failure (another group) backs the channel off further.
    let j = job(ob.next("siem", false, 0, at).unwrap());
    let Failure::Retry { at: at2 } = ob.failed("siem", &j.group, "HTTP 503", true, at).unwrap()
    else {
        panic!("expected a retry")
    };
    assert!(at2 - at >= 1_000, "second consecutive failure waits 1-2 s");
    // Recovery releases every group at once.
    let j = job(ob.next("siem", false, 0, at2).unwrap());
    ob.delivered("siem", &j.group, at2).unwrap();
    let j = job(ob.next("siem", false, 0, at2).unwrap());
    ob.delivered("siem", &j.group, at2).unwrap();
    assert!(matches!(
        ob.next("siem", false, 0, at2).unwrap(),
        Next::Send(_)
    ));
}

#[test]
fn channels_progress_independently() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    let p = [place("mail", "r0", 0), place("siem", "r0", 0)];
    ob.submit(&alert("x", Severity::Low, "a"), &p, T0).unwrap();
    job(ob.next("siem", false, 0, T0).unwrap());
    ob.failed("siem", "a", "HTTP 503", true, T0).unwrap();
    let j = job(ob.next("mail", true, 0, T0).unwrap());
    ob.delivered("mail", &j.group, T0).unwrap();
    assert_eq!(ob.pending_count(), 1);
    assert_eq!(ob.pending()[0].channel, "siem");
}

#[test]
fn email_over_max_per_hour_folds_alerts_into_next_message() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    let p = [place("mail", "r0", 0)];
    for i in 0..2 {
        let id = format!("s{i}");
        ob.submit(&alert("x", Severity::Low, &id), &p, T0 + i)
            .unwrap();
        let j = job(ob.next("mail", true, 2, T0 + i).unwrap());
        ob.delivered("mail", &j.group, T0 + i).unwrap();
    }
    // Limit reached: three more alerts wait, then go out as one message.
    for i in 0..3 {
        let id = format!("w{i}");
        ob.submit(&alert("x", Severity::Low, &id), &p, T0 + 100 + i * 10)
            .unwrap();
        // A closed group would not take more; the waiting one is open.
    }
    assert!(matches!(ob.next("mail", true, 2, T0 + 1_000).unwrap(), Next::At(t) if t == T0 + HOUR));
    let j = job(ob.next("mail", true, 2, T0 + HOUR).unwrap());
    assert_eq!(ids(&j), vec!["w0", "w1", "w2"]);
}

#[test]
fn email_folds_groups_of_several_routes_due_together() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    ob.submit(
        &alert("x", Severity::Low, "a"),
        &[place("mail", "r0", 5)],
        T0,
    )
    .unwrap();
    ob.submit(
        &alert("y", Severity::Low, "b"),
        &[place("mail", "r1", 5)],
        T0 + 1,
    )
    .unwrap();
    let j = job(ob.next("mail", true, 0, T0 + 10).unwrap());
    assert_eq!(j.group, "a");
    assert_eq!(ids(&j), vec!["a", "b"]);
    assert_eq!(ob.pending_count(), 1);
    // Webhooks keep one POST per group.
    ob.submit(
        &alert("x", Severity::Low, "c"),
        &[place("siem", "r0", 5)],
        T0,
    )
    .unwrap();
    ob.submit(
        &alert("y", Severity::Low, "d"),
        &[place("siem", "r1", 5)],
        T0,
    )
    .unwrap();
    let j = job(ob.next("siem", false, 0, T0 + 10).unwrap());
    assert_eq!(ids(&j), vec!["c"]);
}

#[test]
fn restart_keeps_groups_ids_attempts_and_torn_journal_line_is_ignored() {
    let d = tempfile::tempdir().unwrap();
    {
        let mut ob = open(d.path(), T0);
        let p = [place("siem", "r0", 30_000)];
        ob.submit(&alert("x", Severity::Low, "g1"), &p, T0).unwrap();
        ob.submit(&alert("x", Severity::Low, "g2"), &p, T0 + 1)
            .unwrap();
        ob.submit(
            &alert("x", Severity::Low, "h1"),
            &[place("mail", "r0", 0)],
            T0,
        )
        .unwrap();
        job(ob.next("mail", true, 0, T0).unwrap());
        ob.failed("mail", "h1", "421 try later", true, T0).unwrap();
        // Dropped without compaction, as after kill -9.
    }
    let jpath = d.path().join(OUTBOX_DIR).join(JOURNAL_FILE);
    let mut f = OpenOptions::new().append(true).open(&jpath).unwrap();
    f.write_all(b"{\"op\":\"submit\",\"at\":1,\"ale").unwrap();
    drop(f);
    let mut ob = open(d.path(), T0 + 5);
    assert_eq!(ob.pending_count(), 2);
    let siem = ob.pending().iter().find(|p| p.channel == "siem").unwrap();
    assert_eq!(siem.group, "g1");
    assert_eq!(siem.alerts, vec!["g1", "g2"]);
    assert_eq!(siem.send_at, T0 + 30_000);
    let mail = ob.pending().iter().find(|p| p.channel == "mail").unwrap();
    assert_eq!(mail.attempts, 1);
    assert!(mail.closed);
    // A third alert still joins the open group after the restart.
    ob.submit(
        &alert("x", Severity::Low, "g3"),
        &[place("siem", "r0", 30_000)],
        T0 + 6,
    )
    .unwrap();
    let j = job(ob.next("siem", false, 0, T0 + 30_000).unwrap());
    assert_eq!(ids(&j), vec!["g1", "g2", "g3"]);
    // Journal was compacted at open.
    drop(ob);
    let ob = open(d.path(), T0 + 30_001);
    assert!(ob.pending().iter().any(|p| p.group == "g1" && p.closed));
}

#[test]
fn replaying_journal_over_snapshot_that_has_it_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let jpath = d.path().join(OUTBOX_DIR).join(JOURNAL_FILE);
    let saved;
    {
        let mut ob = open(d.path(), T0);
        ob.submit(
            &alert("x", Severity::Low, "a"),
            &[place("siem", "r0", 0)],
            T0,
        )
        .unwrap();
        job(ob.next("siem", false, 0, T0).unwrap());
        ob.failed("siem", "a", "HTTP 503", true, T0).unwrap();
        saved = std::fs::read(&jpath).unwrap();
        ob.compact(T0).unwrap();
    }
    // Crash between snapshot and journal truncation: the journal is back.
    std::fs::write(&jpath, &saved).unwrap();
    let ob = open(d.path(), T0 + 1);
    assert_eq!(ob.pending_count(), 1);
    assert_eq!(ob.pending()[0].alerts, vec!["a"]);
    assert_eq!(ob.pending()[0].attempts, 1);
}

#[test]
fn journal_is_compacted_and_full_groups_start_new_ones() {
    let d = tempfile::tempdir().unwrap();
    let jpath = d.path().join(OUTBOX_DIR).join(JOURNAL_FILE);
    let mut ob = open(d.path(), T0);
    let p = vec![place("siem", "r0", 60_000)];
    let alerts: Vec<Alert> = (0..COMPACT_EVERY_OPS + 5)
        .map(|i| alert("x", Severity::Low, &format!("a{i:05}")))
        .collect();
    let batch: Vec<(&Alert, Vec<Placement>)> = alerts.iter().map(|a| (a, p.clone())).collect();
    let r = ob.submit_batch(&batch, T0).unwrap();
    assert!(r.iter().all(|r| matches!(r, Submitted::Queued(_))));
    // Submitting the batch again adds nothing.
    let r = ob.submit_batch(&batch, T0).unwrap();
    assert!(r.iter().all(|r| *r == Submitted::Duplicate));
    let journal_lines = std::fs::read_to_string(&jpath).unwrap().lines().count();
    assert_eq!(journal_lines, 5, "compacted after {COMPACT_EVERY_OPS} ops");
    let sizes: Vec<usize> = ob.pending().iter().map(|p| p.alerts.len()).collect();
    assert_eq!(sizes, vec![MAX_GROUP_ALERTS, MAX_GROUP_ALERTS, 5]);
    drop(ob);
    let ob = open(d.path(), T0 + 1);
    let sizes: Vec<usize> = ob.pending().iter().map(|p| p.alerts.len()).collect();
    assert_eq!(sizes, vec![MAX_GROUP_ALERTS, MAX_GROUP_ALERTS, 5]);
    assert_eq!(ob.pending()[1].group, format!("a{MAX_GROUP_ALERTS:05}"));
}

mod model {
    //! Random runs of submit / time / attempts / restarts against the
    //! outbox's promise: every routed alert reaches each of its channels
    //! exactly once, delivered or dead-lettered, whatever the order of
    //! events and however often the process restarts between them.
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap as Map;

    #[derive(Clone, Debug)]
    enum Step {
        Submit {
            id: u8,
            mail: Option<u8>,
            siem: Option<u8>,
            wait: i64,
        },
        Advance(i64),
        Attempt {
            mail: bool,
            outcome: u8,
        },
        Reopen,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..12, proptest::option::of(0u8..2), proptest::option::of(0u8..2), 0i64..3_000)
                .prop_map(|(id, mail, siem, wait)| Step::Submit { id, mail, siem, wait }),
            2 => (0i64..4_000).prop_map(Step::Advance),
            4 => (any::<bool>(), 0u8..4).prop_map(|(mail, outcome)| Step::Attempt { mail, outcome }),
            1 => Just(Step::Reopen),
        ]
    }

    /// Per channel: alert id → times delivered or dead-lettered.
    type Seen = Map<&'static str, Map<String, u32>>;

    fn attempt(ob: &mut Outbox, ch: &'static str, outcome: u8, now: Millis, seen: &mut Seen) {
        let Next::Send(job) = ob.next(ch, ch == "mail", 3, now).unwrap() else {
            return;
        };
        let ended = match outcome {
            0 | 1 => {
                ob.delivered(ch, &job.group, now).unwrap();
                true
            }
            2 => matches!(
                ob.failed(ch, &job.group, "HTTP 503", true, now).unwrap(),
                Failure::Dead { .. }
            ),
            _ => {
                ob.failed(ch, &job.group, "HTTP 400", false, now).unwrap();
                true
            }
        };
        if ended {
            for a in &job.alerts {
                *seen.entry(ch).or_default().entry(a.id.clone()).or_default() += 1;
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn every_routed_alert_ends_exactly_once_per_channel(steps in proptest::collection::vec(step(), 1..40)) {
            let d = tempfile::tempdir().unwrap();
            let backoff = Backoff { base: 500, max: 2_000 };
            let max_age = 1_000_000_000;
            let mut now = T0;
            let mut ob = Outbox::open(d.path(), max_age, backoff, now).unwrap();
            let mut expected: Map<&'static str, std::collections::BTreeSet<String>> = Map::new();
            let mut seen: Seen = Map::new();
            for s in steps {
                match s {
                    Step::Submit { id, mail, siem, wait } => {
                        let id = format!("id{id}");
                        let mut p = Vec::new();
                        if let Some(r) = mail { p.push(place("mail", &format!("r{r}"), wait)); }
                        if let Some(r) = siem { p.push(place("siem", &format!("r{r}"), wait)); }
                        let known = ob.knows(&id);
                        let r = ob.submit(&alert("x", Severity::Low, &id), &p, now).unwrap();
                        if !known && !p.is_empty() {
                            prop_assert!(matches!(r, Submitted::Queued(_)));
                            for pl in &p {
                                let ch = if pl.channel == "mail" { "mail" } else { "siem" };
                                expected.entry(ch).or_default().insert(id.clone());
                            }
                        }
                    }
                    Step::Advance(dt) => now += dt,
                    Step::Attempt { mail, outcome } => {
                        attempt(&mut ob, if mail { "mail" } else { "siem" }, outcome, now, &mut seen);
                    }
                    Step::Reopen => {
                        drop(ob);
                        ob = Outbox::open(d.path(), max_age, backoff, now).unwrap();
                    }
                }
            }
            // Drain: time passes, channels recover.
            for _ in 0..10_000 {
                let mut idle = true;
                for ch in ["mail", "siem"] {
                    match ob.next(ch, ch == "mail", 3, now).unwrap() {
                        Next::Idle => {}
                        Next::At(t) => { idle = false; now = now.max(t); }
                        Next::Send(_) => { idle = false; attempt(&mut ob, ch, 0, now, &mut seen); }
                    }
                }
                if idle { break; }
            }
            prop_assert_eq!(ob.pending_count(), 0);
            for ch in ["mail", "siem"] {
                let want = expected.get(ch).cloned().unwrap_or_default();
                let got = seen.get(ch).cloned().unwrap_or_default();
                prop_assert_eq!(got.keys().cloned().collect::<std::collections::BTreeSet<_>>(), want);
                prop_assert!(got.values().all(|n| *n == 1), "{}: {:?}", ch, got);
            }
        }
    }
}

#[test]
fn not_routed_alert_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    let r = ob.submit(&alert("x", Severity::Low, "a"), &[], T0).unwrap();
    assert_eq!(r, Submitted::NotRouted);
    let jpath = d.path().join(OUTBOX_DIR).join(JOURNAL_FILE);
    assert_eq!(std::fs::metadata(jpath).unwrap().len(), 0);
}

#[test]
fn a_pending_delivery_of_a_removed_channel_goes_to_the_dead_letters_at_start() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    ob.submit(
        &alert("disabled_tool", Severity::Critical, "a1"),
        &[place("old-siem", "r0", 0), place("siem", "r0", 0)],
        T0,
    )
    .unwrap();
    drop(ob);
    let mut ob = open(d.path(), T0 + 1000);
    let dropped = ob.drop_unknown_channels(&["siem"], &[], T0 + 1000).unwrap();
    assert_eq!(dropped.get("old-siem"), Some(&1));
    assert_eq!(
        ob.pending_count(),
        1,
        "the known channel keeps its delivery"
    );
    let dead = std::fs::read_to_string(d.path().join(DEAD_LETTER_FILE)).unwrap();
    assert!(dead.contains("\"reason\":\"channel_removed\""), "{dead}");
    assert!(dead.contains("\"channel\":\"old-siem\""), "{dead}");
    drop(ob);
    // Once moved, it stays moved.
    let mut ob = open(d.path(), T0 + 2000);
    assert!(
        ob.drop_unknown_channels(&["siem"], &[], T0 + 2000)
            .unwrap()
            .is_empty()
    );
    assert_eq!(ob.pending_count(), 1);
}

#[test]
fn a_deleted_outbox_directory_is_written_again_with_every_pending_alert() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    let p = [place("siem", "r0", 60_000)];
    ob.submit(&alert("x", Severity::High, "a1"), &p, T0)
        .unwrap();
    std::fs::remove_dir_all(d.path().join(OUTBOX_DIR)).unwrap();
    ob.submit(&alert("x", Severity::High, "a2"), &p, T0 + 1)
        .unwrap();
    drop(ob);
    let mut ob = open(d.path(), T0 + 2);
    assert_eq!(ob.pending_count(), 1);
    let j = job(ob.next("siem", false, 0, T0 + 60_000).unwrap());
    assert_eq!(ids(&j), vec!["a1", "a2"], "nothing pending was lost");
}

#[test]
fn action_runs_each_alert_alone_in_order_with_its_line_fields_across_restart() {
    let d = tempfile::tempdir().unwrap();
    let mut ob = open(d.path(), T0);
    let p = [place("disable", crate::alert::router::ACTION_ROUTE, 0)];
    for id in ["a1", "a2"] {
        let mut a = alert("disabled_tool", Severity::Critical, id);
        a.line_fields.push(("server_name", format!("srv-{id}")));
        ob.submit(&a, &p, T0).unwrap();
    }
    assert_eq!(ob.pending_count(), 2);
    // A kill -9 here: the journal has both, fields included.
    drop(ob);
    let mut ob = open(d.path(), T0 + 1);
    let j = job(ob.next("disable", false, 0, T0 + 1).unwrap());
    assert_eq!(ids(&j), vec!["a1"]);
    assert_eq!(
        j.alerts[0].line_fields,
        vec![("server_name", "srv-a1".to_string())]
    );
    ob.delivered("disable", &j.group, T0 + 2).unwrap();
    let j = job(ob.next("disable", false, 0, T0 + 2).unwrap());
    assert_eq!(ids(&j), vec!["a2"]);
    assert_eq!(
        j.alerts[0].line_fields,
        vec![("server_name", "srv-a2".to_string())]
    );
}
