//! `MCPWATCH_ALERTS`, the group's outbox (SPEC §10). The active instance
//! publishes each alert it raises to `mcpwatch.alerts.<group>` with
//! `Nats-Msg-Id` = the alert's id, so an alert raised again after a
//! fail-over (the new holder re-reads the lines after the checkpoint) is
//! dropped by the stream's duplicate window; only alerts the stream took
//! for the first time go on to `alerts.log`.
//!
//! Delivery reads them back through the group's durable consumer and
//! hands each to the local delivery core (router, outbox, channels, as
//! `run` without a group); a message is acknowledged only once the local
//! outbox holds nothing more of that alert (every channel delivered it or
//! gave up on it). Until then it is marked in progress, so if this
//! instance dies, the stream gives the alert to the next holder after
//! [`ACK_WAIT`]: no pending delivery is lost, and only an attempt a kill
//! cut short (delivered but not yet acknowledged) is made twice, under the
//! same `Idempotency-Key`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer::pull, stream};
use futures_util::StreamExt;

use super::lease::Names;
use crate::alert::Alert;
use crate::alert::delivery::DeliveryHandle;

/// The stream SPEC §10 names.
pub(crate) const STREAM: &str = "MCPWATCH_ALERTS";
/// Subjects are `mcpwatch.alerts.<group>`.
pub(crate) const SUBJECT_PREFIX: &str = "mcpwatch.alerts.";
/// The alert's line fields (for incident actions' environment), as
/// compact JSON: not part of the alert's JSON (SPEC §4).
const HEADER_FIELDS: &str = "Mcpwatch-Line-Fields";
/// How long the stream remembers an alert id: far longer than a
/// fail-over and the re-reading after it take.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// How long a delivered message may go without an acknowledgement or a
/// sign of progress before the stream gives it to whoever pulls next
/// (the next holder, after a crash).
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(15);
/// How often an alert still pending is marked in progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How often the outbox is asked which alerts are done, besides each
/// time a delivery ends (an alert routed nowhere, or known already, is
/// done without one).
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// Alerts taken from the stream and not yet done, at most: the local
/// outbox's own bound.
const MAX_IN_FLIGHT: i64 = crate::alert::outbox::MAX_PENDING_ALERTS as i64;

/// The stream's configuration when `run` creates it.
pub(crate) fn stream_config(replicas: usize) -> stream::Config {
    stream::Config {
        name: STREAM.to_string(),
        subjects: vec![format!("{SUBJECT_PREFIX}*")],
        storage: stream::StorageType::File,
        num_replicas: replicas.max(1),
        duplicate_window: DUPLICATE_WINDOW,
        max_age: crate::ingest::nats::MAX_AGE,
        ..Default::default()
    }
}

/// Publishes the active instance's alerts.
pub(crate) struct AlertPublisher {
    pub(crate) js: jetstream::Context,
    pub(crate) subject: String,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Checked before each batch: an instance that lost its lease
    /// publishes nothing more.
    pub(crate) lease: std::sync::Arc<super::lease::Lease>,
    /// Ids the stream took for the first time in an attempt that failed
    /// for others of its batch: the retry finds them duplicates, yet they
    /// are this instance's to log.
    pub(crate) taken: std::sync::Mutex<HashSet<String>>,
}

impl AlertPublisher {
    /// Publishes `alerts` and waits for the stream to store them; returns
    /// the ids it took for the first time (the others were published
    /// before, by an earlier term). Blocks: for the detection thread.
    pub(crate) fn publish(&self, alerts: &[Alert]) -> Result<HashSet<String>, String> {
        if let Some(why) = self.lease.lost() {
            return Err(format!("not published: the group's lease is lost ({why})"));
        }
        let mut taken = self.taken.lock().map_err(|_| "poisoned".to_string())?;
        let failed = self.runtime.block_on(async {
            let mut acks = Vec::with_capacity(alerts.len());
            let mut failed = None;
            for a in alerts {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", a.id.as_str());
                if !a.line_fields.is_empty() {
                    let fields: BTreeMap<&str, &str> = a
                        .line_fields
                        .iter()
                        .map(|(k, v)| (*k, v.as_str()))
                        .collect();
                    let text = serde_json::to_string(&fields).unwrap_or_default();
                    headers.insert(HEADER_FIELDS, text.as_str());
                }
                let body = serde_json::to_vec(a).unwrap_or_default();
                match self
                    .js
                    .publish_with_headers(self.subject.clone(), headers, body.into())
                    .await
                {
                    Ok(ack) => acks.push((a.id.as_str(), ack)),
                    Err(e) => {
                        failed = Some(format!("cannot publish alert {} to {STREAM}: {e}", a.id));
                        break;
                    }
                }
            }
            for (id, ack) in acks {
                match ack.await {
                    Ok(ack) if !ack.duplicate => {
                        taken.insert(id.to_string());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failed.get_or_insert(format!("{STREAM} did not take alert {id}: {e}"));
                    }
                }
            }
            failed
        });
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(alerts.iter().filter_map(|a| taken.take(&a.id)).collect())
    }
}

/// An alert as the stream holds it.
fn read_alert(m: &jetstream::Message) -> Result<Alert, String> {
    let mut a: Alert = serde_json::from_slice(&m.payload).map_err(|e| e.to_string())?;
    if let Some(text) = m
        .headers
        .as_ref()
        .and_then(|h| h.get(HEADER_FIELDS))
        .map(|v| v.as_str().to_string())
    {
        let fields: HashMap<String, String> =
            serde_json::from_str(&text).map_err(|e| format!("{HEADER_FIELDS}: {e}"))?;
        a.line_fields = std::iter::once("ts")
            .chain(crate::event::Field::ALL.iter().map(|f| f.as_str()))
            .filter_map(|k| fields.get(k).map(|v| (k, v.clone())))
            .collect();
    }
    Ok(a)
}

/// The delivery pump of the active instance: the group's alerts from the
/// stream into the local delivery core, each acknowledged once done.
/// Ends when `stop` turns true.
pub(crate) async fn pump(
    js: jetstream::Context,
    names: Names,
    delivery: DeliveryHandle,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut held: HashMap<String, (jetstream::Message, Instant)> = HashMap::new();
    'connect: loop {
        if *stop.borrow() {
            return;
        }
        let consumer = async {
            let s = js.get_stream(STREAM).await.map_err(|e| e.to_string())?;
            s.get_or_create_consumer(
                &names.alerts_consumer,
                pull::Config {
                    durable_name: Some(names.alerts_consumer.clone()),
                    filter_subject: names.alerts_subject.clone(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    max_ack_pending: MAX_IN_FLIGHT,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
        };
        let messages = match consumer.await {
            Ok(c) => c.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("cannot read {STREAM} ({e}); retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'connect,
                    _ = stop.changed() => return,
                }
            }
        };
        let mut tick = tokio::time::interval(CHECK_EVERY);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                got = messages.next() => match got {
                    Some(Ok(m)) => take(&delivery, m, &mut held).await,
                    Some(Err(e)) => {
                        tracing::warn!("reading {STREAM}: {e}; reading again");
                        continue 'connect;
                    }
                    None => continue 'connect,
                },
                _ = delivery.settled() => settle(&delivery, &mut held).await,
                _ = tick.tick() => settle(&delivery, &mut held).await,
            }
        }
    }
}

/// Hands one alert to the local delivery core (a no-op for an id it
/// holds or delivered recently) and keeps its message until it is done.
async fn take(
    delivery: &DeliveryHandle,
    m: jetstream::Message,
    held: &mut HashMap<String, (jetstream::Message, Instant)>,
) {
    let alert = match read_alert(&m) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("{STREAM}: a message that is not an alert ({e}); dropped");
            let _ = m.ack_with(AckKind::Term).await;
            return;
        }
    };
    let d = delivery.clone();
    let a = alert.clone();
    let submitted = tokio::task::spawn_blocking(move || d.submit(&a)).await;
    match submitted {
        Ok(Ok(())) => {
            held.insert(alert.id, (m, Instant::now()));
        }
        Ok(Err(e)) => {
            tracing::error!(
                "alert {} not queued for delivery: {e}; taken again in 5s",
                alert.id
            );
            let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
        }
        Err(_) => {
            let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
        }
    }
}

/// Acknowledges the alerts the outbox is done with; marks the others in
/// progress when due.
async fn settle(
    delivery: &DeliveryHandle,
    held: &mut HashMap<String, (jetstream::Message, Instant)>,
) {
    if held.is_empty() {
        return;
    }
    let pending = delivery.pending_of(held.keys());
    let done: Vec<String> = held
        .keys()
        .filter(|id| !pending.contains(*id))
        .cloned()
        .collect();
    for id in done {
        if let Some((m, _)) = held.remove(&id)
            && let Err(e) = m.double_ack().await
        {
            // Not acknowledged: the stream gives it again; the outbox
            // knows it was delivered and it is acknowledged then.
            tracing::warn!("acknowledging alert {id} in {STREAM} failed: {e}");
        }
    }
    for (m, last) in held.values_mut() {
        if last.elapsed() >= PROGRESS_EVERY {
            *last = Instant::now();
            let _ = m.ack_with(AckKind::Progress).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alerts_stream_keeps_ids_for_ten_minutes() {
        let c = stream_config(3);
        assert_eq!(c.name, "MCPWATCH_ALERTS");
        assert_eq!(c.subjects, vec!["mcpwatch.alerts.*".to_string()]);
        assert_eq!(c.num_replicas, 3);
        assert_eq!(c.duplicate_window, Duration::from_secs(600));
        assert!(ACK_WAIT > 2 * PROGRESS_EVERY);
    }
}
