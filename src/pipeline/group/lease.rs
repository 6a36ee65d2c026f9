//! The group's lease (SPEC §10): one key in a JetStream key-value bucket
//! whose entries live [`LEASE_TTL`] (a bucket-wide `max_age`: Debian's
//! nats-server 2.9 has no per-key TTL). Whoever `create`s the key holds
//! the lease; it renews it every [`RENEW_EVERY`] with
//! `update(key, value, last revision)`, so a renewal fails as soon as
//! anyone else has written the key. The revision at which it was created
//! is the holder's *term*: the checkpoint pointer records it, and every
//! write of the checkpoint is a compare-and-set on that pointer (see
//! `checkpoint`).
//!
//! The holder trusts its lease for [`TRUSTED_FOR`] after the start of its
//! last successful renewal, less than the TTL the server counts from
//! that renewal's arrival: it stops writing before anyone else can hold
//! the key. A standby tries to `create` the key every [`STANDBY_POLL`]
//! (an entry that expires by `max_age` leaves no delete marker a watcher
//! would see on 2.9, so polling is the way to notice it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};

/// How long the lease key lives after its last write (the bucket's
/// `max_age`).
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often the holder renews.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How long the holder trusts its lease after a renewal was sent: well
/// under [`LEASE_TTL`], so it has stopped before the key can expire.
pub(crate) const TRUSTED_FOR: Duration = Duration::from_secs(3);
// The holder stops trusting its lease at least two renewals before the
// key can expire: checked when compiling.
const _: () =
    assert!(TRUSTED_FOR.as_millis() + 2 * RENEW_EVERY.as_millis() <= LEASE_TTL.as_millis());

/// How often a standby tries to take the lease.
pub(crate) const STANDBY_POLL: Duration = Duration::from_millis(500);
/// The lease's key in its bucket.
const KEY: &str = "lease";

/// The NATS names of one group (SPEC §10 fixes only `MCPWATCH_ALERTS`),
/// all derived from the group's name, which `run` checks to be made of
/// `A-Z a-z 0-9 _ -`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Names {
    /// Key-value bucket of the lease (`max_age` [`LEASE_TTL`]).
    pub(crate) lease_bucket: String,
    /// Key-value bucket of the checkpoint pointer (no expiry).
    pub(crate) pointer_bucket: String,
    /// Object store of the checkpoints.
    pub(crate) objects: String,
    /// The group's alerts in `MCPWATCH_ALERTS`.
    pub(crate) alerts_subject: String,
    /// The durable consumer of those alerts: the group's outbox position.
    pub(crate) alerts_consumer: String,
}

impl Names {
    pub(crate) fn of(group: &str) -> Names {
        Names {
            lease_bucket: format!("mcpwatch_{group}_lease"),
            pointer_bucket: format!("mcpwatch_{group}_checkpoint"),
            objects: format!("mcpwatch_{group}_state"),
            alerts_subject: format!("{}{group}", super::alerts::SUBJECT_PREFIX),
            alerts_consumer: format!("mcpwatch_{group}_alerts"),
        }
    }

    /// The audit stream's durable consumer of one term: a new one per
    /// term, so that a stale holder's pulls can never take messages from
    /// its successor's consumer.
    pub(crate) fn audit_consumer(&self, consumer: &str, group: &str, term: u64) -> String {
        format!("{consumer}_{group}_{term}")
    }
}

/// Whether `group` can name NATS buckets and subjects.
pub(crate) fn valid_group(group: &str) -> bool {
    !group.is_empty()
        && group.len() <= 64
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Gets a key-value bucket, creating it with `config` when missing.
/// The bucket's stream is made here, as the clients' own
/// `create_key_value` makes it (`KV_<bucket>`, `$KV.<bucket>.>`, one
/// subject's history, rollups, direct gets): that call first asks for the
/// account's limits in a form Debian's nats-server 2.9 does not answer.
pub(crate) async fn bucket(
    js: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, String> {
    if let Ok(s) = js.get_key_value(&config.bucket).await {
        return Ok(s);
    }
    let name = config.bucket.clone();
    let stream = jetstream::stream::Config {
        name: format!("KV_{name}"),
        description: Some(config.description.clone()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: config.history.max(1),
        max_age: config.max_age,
        // The window may not outlast the entries (2 minutes otherwise).
        duplicate_window: if config.max_age.is_zero() {
            Duration::from_secs(120)
        } else {
            config.max_age.min(Duration::from_secs(120))
        },
        storage: config.storage,
        num_replicas: config.num_replicas.max(1),
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    };
    let created = js.get_or_create_stream(stream).await;
    match js.get_key_value(&name).await {
        Ok(s) => Ok(s),
        Err(e) => Err(match created {
            Err(c) => format!("cannot create the key-value bucket {name}: {c}"),
            Ok(_) => format!("cannot open the key-value bucket {name}: {e}"),
        }),
    }
}

/// The lease bucket's configuration: one entry, [`LEASE_TTL`].
pub(crate) fn lease_config(names: &Names, replicas: usize) -> kv::Config {
    kv::Config {
        bucket: names.lease_bucket.clone(),
        description: "mcpwatch: who detects for this group".into(),
        history: 1,
        max_age: LEASE_TTL,
        storage: jetstream::stream::StorageType::File,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// A lease this process holds (or held: see [`Lease::lost`]).
pub(crate) struct Lease {
    kv: kv::Store,
    /// `<host>:<pid>:<random>`, the value of the key.
    pub(crate) holder: String,
    /// The revision at which this process created the key.
    pub(crate) term: u64,
    /// The key's revision after the last renewal.
    revision: AtomicU64,
    /// Monotonic ms (since `base`) until which the lease is trusted.
    trusted_until: AtomicU64,
    base: Instant,
    /// Why the lease was lost, once it is: never held again in this term.
    lost: Mutex<Option<String>>,
    gone: AtomicBool,
}

impl Lease {
    /// One attempt to take the lease: `Ok(None)` while someone holds it.
    pub(crate) async fn try_take(kv: &kv::Store, holder: &str) -> Result<Option<Lease>, String> {
        let started = Instant::now();
        match kv.create(KEY, holder.to_string().into()).await {
            Ok(rev) => {
                let l = Lease {
                    kv: kv.clone(),
                    holder: holder.to_string(),
                    term: rev,
                    revision: AtomicU64::new(rev),
                    trusted_until: AtomicU64::new(0),
                    base: started,
                    lost: Mutex::new(None),
                    gone: AtomicBool::new(false),
                };
                l.trust_from(started);
                Ok(Some(l))
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn trust_from(&self, sent: Instant) {
        let until = (sent + TRUSTED_FOR).saturating_duration_since(self.base);
        self.trusted_until
            .store(until.as_millis() as u64, Ordering::Release);
    }

    /// `Some(why)` once the lease is not this process's any more (a
    /// renewal refused, none accepted for [`TRUSTED_FOR`], or the
    /// checkpoint pointer claimed by a later term).
    pub(crate) fn lost(&self) -> Option<String> {
        if let Some(why) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Some(why);
        }
        let now = self.base.elapsed().as_millis() as u64;
        if now >= self.trusted_until.load(Ordering::Acquire) {
            let why = format!(
                "no renewal of the lease accepted for {}s",
                TRUSTED_FOR.as_secs()
            );
            self.lose(&why);
            return Some(why);
        }
        None
    }

    /// Marks the lease lost (for good, in this term).
    pub(crate) fn lose(&self, why: &str) {
        self.gone.store(true, Ordering::Release);
        if let Ok(mut l) = self.lost.lock()
            && l.is_none()
        {
            *l = Some(why.to_string());
        }
    }

    /// Renews every [`RENEW_EVERY`] until the lease is lost or `stop`.
    pub(crate) async fn renew(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {}
                _ = stop.changed() => return,
            }
            if self.lost().is_some() {
                return;
            }
            let sent = Instant::now();
            let rev = self.revision.load(Ordering::Acquire);
            let attempt = tokio::time::timeout(
                TRUSTED_FOR,
                self.kv.update(KEY, self.holder.clone().into(), rev),
            )
            .await;
            match attempt {
                Ok(Ok(new)) => {
                    self.revision.store(new, Ordering::Release);
                    self.trust_from(sent);
                }
                Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    self.lose("the lease expired and was taken (a renewal was refused)");
                    return;
                }
                Ok(Err(e)) => tracing::warn!("renewing the lease failed ({e}); trying again"),
                Err(_) => tracing::warn!("renewing the lease timed out; trying again"),
            }
        }
    }

    /// Gives the lease up at a clean stop, so a standby takes over at
    /// once instead of after [`LEASE_TTL`]; only the key this holder
    /// wrote last is deleted.
    pub(crate) async fn release(&self) {
        if self.gone.load(Ordering::Acquire) {
            return;
        }
        let rev = self.revision.load(Ordering::Acquire);
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.kv.delete_expect_revision(KEY, Some(rev)),
        )
        .await;
    }
}

/// `<host>:<pid>:<random>`: who holds the lease, for people reading it.
pub(crate) fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_group() {
        let n = Names::of("prod-eu");
        assert_eq!(n.lease_bucket, "mcpwatch_prod-eu_lease");
        assert_eq!(n.pointer_bucket, "mcpwatch_prod-eu_checkpoint");
        assert_eq!(n.objects, "mcpwatch_prod-eu_state");
        assert_eq!(n.alerts_subject, "mcpwatch.alerts.prod-eu");
        assert_eq!(n.alerts_consumer, "mcpwatch_prod-eu_alerts");
        assert_eq!(
            n.audit_consumer("mcpwatch", "prod-eu", 7),
            "mcpwatch_prod-eu_7"
        );
    }

    #[test]
    fn a_group_name_is_letters_digits_dash_and_underscore() {
        assert!(valid_group("g1"));
        assert!(valid_group("prod_eu-2"));
        for bad in ["", "a.b", "a b", "a*", "a>", "a/b", &"x".repeat(65)] {
            assert!(!valid_group(bad), "{bad:?}");
        }
    }
}
