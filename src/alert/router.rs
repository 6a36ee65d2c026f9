//! The router: which channels an alert goes to, and in which group.
//!
//! Pure and synchronous: [`Router::route`] maps one alert to its
//! [`Placement`]s from the configured routes (SPEC §5). The outbox turns
//! placements into groups; the channels never see routes.
//!
//! Rules, in the order they apply:
//! - a route matches when the alert's severity is at least `min_severity`
//!   and its rule is in `rules` (an empty list matches every rule); an alert
//!   may match several routes;
//! - with channels but no routes, every alert goes to every channel (with the
//!   default `group_wait`);
//! - critical alerts also go to `incidentResponse.escalationWebhook` and
//!   `notificationEmails` (two implicit channels, see [`ESCALATION_WEBHOOK`]
//!   and [`NOTIFICATION_EMAILS`]);
//! - actions (SPEC §5) are not route targets: each takes every alert at or
//!   above its own `min_severity` of its `rules`, alone in its group and
//!   at once (route label [`ACTION_ROUTE`]), and only while
//!   `incidentResponse.autoDisableOnSuspicious` is true; otherwise
//!   [`Router::gated_actions`] names the ones that would have run;
//! - a channel named by several matching routes receives the alert once, in
//!   the group of the matching route with the shortest `group_wait` (ties:
//!   the first), so an operator who made a fast route for critical alerts
//!   gets them fast and nobody gets the same alert twice on one channel.

use std::collections::BTreeMap;

use crate::config::{
    Action, Config, EmailChannel, Route, RuleName, SecurityExtras, Settings, WebhookChannel,
};
use crate::event::{Millis, Severity};

use super::Alert;

/// `group_wait` when no route says otherwise (SPEC §5: 30 s).
pub(crate) const DEFAULT_GROUP_WAIT: Millis = 30_000;
/// `delivery.max_age` when not configured (SPEC §5: 24 h).
pub(crate) const DEFAULT_MAX_AGE: Millis = 24 * 3_600_000;
/// Timeout of the implicit escalation webhook (it has no settings of its own).
pub(crate) const ESCALATION_TIMEOUT: Millis = 10_000;
/// Name of the implicit channel for `incidentResponse.escalationWebhook`
/// (as it appears in metrics labels and `test-alert` output).
pub(crate) const ESCALATION_WEBHOOK: &str = "escalation_webhook";
/// Name of the implicit channel for `incidentResponse.notificationEmails`,
/// sent through the first email channel's SMTP server.
pub(crate) const NOTIFICATION_EMAILS: &str = "notification_emails";
/// Route label of an action's placements: such a group never takes a
/// second alert (an action runs once per alert, SPEC §5).
pub(crate) const ACTION_ROUTE: &str = "action";

/// Everything delivery needs from the configuration, so the delivery core
/// can be built (and tested) without loading files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryConfig {
    pub email: Vec<EmailChannel>,
    pub webhook: Vec<WebhookChannel>,
    pub routes: Vec<Route>,
    /// `delivery.max_age`.
    pub max_age: Millis,
    /// `incidentResponse.notificationEmails`.
    pub notification_emails: Vec<String>,
    /// `incidentResponse.escalationWebhook`.
    pub escalation_webhook: Option<String>,
    /// `[[actions]]`.
    pub actions: Vec<Action>,
    /// `incidentResponse.autoDisableOnSuspicious`: actions run only when true.
    pub run_actions: bool,
}

/// Everything delivery needs, taken from the whole configuration.
impl From<&Config> for DeliveryConfig {
    fn from(config: &Config) -> DeliveryConfig {
        let mut d = Self::from_parts(&config.settings, &config.security);
        // Alertmanager's endsAt: the channel's resolve_after, else each
        // rule's realert, else an hour.
        for w in &mut d.webhook {
            if w.format != crate::config::WebhookFormat::Alertmanager {
                continue;
            }
            let own = w.resolve_after.get("*").copied();
            w.resolve_after = RuleName::ALL
                .iter()
                .map(|r| {
                    let realert = config.rules.get(*r).realert;
                    let after = own
                        .or(realert)
                        .unwrap_or(super::formats::RESOLVE_AFTER_DEFAULT);
                    (r.as_str().to_string(), after)
                })
                .collect();
        }
        d
    }
}

impl DeliveryConfig {
    pub(crate) fn from_parts(settings: &Settings, security: &SecurityExtras) -> DeliveryConfig {
        DeliveryConfig {
            email: settings.email.clone(),
            webhook: settings.webhook.clone(),
            routes: settings.routes.clone(),
            max_age: settings.delivery.max_age,
            notification_emails: security.notification_emails.clone(),
            escalation_webhook: security.escalation_webhook.clone(),
            actions: settings.actions.clone(),
            run_actions: security.auto_disable,
        }
    }

    /// Where a critical alert goes, for `check`: for each set of channels,
    /// the rules whose critical alerts go there (in registry order). Rules
    /// whose critical alerts go nowhere are under an empty set.
    pub fn critical_targets(&self) -> Vec<(Vec<String>, Vec<&'static str>)> {
        let router = Router::new(self);
        let mut out: Vec<(Vec<String>, Vec<&'static str>)> = Vec::new();
        for rule in RuleName::ALL {
            let probe = Alert {
                id: String::new(),
                rule: rule.as_str().to_string(),
                severity: Severity::Critical,
                ts: String::new(),
                key: BTreeMap::new(),
                value: None,
                threshold: None,
                window: None,
                suppressed: 0,
                message: String::new(),
                evidence: Vec::new(),
                line_fields: Vec::new(),
            };
            // Actions are listed by `check` on their own.
            let targets: Vec<String> = router
                .route(&probe)
                .into_iter()
                .filter(|p| p.route != ACTION_ROUTE)
                .map(|p| p.channel)
                .collect();
            match out.iter_mut().find(|(t, _)| *t == targets) {
                Some((_, rules)) => rules.push(rule.as_str()),
                None => out.push((targets, vec![rule.as_str()])),
            }
        }
        out
    }

    /// SPEC §5's finding of notification emails with no email channel to
    /// send them through (for tests; `config::load` reports it as a
    /// warning).
    #[cfg(test)]
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.notification_emails.is_empty() && self.email.is_empty() {
            w.push(
                "incidentResponse.notificationEmails is set but no [[channels.email]] is \
                 configured to send through; critical alerts will not be emailed"
                    .to_string(),
            );
        }
        w
    }
}

/// One destination, configured or implicit.
#[derive(Clone, Debug)]
pub(crate) enum ChannelDef {
    Email(EmailChannel),
    Webhook(WebhookChannel),
    Action(Action),
}

impl ChannelDef {
    pub(crate) fn name(&self) -> &str {
        match self {
            ChannelDef::Email(c) => &c.name,
            ChannelDef::Webhook(c) => &c.name,
            ChannelDef::Action(a) => &a.name,
        }
    }
}

/// Where one alert goes on one channel: the group it joins is the open
/// group of (`route`, `channel`), or a new one sent `group_wait` later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) channel: String,
    /// Stable label of the route (`r0`, `r1`, … in file order; `all` when
    /// no routes are configured; `escalation` for the implicit channels).
    pub(crate) route: String,
    pub(crate) group_wait: Millis,
}

/// Routes resolved against the channel list.
#[derive(Clone, Debug)]
pub(crate) struct Router {
    channels: Vec<ChannelDef>,
    routes: Vec<Route>,
    escalation: Vec<String>,
    /// Actions that do not run (`autoDisableOnSuspicious` is not true).
    gated: Vec<Action>,
}

impl Router {
    pub(crate) fn new(cfg: &DeliveryConfig) -> Router {
        let mut channels: Vec<ChannelDef> = Vec::new();
        channels.extend(cfg.email.iter().cloned().map(ChannelDef::Email));
        channels.extend(cfg.webhook.iter().cloned().map(ChannelDef::Webhook));
        let mut escalation = Vec::new();
        if let Some(url) = &cfg.escalation_webhook {
            channels.push(ChannelDef::Webhook(WebhookChannel {
                name: ESCALATION_WEBHOOK.to_string(),
                url: url.clone(),
                secret_env: None,
                timeout: ESCALATION_TIMEOUT,
                headers: BTreeMap::new(),
                format: crate::config::WebhookFormat::Mcpwatch,
                headers_env: BTreeMap::new(),
                routing_key_env: None,
                basic_auth: None,
                bearer_token_env: None,
                resolve_after: Default::default(),
            }));
            escalation.push(ESCALATION_WEBHOOK.to_string());
        }
        if !cfg.notification_emails.is_empty()
            && let Some(first) = cfg.email.first()
        {
            let mut c = first.clone();
            c.name = NOTIFICATION_EMAILS.to_string();
            c.to = cfg.notification_emails.clone();
            channels.push(ChannelDef::Email(c));
            escalation.push(NOTIFICATION_EMAILS.to_string());
        }
        let gated = if cfg.run_actions {
            channels.extend(cfg.actions.iter().cloned().map(ChannelDef::Action));
            Vec::new()
        } else {
            cfg.actions.clone()
        };
        Router {
            channels,
            routes: cfg.routes.clone(),
            escalation,
            gated,
        }
    }

    /// The actions that would have run for `alert` had
    /// `incidentResponse.autoDisableOnSuspicious` been true (`run` logs
    /// them, SPEC §5).
    pub(crate) fn gated_actions(&self, alert: &Alert) -> Vec<&Action> {
        self.gated
            .iter()
            .filter(|a| action_matches(a, alert))
            .collect()
    }

    /// Whether a channel of email or webhook (not an action) is configured:
    /// without one, the daemon also writes alerts to stderr.
    pub(crate) fn has_channels(&self) -> bool {
        self.channels
            .iter()
            .any(|c| !matches!(c, ChannelDef::Action(_)))
    }

    /// Every channel, configured ones first in file order (emails, then
    /// webhooks), then the implicit escalation channels.
    pub(crate) fn channels(&self) -> &[ChannelDef] {
        &self.channels
    }

    pub(crate) fn channel(&self, name: &str) -> Option<&ChannelDef> {
        self.channels.iter().find(|c| c.name() == name)
    }

    /// The placements of one alert, at most one per channel, in channel order.
    pub(crate) fn route(&self, alert: &Alert) -> Vec<Placement> {
        let mut out: Vec<Placement> = Vec::new();
        let mut place = |channel: &str, route: String, group_wait: Millis| {
            if self.channel(channel).is_none() {
                return;
            }
            match out.iter_mut().find(|p| p.channel == channel) {
                Some(p) if group_wait < p.group_wait => {
                    p.route = route;
                    p.group_wait = group_wait;
                }
                Some(_) => {}
                None => out.push(Placement {
                    channel: channel.to_string(),
                    route,
                    group_wait,
                }),
            }
        };
        let configured = self.channels.iter().filter(|c| {
            !matches!(c, ChannelDef::Action(_)) && !self.escalation.iter().any(|e| e == c.name())
        });
        let mut matched_wait: Option<Millis> = None;
        if self.routes.is_empty() {
            for c in configured {
                place(c.name(), "all".to_string(), DEFAULT_GROUP_WAIT);
                matched_wait = Some(DEFAULT_GROUP_WAIT);
            }
        } else {
            for (i, r) in self.routes.iter().enumerate() {
                if !route_matches(r, alert) {
                    continue;
                }
                matched_wait = Some(matched_wait.map_or(r.group_wait, |w| w.min(r.group_wait)));
                for c in &r.channels {
                    place(c, format!("r{i}"), r.group_wait);
                }
            }
        }
        if alert.severity == Severity::Critical {
            // Sent together with the alert's route groups; with no matching
            // route, after the default group_wait.
            let wait = matched_wait.unwrap_or(DEFAULT_GROUP_WAIT);
            for e in &self.escalation {
                place(e, "escalation".to_string(), wait);
            }
        }
        for c in &self.channels {
            if let ChannelDef::Action(a) = c
                && action_matches(a, alert)
            {
                place(&a.name, ACTION_ROUTE.to_string(), 0);
            }
        }
        let order = |name: &str| self.channels.iter().position(|c| c.name() == name);
        out.sort_by_key(|p| order(&p.channel));
        out
    }
}

/// An action takes an alert at or above its `min_severity`, of one of its
/// `rules` (none listed: every rule). The test alert is only ever run by
/// `test-alert --channel`.
fn action_matches(a: &Action, alert: &Alert) -> bool {
    alert.severity >= a.min_severity
        && RuleName::parse(&alert.rule)
            .is_some_and(|name| a.rules.is_empty() || a.rules.contains(&name))
}

fn route_matches(r: &Route, alert: &Alert) -> bool {
    if alert.severity < r.min_severity {
        return false;
    }
    r.rules.is_empty() || RuleName::parse(&alert.rule).is_some_and(|name| r.rules.contains(&name))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::TlsMode;

    pub(crate) fn alert(rule: &str, severity: Severity, id: &str) -> Alert {
        Alert {
            id: id.to_string(),
            rule: rule.to_string(),
            severity,
            ts: "2026-11-23T14:03:59.000Z".to_string(),
            key: [("user_id".to_string(), "u-42".to_string())].into(),
            value: None,
            threshold: None,
            window: None,
            suppressed: 0,
            message: format!("{rule} fired"),
            evidence: vec![],
            line_fields: Vec::new(),
        }
    }

    pub(crate) fn email(name: &str) -> EmailChannel {
        EmailChannel {
            name: name.to_string(),
            smtp_host: "127.0.0.1".to_string(),
            smtp_port: 2525,
            tls: TlsMode::None,
            allow_plaintext: true,
            username: None,
            password_env: None,
            from: "mcpwatch@example.com".to_string(),
            to: vec!["security@example.com".to_string()],
            max_per_hour: 30,
        }
    }

    pub(crate) fn webhook(name: &str) -> WebhookChannel {
        WebhookChannel {
            name: name.to_string(),
            url: "http://127.0.0.1:1/hook".to_string(),
            secret_env: None,
            timeout: 10_000,
            headers: BTreeMap::new(),
            format: crate::config::WebhookFormat::Mcpwatch,
            headers_env: BTreeMap::new(),
            routing_key_env: None,
            basic_auth: None,
            bearer_token_env: None,
            resolve_after: Default::default(),
        }
    }

    fn route(channels: &[&str], min: Severity, rules: &[RuleName], wait: Millis) -> Route {
        Route {
            channels: channels.iter().map(|s| s.to_string()).collect(),
            min_severity: min,
            rules: rules.to_vec(),
            group_wait: wait,
        }
    }

    fn names(p: &[Placement]) -> Vec<(&str, &str, Millis)> {
        p.iter()
            .map(|p| (p.channel.as_str(), p.route.as_str(), p.group_wait))
            .collect()
    }

    #[test]
    fn no_routes_sends_every_alert_to_every_channel_after_default_wait() {
        let r = Router::new(&DeliveryConfig {
            email: vec![email("secops")],
            webhook: vec![webhook("siem")],
            ..Default::default()
        });
        let p = r.route(&alert("unusual_hours", Severity::Low, "a"));
        assert_eq!(
            names(&p),
            vec![("secops", "all", 30_000), ("siem", "all", 30_000)]
        );
    }

    #[test]
    fn no_channels_routes_nowhere() {
        let r = Router::new(&DeliveryConfig::default());
        assert!(
            r.route(&alert("disabled_tool", Severity::Critical, "a"))
                .is_empty()
        );
        assert!(r.channels().is_empty());
    }

    #[test]
    fn route_filters_by_min_severity_inclusive_and_rule_list() {
        let r = Router::new(&DeliveryConfig {
            email: vec![email("secops")],
            webhook: vec![webhook("siem")],
            routes: vec![
                route(&["secops"], Severity::Medium, &[], 5_000),
                route(&["siem"], Severity::Low, &[RuleName::ErrorSpike], 1_000),
            ],
            ..Default::default()
        });
        assert!(
            r.route(&alert("unusual_hours", Severity::Low, "a"))
                .is_empty()
        );
        assert_eq!(
            names(&r.route(&alert("rapid_tool_usage", Severity::Medium, "b"))),
            vec![("secops", "r0", 5_000)]
        );
        assert_eq!(
            names(&r.route(&alert("error_spike", Severity::Medium, "c"))),
            vec![("secops", "r0", 5_000), ("siem", "r1", 1_000)]
        );
        // An unknown rule (test_alert) only matches routes without a rule list.
        assert!(r.route(&alert("test_alert", Severity::Low, "d")).is_empty());
    }

    #[test]
    fn channel_in_two_matching_routes_gets_alert_once_in_fastest_group() {
        let r = Router::new(&DeliveryConfig {
            webhook: vec![webhook("siem")],
            routes: vec![
                route(&["siem"], Severity::Low, &[], 30_000),
                route(&["siem"], Severity::Critical, &[], 2_000),
            ],
            ..Default::default()
        });
        assert_eq!(
            names(&r.route(&alert("disabled_tool", Severity::Critical, "a"))),
            vec![("siem", "r1", 2_000)]
        );
        assert_eq!(
            names(&r.route(&alert("disabled_tool", Severity::High, "a"))),
            vec![("siem", "r0", 30_000)]
        );
    }

    #[test]
    fn critical_alerts_also_go_to_escalation_webhook_and_notification_emails() {
        let r = Router::new(&DeliveryConfig {
            email: vec![email("secops"), email("other")],
            routes: vec![route(&["secops"], Severity::High, &[], 3_000)],
            notification_emails: vec!["ciso@example.com".to_string()],
            escalation_webhook: Some("http://127.0.0.1:9/esc".to_string()),
            ..Default::default()
        });
        assert_eq!(
            names(&r.route(&alert("disabled_tool", Severity::Critical, "a"))),
            vec![
                ("secops", "r0", 3_000),
                (ESCALATION_WEBHOOK, "escalation", 3_000),
                (NOTIFICATION_EMAILS, "escalation", 3_000),
            ]
        );
        assert_eq!(
            names(&r.route(&alert("approval_bypass", Severity::High, "b"))),
            vec![("secops", "r0", 3_000)]
        );
        // notification emails go through the first email channel's server.
        match r.channel(NOTIFICATION_EMAILS) {
            Some(ChannelDef::Email(c)) => {
                assert_eq!(c.to, vec!["ciso@example.com".to_string()]);
                assert_eq!(c.smtp_port, 2525);
            }
            other => panic!("unexpected {other:?}"),
        }
        match r.channel(ESCALATION_WEBHOOK) {
            Some(ChannelDef::Webhook(c)) => assert!(c.secret_env.is_none()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn notification_emails_without_email_channel_warn_and_route_nowhere() {
        let cfg = DeliveryConfig {
            notification_emails: vec!["ciso@example.com".to_string()],
            ..Default::default()
        };
        assert_eq!(cfg.warnings().len(), 1);
        let r = Router::new(&cfg);
        assert!(
            r.route(&alert("disabled_tool", Severity::Critical, "a"))
                .is_empty()
        );
    }

    #[test]
    fn critical_alert_matching_no_route_still_escalates_after_default_wait() {
        let r = Router::new(&DeliveryConfig {
            webhook: vec![webhook("siem")],
            routes: vec![route(
                &["siem"],
                Severity::Low,
                &[RuleName::ErrorSpike],
                1_000,
            )],
            escalation_webhook: Some("http://127.0.0.1:9/esc".to_string()),
            ..Default::default()
        });
        assert_eq!(
            names(&r.route(&alert("disabled_tool", Severity::Critical, "a"))),
            vec![(ESCALATION_WEBHOOK, "escalation", DEFAULT_GROUP_WAIT)]
        );
    }

    fn action(name: &str, min: Severity, rules: &[RuleName]) -> Action {
        Action {
            name: name.to_string(),
            command: "true".to_string(),
            timeout: 60_000,
            min_severity: min,
            rules: rules.to_vec(),
        }
    }

    #[test]
    fn actions_take_alerts_at_their_own_severity_at_once_and_are_no_route_target() {
        let cfg = DeliveryConfig {
            webhook: vec![webhook("siem")],
            actions: vec![
                action("disable", Severity::High, &[]),
                action("only_bypass", Severity::Low, &[RuleName::ApprovalBypass]),
            ],
            run_actions: true,
            ..Default::default()
        };
        let r = Router::new(&cfg);
        assert!(r.has_channels());
        assert_eq!(
            names(&r.route(&alert("disabled_tool", Severity::Critical, "a"))),
            vec![("siem", "all", 30_000), ("disable", ACTION_ROUTE, 0)]
        );
        assert_eq!(
            names(&r.route(&alert("approval_bypass", Severity::High, "b"))),
            vec![
                ("siem", "all", 30_000),
                ("disable", ACTION_ROUTE, 0),
                ("only_bypass", ACTION_ROUTE, 0)
            ]
        );
        // Lower severities and the test alert: no action.
        assert_eq!(
            names(&r.route(&alert("rapid_tool_usage", Severity::Medium, "c"))),
            vec![("siem", "all", 30_000)]
        );
        assert_eq!(
            names(&r.route(&alert("test_alert", Severity::Critical, "d"))),
            vec![("siem", "all", 30_000)]
        );
        assert!(
            r.gated_actions(&alert("disabled_tool", Severity::Critical, "a"))
                .is_empty()
        );
    }

    #[test]
    fn actions_are_gated_by_auto_disable_on_suspicious() {
        let cfg = DeliveryConfig {
            actions: vec![action("disable", Severity::High, &[])],
            run_actions: false,
            ..Default::default()
        };
        let r = Router::new(&cfg);
        assert!(!r.has_channels());
        assert!(r.channels().is_empty());
        let a = alert("disabled_tool", Severity::Critical, "a");
        assert!(r.route(&a).is_empty());
        let gated: Vec<&str> = r
            .gated_actions(&a)
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(gated, vec!["disable"]);
        assert!(
            r.gated_actions(&alert("unusual_hours", Severity::Low, "b"))
                .is_empty()
        );
    }
}
