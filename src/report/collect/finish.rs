//! The end of a report run: [`Collector::finish`] turns the counters into
//! the [`Report`] (pairs sorted and aggregated per server, the `other` rows,
//! coverage and the days without logs).

use std::collections::BTreeMap;

use super::Collector;
use super::stats::PairStats;
use crate::alert::format_ts;
use crate::event::{Millis, RejectReason, Severity};
use crate::report::model::*;
use crate::report::period::{day_name, day_of};

impl Collector<'_> {
    /// The finished report.
    pub(crate) fn finish(mut self) -> Report {
        self.flush_call_hour();
        let opts = self.opts;
        let caps = &opts.caps;
        // Pairs sorted by server then tool; servers aggregate their tools.
        let mut servers: BTreeMap<&str, BTreeMap<&str, &PairStats>> = BTreeMap::new();
        for (s, tools) in &self.pairs {
            for (t, p) in tools {
                servers.entry(s).or_default().insert(t, p);
            }
        }
        let mut tool_rows = Vec::with_capacity(self.n_pairs);
        let mut server_rows = Vec::with_capacity(servers.len());
        for (s, tools) in &servers {
            let mut agg = PairStats::default();
            for (t, p) in tools {
                tool_rows.push(p.row(s, t));
                p.add_to(&mut agg, caps);
            }
            let r = agg.row(s, "");
            server_rows.push(ServerRow {
                server: r.server,
                tools: tools.len() as u64,
                calls: r.calls,
                outcomes: r.outcomes,
                approvals: r.approvals,
                errors: r.errors,
                latency_ms: r.latency_ms,
            });
        }
        let mut users: Vec<UserRow> = self.users.iter().map(|(u, s)| s.user_row(u)).collect();
        users.sort_by(|a, b| a.user.cmp(&b.user));

        let mut by_severity: BTreeMap<String, u64> = Severity::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        let mut by_rule = Vec::new();
        let mut alert_total = 0;
        for (rule, n) in &self.alerts {
            for (s, c) in Severity::ALL.iter().zip(n) {
                *by_severity.entry(s.as_str().to_string()).or_default() += c;
            }
            let total = n.iter().sum();
            alert_total += total;
            by_rule.push(RuleAlerts {
                rule: rule.clone(),
                total,
                low: n[0],
                medium: n[1],
                high: n[2],
                critical: n[3],
            });
        }

        let rejected = Rejected {
            total: self.rejected.iter().sum(),
            by_reason: RejectReason::ALL
                .iter()
                .zip(self.rejected)
                .map(|(r, n)| (r.as_str().to_string(), n))
                .collect(),
        };

        let coverage = self.coverage();
        self.new_tools.approximate = self.seen_overflow;
        let mut inputs = std::mem::take(&mut self.inputs);
        inputs.events_read = self.events_read;
        inputs.events_selected = self.events_selected;
        let mut timeline = self.timeline.take().unwrap_or_default();
        timeline.finish();
        let mut series = std::mem::take(&mut self.series);
        series.span = self.span(&series);
        Report {
            timeline,
            series,
            report_version: REPORT_VERSION,
            generated_at: format_ts(opts.now),
            period: PeriodInfo {
                name: opts.period.map(|p| p.as_str().to_string()),
                since: opts.range.since.map(format_ts),
                until: opts.range.until.map(format_ts),
            },
            filters: Filters {
                user: opts.user.clone(),
                server: opts.server.clone(),
                token: opts.token.clone(),
                request: opts.request.clone(),
                token_requests: opts
                    .token
                    .as_ref()
                    .map(|_| self.token_requests.len() as u64),
                token_requests_complete: self.token_requests_complete,
            },
            inputs,
            totals: Totals {
                tool_calls: self.tool_calls,
                approvals: self.approvals,
                errors: self.errors,
                servers: servers.len() as u64,
                tools: self.n_pairs as u64,
                users: self.users.len() as u64,
            },
            servers: server_rows,
            tools: tool_rows,
            other: self.other.as_ref().map(|p| p.row(OTHER, OTHER)),
            users,
            users_other: self.users_other.as_ref().map(|u| u.row(OTHER)),
            hour_of_day: self.hours,
            new_tools: std::mem::take(&mut self.new_tools),
            disabled_tool_invocations: opts
                .policy
                .is_some()
                .then(|| std::mem::take(&mut self.disabled)),
            approval_bypasses: std::mem::take(&mut self.bypasses),
            drifted_tools: self.drift.finish(caps.max_listed),
            alerts: AlertTotals {
                total: alert_total,
                by_severity,
                by_rule,
                unreadable_lines: self.alerts_unreadable,
            },
            rejected,
            coverage,
            policy: opts.policy_info.clone(),
            limits: Limits {
                max_pairs: caps.max_pairs as u64,
                pairs_overflow_events: self.pairs_overflow_events,
                max_users: caps.max_users as u64,
                users_overflow_events: self.users_overflow_events,
                max_listed: caps.max_listed as u64,
                events_outside_period: self.outside,
                events_filtered_out: self.filtered_out,
            },
        }
    }

    /// The time the charts cover: the period, an open start from the
    /// oldest record's day and an open end to the end of "now"'s day,
    /// widened to every hour or day `series` counted.
    fn span(&self, series: &Series) -> Option<(Millis, Millis)> {
        const HOUR: Millis = 3_600_000;
        const DAY: Millis = 86_400_000;
        let range = self.opts.range;
        let hours = series
            .calls_per_hour
            .keys()
            .chain(series.alerts_per_hour.values().flat_map(|h| h.keys()));
        let days = series.decisions_per_day.keys();
        let data = hours
            .map(|h| (h * HOUR, (h + 1) * HOUR))
            .chain(days.map(|d| (d * DAY, (d + 1) * DAY)))
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)));
        let start = range.since.or_else(|| self.oldest.map(|o| day_of(o) * DAY));
        let end = range.until.unwrap_or((day_of(self.opts.now) + 1) * DAY);
        let (start, end) = match (start, data) {
            (Some(s), Some((a, b))) => (s.min(a), end.max(b)),
            (Some(s), None) => (s, end),
            (None, Some((a, b))) => (a, end.max(b)),
            (None, None) => return None,
        };
        (start < end).then_some((start, end))
    }

    fn coverage(&self) -> Coverage {
        let opts = self.opts;
        let retention_days = opts.retention_days;
        let age = self.oldest.map(|o| (opts.now - o).div_euclid(86_400_000));
        let retention_status = match age {
            None => "no_records",
            Some(a) if a < i64::from(retention_days) => "shorter_than_retention",
            Some(a) if a <= i64::from(retention_days) + 2 => "meets_retention",
            Some(_) => "exceeds_retention",
        };
        let first = opts
            .range
            .since
            .map(day_of)
            .or_else(|| self.oldest.map(day_of));
        let last = Some(opts.range.until.map_or(day_of(opts.now), |u| day_of(u - 1)));
        let mut gaps = Vec::new();
        let mut gaps_total = 0;
        if let (Some(f), Some(l)) = (first, last) {
            for d in f..=l {
                if !self.days.contains(&d) {
                    gaps_total += 1;
                    if gaps.len() < opts.caps.max_listed {
                        gaps.push(day_name(d));
                    }
                }
            }
        }
        let valid = first.zip(last).is_some_and(|(f, l)| f <= l);
        Coverage {
            oldest_record: self.oldest.map(format_ts),
            oldest_record_age_days: age,
            retention_days,
            retention_status: retention_status.to_string(),
            first_day: first.filter(|_| valid).map(day_name),
            last_day: last.filter(|_| valid).map(day_name),
            days_without_logs: gaps,
            days_without_logs_total: gaps_total,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::event::Millis;
    use crate::ingest::merge::TimeRange;
    use crate::report::{ReportOptions, build};

    const NOV_20: Millis = 1_795_132_800_000; // 2026-11-20T00:00:00Z
    const HOUR: Millis = 3_600_000;
    const DAY: Millis = 86_400_000;

    fn audit() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let call = |ts: &str, outcome: &str| {
            format!("{{\"ts\":\"2026-11-{ts}Z\",\"tool_name\":\"t\"{outcome}}}\n")
        };
        let calls = [
            call("20T10:05:00", ",\"outcome\":\"success\""),
            call("20T10:50:00", ",\"outcome\":\"error\""),
            call("20T11:10:00", ",\"outcome\":\"denied\""),
            // Out of order in its file: still counted in its own hour.
            call("20T10:59:00", ""),
            call("21T23:59:59", ",\"outcome\":\"success\""),
        ];
        std::fs::write(d.path().join("tool-usage.log"), calls.concat()).unwrap();
        let approval = |ts: &str, decision: &str| {
            format!("{{\"ts\":\"2026-11-{ts}Z\",\"tool_name\":\"t\"{decision}}}\n")
        };
        let approvals = [
            approval("20T10:00:00", ",\"decision\":\"approve\""),
            approval("21T09:00:00", ",\"decision\":\"deny\""),
            approval("21T09:01:00", ",\"decision\":\"timeout\""),
            approval("21T09:02:00", ""),
        ];
        std::fs::write(d.path().join("approvals.log"), approvals.concat()).unwrap();
        let alert = |rule: &str, ts: &str| {
            format!(
                "{{\"id\":\"{rule}{ts}\",\"rule\":\"{rule}\",\"severity\":\"high\",\"ts\":\"2026-11-{ts}Z\",\
                 \"key\":{{}},\"suppressed\":0,\"message\":\"m\",\"evidence\":[]}}\n"
            )
        };
        let alerts = [
            alert("rapid_tool_usage", "20T10:30:00.000"),
            alert("rapid_tool_usage", "20T10:40:00.000"),
            alert("error_spike", "21T01:00:00.000"),
        ];
        std::fs::write(d.path().join("alerts.log"), alerts.concat()).unwrap();
        d
    }

    #[test]
    fn series_count_calls_per_hour_decisions_per_day_and_alerts_per_rule_and_hour() {
        let d = audit();
        let range = TimeRange {
            since: Some(NOV_20),
            until: Some(NOV_20 + 2 * DAY),
        };
        let mut opts = ReportOptions::new(d.path(), range, NOV_20 + 3 * DAY);
        opts.parser.now_ms = NOV_20 + 3 * DAY;
        let s = build(&opts).unwrap().series;
        let h = NOV_20 / HOUR;
        let per_hour: Vec<(i64, [u64; 4])> = s.calls_per_hour.into_iter().collect();
        assert_eq!(
            per_hour,
            [
                (h + 10, [1, 1, 0, 1]),
                (h + 11, [0, 0, 1, 0]),
                (h + 47, [1, 0, 0, 0])
            ]
        );
        let d0 = NOV_20 / DAY;
        let per_day: Vec<(i64, [u64; 3])> = s.decisions_per_day.into_iter().collect();
        assert_eq!(per_day, [(d0, [1, 0, 0]), (d0 + 1, [0, 1, 1])]);
        let alerts: Vec<(String, Vec<(i64, u64)>)> = s
            .alerts_per_hour
            .into_iter()
            .map(|(r, m)| (r, m.into_iter().collect()))
            .collect();
        assert_eq!(
            alerts,
            [
                ("error_spike".to_string(), vec![(h + 25, 1)]),
                ("rapid_tool_usage".to_string(), vec![(h + 10, 2)])
            ]
        );
        assert_eq!(s.span, Some((NOV_20, NOV_20 + 2 * DAY)));
    }

    #[test]
    fn an_open_period_spans_the_oldest_records_day_to_the_end_of_nows() {
        let d = audit();
        let now = NOV_20 + 5 * DAY + HOUR;
        let mut opts = ReportOptions::new(d.path(), TimeRange::default(), now);
        opts.parser.now_ms = now;
        let s = build(&opts).unwrap().series;
        assert_eq!(s.span, Some((NOV_20, NOV_20 + 6 * DAY)));
        // "Now" before the data: the span still holds every counted hour.
        let early = NOV_20 + 10 * HOUR;
        let mut opts = ReportOptions::new(d.path(), TimeRange::default(), early);
        opts.parser.now_ms = NOV_20 + 5 * DAY;
        let s = build(&opts).unwrap().series;
        assert_eq!(s.span, Some((NOV_20, NOV_20 + 2 * DAY)));
        // No record and no period: nothing to chart.
        let empty = tempfile::tempdir().unwrap();
        let opts = ReportOptions::new(empty.path(), TimeRange::default(), now);
        assert_eq!(build(&opts).unwrap().series.span, None);
    }
}
