//! The delivery core: router + outbox + one worker task per channel.
//!
//! # Who owns what
//!
//! - The daemon holds a [`DeliveryHandle`] (cheap to clone) and calls
//!   [`DeliveryHandle::submit`] for each new alert. `submit` only routes,
//!   appends to the outbox journal (fsync) and wakes the workers concerned:
//!   a slow or dead channel can never stall the caller.
//! - [`Delivery::start`] spawns a supervisor task (the returned
//!   `JoinHandle`) owning one worker per channel in a `JoinSet`. Each worker
//!   makes at most one attempt at a time, so channels progress
//!   independently: a webhook that takes 10 s delays nothing but itself.
//! - [`DeliveryHandle::shutdown`] tells the workers to stop (an attempt in
//!   flight is abandoned and stays pending), waits at most
//!   [`SHUTDOWN_GRACE`], and writes an outbox snapshot. Aborting the
//!   supervisor instead (or `kill -9`) loses nothing either: every
//!   operation is in the journal before it counts.
//!
//! Time for the outbox (backoff, `max_age`, `group_wait`) comes from an
//! injected [`Clock`].
//!
//! # Use from the daemon
//!
//! ```ignore
//! let (delivery, task) = Delivery::start(&config, &state_dir, metrics.clone())?;
//! // For each new alert, after appending it to alerts.log:
//! delivery.submit(&alert)?; // durable once Ok; re-submitting an id is a no-op
//! if !delivery.has_channels() { eprintln!("{}", serde_json::to_string(&alert)?); }
//! // On SIGTERM / SIGINT:
//! delivery.shutdown().await; // ~3 s at most; pending work stays in the outbox
//! let _ = task.await;
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::action::ActionRunner;
use super::email::EmailSender;
use super::error::{SendError, UnknownChannel};
use super::outbox::{
    Backoff, Channels, Failure, Job, Next, Outbox, OutboxError, REQUESTS_EVERY, Submitted,
};
use super::router::{ChannelDef, DEFAULT_MAX_AGE, DeliveryConfig, Router};
use super::{Alert, alert_id, format_ts, key_map};
use crate::config::Config;
use crate::event::{Millis, Severity};
use crate::metrics::Metrics;

/// How long shutdown waits for workers to leave before snapshotting.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Pause after an outbox I/O error before a worker tries again.
const IO_ERROR_PAUSE: Duration = Duration::from_secs(1);

pub(crate) const M_DELIVERIES: &str = "mcpwatch_deliveries_total";
pub(crate) const M_RETRIES: &str = "mcpwatch_delivery_retries_total";
pub(crate) const M_PENDING: &str = "mcpwatch_outbox_pending";
pub(crate) const M_DEAD: &str = "mcpwatch_dead_letters_total";
pub(crate) const M_LATENCY: &str = "mcpwatch_delivery_latency_seconds";
pub(crate) const M_REFUSED: &str = "mcpwatch_outbox_refused_total";
pub(crate) const M_REQUEUED: &str = "mcpwatch_outbox_requeued_total";

/// Wall clock in ms; tests substitute their own.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        chrono::Utc::now().timestamp_millis()
    }
}

/// Knobs that tests (and only tests, so far) change.
#[derive(Clone)]
pub struct DeliveryOptions {
    pub clock: Arc<dyn Clock>,
    pub backoff: Backoff,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            clock: Arc::new(SystemClock),
            backoff: Backoff::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("delivery has shut down")]
    Closed,
}

/// `10s`, `1500ms`.
pub(crate) fn fmt_millis(ms: Millis) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Replaces every occurrence of a secret by `[redacted]`. Defence in depth:
/// no code path puts a secret in an error, but a server may echo one back.
pub(crate) fn redact(msg: &str, secrets: &[String]) -> String {
    let mut out = msg.to_string();
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    out
}

/// A configured channel, ready to send.
#[derive(Clone, Debug)]
pub(crate) enum Sender {
    Email(EmailSender),
    Webhook(super::webhook::WebhookSender),
    Action(ActionRunner),
}

impl Sender {
    /// `router` names the secret variables an action must not inherit.
    pub(crate) fn new(def: &ChannelDef, router: &Router) -> Sender {
        match def {
            ChannelDef::Email(c) => Sender::Email(EmailSender::new(c.clone())),
            ChannelDef::Webhook(c) => {
                Sender::Webhook(super::webhook::WebhookSender::new(c.clone()))
            }
            ChannelDef::Action(a) => Sender::Action(ActionRunner::new(
                a.clone(),
                router.channels().iter().flat_map(secret_vars).collect(),
            )),
        }
    }

    /// One attempt; the error never holds the channel's secret.
    pub(crate) async fn send(
        &self,
        def: &ChannelDef,
        group: &str,
        alerts: &[Alert],
        now: Millis,
    ) -> Result<(), SendError> {
        let r = match self {
            Sender::Email(s) => s.send(group, alerts).await,
            Sender::Webhook(s) => s.send(group, alerts, now.div_euclid(1000)).await,
            Sender::Action(a) => a.run(alerts).await,
        };
        r.map_err(|mut e| {
            e.message = redact(&e.message, &secrets_of(def));
            e
        })
    }
}

/// The name of the variable holding a channel's secret, if it has one.
/// The environment variables holding a channel's secrets: the SMTP
/// password, the webhook's signing secret, the values of `headers_env` and
/// the PagerDuty routing key.
fn secret_vars(def: &ChannelDef) -> Vec<String> {
    match def {
        ChannelDef::Email(c) => c.password_env.iter().cloned().collect(),
        ChannelDef::Webhook(c) => (c.secret_env.iter())
            .chain(c.headers_env.values())
            .chain(c.routing_key_env.iter())
            .chain(c.basic_auth.iter().map(|(_, var)| var))
            .chain(c.bearer_token_env.iter())
            .cloned()
            .collect(),
        ChannelDef::Action(_) => Vec::new(),
    }
}

/// Current values of the channel's secret environment variables: an error
/// (which may quote a receiver's answer) never shows them.
fn secrets_of(def: &ChannelDef) -> Vec<String> {
    secret_vars(def)
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .collect()
}

struct Shared {
    router: Router,
    outbox: Mutex<Outbox>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// One per channel; `submit` wakes the channels it queued for.
    wake: HashMap<String, Arc<Notify>>,
    /// `true` once shutdown starts; every worker watches it.
    stop: watch::Sender<bool>,
    /// Set by the supervisor when it has finished (snapshot written).
    done: watch::Sender<bool>,
    /// Notified each time a delivery ends (delivered or given up):
    /// `run --group` then acknowledges what is done in the group's outbox
    /// stream at once, keeping the window for a duplicate short.
    settled: Notify,
}

impl Shared {
    fn update_gauge(&self, ob: &Outbox) {
        self.metrics
            .set_gauge(M_PENDING, &[], ob.pending_count() as f64);
    }
}

/// The daemon's way in. Clones share one delivery core.
#[derive(Clone)]
pub struct DeliveryHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DeliveryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryHandle").finish_non_exhaustive()
    }
}

/// Entry points of the delivery core.
pub struct Delivery;

impl Delivery {
    /// Starts delivery for the daemon: opens and replays
    /// `<state_dir>/outbox`, then spawns the workers. Must be called inside
    /// a tokio runtime (it spawns tasks). The caller holds the state
    /// directory's lock: two processes must never share one outbox.
    pub(crate) fn start(
        config: &Config,
        state_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<(DeliveryHandle, JoinHandle<()>), DeliveryError> {
        Self::start_with(
            &DeliveryConfig::from(config),
            state_dir,
            metrics,
            DeliveryOptions::default(),
        )
    }

    /// [`Delivery::start`] without a full [`Config`], with options.
    pub fn start_with(
        cfg: &DeliveryConfig,
        state_dir: &Path,
        metrics: Arc<Metrics>,
        opts: DeliveryOptions,
    ) -> Result<(DeliveryHandle, JoinHandle<()>), DeliveryError> {
        let max_age = if cfg.max_age > 0 {
            cfg.max_age
        } else {
            DEFAULT_MAX_AGE
        };
        let now = opts.clock.now();
        let mut outbox = Outbox::open(state_dir, max_age, opts.backoff, now)?;
        let router = Router::new(cfg);
        describe(&metrics);
        if !cfg.run_actions && !cfg.actions.is_empty() {
            tracing::warn!(
                "{} [[actions]] configured but incidentResponse.autoDisableOnSuspicious is not true: \
                 they will not run; each alert they would take is logged",
                cfg.actions.len()
            );
        }
        let names: Vec<&str> = router.channels().iter().map(|c| c.name()).collect();
        let gated: Vec<&str> = if cfg.run_actions {
            Vec::new()
        } else {
            cfg.actions.iter().map(|a| a.name.as_str()).collect()
        };
        for (channel, groups) in outbox.drop_unknown_channels(&names, &gated, now)? {
            if gated.contains(&channel.as_str()) {
                tracing::warn!(
                    "{groups} pending runs of action {channel:?} moved to the dead letters: incidentResponse.autoDisableOnSuspicious is not true"
                );
            } else {
                tracing::warn!(
                    "{groups} pending deliveries to channel {channel:?}, which is no longer configured, moved to the dead letters"
                );
            }
            metrics.inc(M_DEAD, &[("channel", &channel)], groups);
        }
        for c in router.channels() {
            for result in ["ok", "retry", "failed", "dead"] {
                metrics.touch(M_DELIVERIES, &[("channel", c.name()), ("result", result)]);
            }
            metrics.touch(M_RETRIES, &[("channel", c.name())]);
            metrics.touch_histogram(M_LATENCY, &[("channel", c.name())]);
            metrics.touch(M_DEAD, &[("channel", c.name())]);
            for from in ["dead", "pending"] {
                metrics.touch(M_REQUEUED, &[("channel", c.name()), ("from", from)]);
            }
        }
        // Retries asked for while no daemon took them (or before a crash).
        let channels = Channels::of(cfg);
        count_requeued(&metrics, &outbox.take_requests(&channels, now)?);
        let wake = router
            .channels()
            .iter()
            .map(|c| (c.name().to_string(), Arc::new(Notify::new())))
            .collect();
        let (stop, _) = watch::channel(false);
        let (done, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            router,
            outbox: Mutex::new(outbox),
            clock: opts.clock,
            metrics,
            wake,
            stop,
            done,
            settled: Notify::new(),
        });
        if let Ok(ob) = shared.outbox.lock() {
            shared.update_gauge(&ob);
        }
        let sup = shared.clone();
        let join = tokio::spawn(async move {
            let mut stop = sup.stop.subscribe();
            let mut workers = JoinSet::new();
            for def in sup.router.channels() {
                workers.spawn(worker(sup.clone(), def.clone()));
            }
            workers.spawn(take_requests(sup.clone(), channels));
            let _ = stop.wait_for(|s| *s).await;
            let drain = async { while workers.join_next().await.is_some() {} };
            if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
                workers.abort_all();
            }
            let now = sup.clock.now();
            if let Ok(mut ob) = sup.outbox.lock()
                && let Err(e) = ob.compact(now)
            {
                tracing::error!("outbox snapshot at shutdown failed: {e}");
            }
            sup.done.send_replace(true);
        });
        Ok((DeliveryHandle { shared }, join))
    }
}

fn describe(m: &Metrics) {
    m.describe(
        M_DELIVERIES,
        "counter",
        "Delivery attempts by channel and result (ok, retry, failed = permanent error, dead = max_age passed)",
    );
    m.describe(
        M_RETRIES,
        "counter",
        "Attempts that will be retried, by channel",
    );
    m.describe(
        M_PENDING,
        "gauge",
        "Deliveries (one group on one channel) waiting in the outbox",
    );
    m.describe(
        M_DEAD,
        "counter",
        "Groups written to dead-letter.ndjson, by channel",
    );
    m.describe(
        M_LATENCY,
        "histogram",
        "Duration of one delivery attempt (request to answer), by channel",
    );
    m.describe(
        M_REFUSED,
        "counter",
        "Alerts refused because the outbox was full",
    );
    m.describe(
        M_REQUEUED,
        "counter",
        "Groups put back by `mcpwatch outbox retry`, by channel and where from (dead = a dead letter, pending = made due now)",
    );
}

fn count_requeued(m: &Metrics, applied: &[(String, &'static str, String)]) {
    for (channel, from, group) in applied {
        tracing::info!(channel = %channel, group = %group, "outbox retry: {from} group queued again");
        m.inc(M_REQUEUED, &[("channel", channel), ("from", from)], 1);
    }
}

/// Applies the retries `mcpwatch outbox retry` leaves for the running
/// daemon, every [`REQUESTS_EVERY`], and wakes the channels concerned.
async fn take_requests(sh: Arc<Shared>, channels: Channels) {
    let mut stop = sh.stop.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(REQUESTS_EVERY) => {}
            _ = stop.changed() => return,
        }
        let now = sh.clock.now();
        let applied = match sh.outbox.lock() {
            Ok(mut ob) => {
                let r = ob.take_requests(&channels, now);
                sh.update_gauge(&ob);
                r
            }
            Err(_) => return,
        };
        match applied {
            Ok(applied) => {
                count_requeued(&sh.metrics, &applied);
                for (channel, _, _) in &applied {
                    if let Some(n) = sh.wake.get(channel) {
                        n.notify_one();
                    }
                }
            }
            Err(e) => tracing::error!("outbox retry requests: {e}"),
        }
    }
}

impl DeliveryHandle {
    /// Routes `alert` and writes it to the outbox; durable when it returns
    /// `Ok`. An alert id already pending or delivered recently is ignored,
    /// so re-submitting after a crash is safe. Never waits on a channel,
    /// but does one fsync: from async code, call it where blocking for a
    /// few milliseconds is fine (e.g. `spawn_blocking` or the detection
    /// thread).
    pub fn submit(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let sh = &self.shared;
        if *sh.stop.borrow() {
            return Err(DeliveryError::Closed);
        }
        log_gated(&sh.router, alert);
        let placements = sh.router.route(alert);
        let now = sh.clock.now();
        let mut ob = sh.outbox.lock().map_err(|_| DeliveryError::Closed)?;
        let r = ob.submit(alert, &placements, now);
        sh.update_gauge(&ob);
        drop(ob);
        match r {
            Ok(Submitted::Queued(channels)) => {
                for c in channels {
                    if let Some(n) = sh.wake.get(&c) {
                        n.notify_one();
                    }
                }
                Ok(())
            }
            Ok(Submitted::Duplicate | Submitted::NotRouted) => Ok(()),
            Err(e) => {
                if matches!(e, OutboxError::Full(_)) {
                    sh.metrics.inc(M_REFUSED, &[], 1);
                }
                Err(e.into())
            }
        }
    }

    /// [`DeliveryHandle::submit`] for many alerts with one fsync: for a
    /// backlog (e.g. `run` catching up), where one flush per alert would be
    /// the bottleneck. Durable when it returns `Ok`.
    pub fn submit_all(&self, alerts: &[Alert]) -> Result<(), DeliveryError> {
        let sh = &self.shared;
        if *sh.stop.borrow() {
            return Err(DeliveryError::Closed);
        }
        for a in alerts {
            log_gated(&sh.router, a);
        }
        let batch: Vec<(&Alert, Vec<_>)> = alerts.iter().map(|a| (a, sh.router.route(a))).collect();
        let now = sh.clock.now();
        let mut ob = sh.outbox.lock().map_err(|_| DeliveryError::Closed)?;
        let r = ob.submit_batch(&batch, now);
        sh.update_gauge(&ob);
        drop(ob);
        // Wake every channel: cheap, and right even after a partial batch.
        for n in sh.wake.values() {
            n.notify_one();
        }
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                if matches!(e, OutboxError::Full(_)) {
                    sh.metrics.inc(M_REFUSED, &[], 1);
                }
                Err(e.into())
            }
        }
    }

    /// Whether any channel is configured (without one, the daemon writes
    /// alerts to stderr besides the alert log).
    pub(crate) fn has_channels(&self) -> bool {
        self.shared.router.has_channels()
    }

    /// Which of `ids` the outbox still holds: alerts some channel has not
    /// yet delivered or given up on (`run --group` acknowledges the others
    /// in the group's outbox stream).
    pub(crate) fn pending_of<'a>(
        &self,
        ids: impl Iterator<Item = &'a String>,
    ) -> std::collections::HashSet<String> {
        match self.shared.outbox.lock() {
            Ok(ob) => ids.filter(|id| ob.holds(id)).cloned().collect(),
            // A poisoned outbox: everything counts as pending (nothing is
            // acknowledged that may not be delivered).
            Err(_) => ids.cloned().collect(),
        }
    }

    /// Resolves when a delivery has ended since the last call (see
    /// `Shared::settled`).
    pub(crate) async fn settled(&self) {
        self.shared.settled.notified().await;
    }

    /// Deliveries waiting in the outbox.
    pub fn pending(&self) -> usize {
        self.shared
            .outbox
            .lock()
            .map(|o| o.pending_count())
            .unwrap_or(0)
    }

    /// Stops the workers (pending deliveries stay in the outbox), writes the
    /// outbox snapshot and returns, within about [`SHUTDOWN_GRACE`].
    pub async fn shutdown(self) {
        self.shared.stop.send_replace(true);
        let mut done = self.shared.done.subscribe();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE * 2, done.wait_for(|d| *d)).await;
    }
}

/// One channel's loop: take the next due job, attempt it, record the result.
async fn worker(sh: Arc<Shared>, def: ChannelDef) {
    let name = def.name().to_string();
    let sender = Sender::new(&def, &sh.router);
    let (fold, max_per_hour) = match &def {
        ChannelDef::Email(c) => (true, c.max_per_hour),
        ChannelDef::Webhook(_) | ChannelDef::Action(_) => (false, 0),
    };
    let Some(wake) = sh.wake.get(&name).cloned() else {
        return;
    };
    let mut stop = sh.stop.subscribe();
    loop {
        if *stop.borrow() {
            return;
        }
        let now = sh.clock.now();
        let next = match sh.outbox.lock() {
            Ok(mut ob) => ob.next(&name, fold, max_per_hour, now),
            Err(_) => return,
        };
        match next {
            Err(e) => {
                tracing::error!(channel = %name, "outbox: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(IO_ERROR_PAUSE) => {}
                    _ = stop.changed() => return,
                }
            }
            Ok(Next::Idle) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = stop.changed() => return,
                }
            }
            Ok(Next::At(t)) => {
                let wait = Duration::from_millis((t - now).max(1) as u64);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = wake.notified() => {}
                    _ = stop.changed() => return,
                }
            }
            Ok(Next::Send(job)) => {
                let started = Instant::now();
                let result = tokio::select! {
                    r = sender.send(&def, &job.group, &job.alerts, now) => r,
                    // Abandoned mid-flight: the job stays pending.
                    _ = stop.changed() => return,
                };
                sh.metrics.observe_seconds(
                    M_LATENCY,
                    &[("channel", &name)],
                    started.elapsed().as_secs_f64(),
                );
                record(&sh, &name, &job, result);
            }
        }
    }
}

/// SPEC §5: with `autoDisableOnSuspicious` not true, `run` logs the
/// actions it would have run (log fields escaped).
fn log_gated(router: &Router, alert: &Alert) {
    for a in router.gated_actions(alert) {
        let server = alert
            .line_fields
            .iter()
            .find(|(k, _)| *k == "server_name")
            .map_or(String::new(), |(_, s)| {
                format!(", server {}", crate::text::escape(s))
            });
        tracing::info!(
            "action {:?} would run for alert {} ({}{server}) if incidentResponse.autoDisableOnSuspicious were true",
            a.name,
            alert.id,
            alert.rule
        );
    }
}

fn record(sh: &Shared, name: &str, job: &Job, result: Result<(), SendError>) {
    let now = sh.clock.now();
    let Ok(mut ob) = sh.outbox.lock() else { return };
    let labels = |r: &'static str| [("channel", name), ("result", r)];
    match result {
        Ok(()) => {
            sh.metrics.inc(M_DELIVERIES, &labels("ok"), 1);
            tracing::info!(
                channel = name,
                group = %job.group,
                alerts = job.alerts.len(),
                "alerts delivered"
            );
            if let Err(e) = ob.delivered(name, &job.group, now) {
                tracing::error!(channel = name, "outbox: {e}");
            }
        }
        Err(err) => match ob.failed(name, &job.group, &err.message, err.retryable, now) {
            Ok(Failure::Retry { at }) => {
                sh.metrics.inc(M_DELIVERIES, &labels("retry"), 1);
                sh.metrics.inc(M_RETRIES, &[("channel", name)], 1);
                tracing::warn!(
                    channel = name,
                    group = %job.group,
                    attempt = job.attempts + 1,
                    "delivery failed: {}; retrying at {}",
                    err.message,
                    format_ts(at)
                );
            }
            Ok(Failure::Dead { expired }) => {
                sh.metrics.inc(
                    M_DELIVERIES,
                    &labels(if expired { "dead" } else { "failed" }),
                    1,
                );
                sh.metrics.inc(M_DEAD, &[("channel", name)], 1);
                tracing::error!(
                    channel = name,
                    group = %job.group,
                    "delivery failed: {}; {} written to dead-letter.ndjson",
                    err.message,
                    if expired {
                        "max_age passed,"
                    } else {
                        "permanent error,"
                    }
                );
            }
            Err(e) => tracing::error!(channel = name, "outbox: {e}"),
        },
    }
    sh.update_gauge(&ob);
    drop(ob);
    sh.settled.notify_one();
}

/// The clearly marked alert `mcpwatch test-alert` sends.
pub(crate) fn test_alert(now: Millis) -> Alert {
    let key = key_map(&[]);
    let ts = format_ts(now);
    let line = format!(
        "{{\"test_alert\":\"{ts}\",\"nonce\":{}}}",
        fastrand::u64(..)
    );
    Alert {
        id: alert_id("test_alert", &key, line.as_bytes()),
        rule: "test_alert".to_string(),
        severity: Severity::Low,
        ts,
        key,
        value: None,
        threshold: None,
        window: None,
        suppressed: 0,
        message: "This is a test alert from `mcpwatch test-alert`; no action is needed".to_string(),
        evidence: vec![],
        line_fields: Vec::new(),
    }
}

/// Sends one test alert through each channel (or only `only`), one after
/// the other, bypassing the outbox; returns each channel's result.
pub async fn send_test(
    cfg: &DeliveryConfig,
    only: Option<&str>,
) -> Result<Vec<(String, Result<(), SendError>)>, UnknownChannel> {
    let router = Router::new(cfg);
    // Named, an action runs even while autoDisableOnSuspicious is not true:
    // the operator asked for this one test.
    let gated = only.and_then(|n| {
        cfg.actions
            .iter()
            .find(|a| a.name == n)
            .map(|a| ChannelDef::Action(a.clone()))
    });
    let defs: Vec<&ChannelDef> = match only {
        Some(n) => match router.channel(n).or(gated.as_ref()) {
            Some(d) => vec![d],
            None => {
                return Err(UnknownChannel {
                    name: n.to_string(),
                    known: router
                        .channels()
                        .iter()
                        .map(|c| c.name().to_string())
                        .chain(
                            cfg.actions
                                .iter()
                                .filter(|_| !cfg.run_actions)
                                .map(|a| a.name.clone()),
                        )
                        .collect(),
                });
            }
        },
        // Actions run only when named: a test must not disable a server.
        None => router
            .channels()
            .iter()
            .filter(|c| !matches!(c, ChannelDef::Action(_)))
            .collect(),
    };
    let now = SystemClock.now();
    let alert = test_alert(now);
    let mut out = Vec::new();
    for def in defs {
        let r = Sender::new(def, &router)
            .send(def, &alert.id, std::slice::from_ref(&alert), now)
            .await;
        out.push((def.name().to_string(), r));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_secret_values() {
        assert_eq!(
            redact("535 bad password hunter22 for x", &["hunter22".to_string()]),
            "535 bad password [redacted] for x"
        );
    }

    #[test]
    fn test_alert_is_marked_low_and_unique() {
        let a = test_alert(1_795_442_639_000);
        assert_eq!(a.rule, "test_alert");
        assert_eq!(a.severity, Severity::Low);
        assert!(a.message.contains("test"));
        assert_ne!(a.id, test_alert(1_795_442_639_000).id);
    }

    #[tokio::test]
    async fn unknown_channel_lists_configured_names() {
        let cfg = DeliveryConfig {
            webhook: vec![crate::alert::router::tests::webhook("siem")],
            ..Default::default()
        };
        let e = send_test(&cfg, Some("nope")).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown channel \"nope\"; configured channels: siem"
        );
    }
}
