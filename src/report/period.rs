//! Report periods: the last *complete* day, ISO week or calendar month in
//! UTC before "now". A report for a period that is still running would
//! change every time it is made, so an operator's daily/weekly/monthly report
//! always covers a closed interval `[since, until)`.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

use crate::event::Millis;
use crate::ingest::merge::TimeRange;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Daily,
    Weekly,
    Monthly,
}

impl Period {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
        }
    }

    /// The last complete period before `now`: daily is yesterday 00:00 to
    /// today 00:00, weekly the last full ISO week (Monday 00:00 to Monday
    /// 00:00), monthly the last full calendar month.
    pub fn range(self, now: Millis) -> TimeRange {
        let now = DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_default();
        let today = now.date_naive();
        let (start, end) = match self {
            Period::Daily => (today - Duration::days(1), today),
            Period::Weekly => {
                let monday =
                    today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
                (monday - Duration::days(7), monday)
            }
            Period::Monthly => {
                let first = today.with_day(1).unwrap_or(today);
                let prev = first
                    .pred_opt()
                    .unwrap_or(first)
                    .with_day(1)
                    .unwrap_or(first);
                (prev, first)
            }
        };
        TimeRange {
            since: Some(midnight(start)),
            until: Some(midnight(end)),
        }
    }
}

fn midnight(d: NaiveDate) -> Millis {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .timestamp_millis()
}

/// Days since the epoch of a time (UTC), for gap and day bookkeeping.
pub(crate) fn day_of(ts: Millis) -> i64 {
    ts.div_euclid(86_400_000)
}

/// `YYYY-MM-DD` of an epoch day.
pub(crate) fn day_name(day: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(day * 86_400_000)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::format_ts;

    fn at(s: &str) -> Millis {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn shown(r: TimeRange) -> (String, String) {
        (format_ts(r.since.unwrap()), format_ts(r.until.unwrap()))
    }

    #[test]
    fn daily_is_yesterday_midnight_to_midnight() {
        let r = Period::Daily.range(at("2026-11-23T14:03:07Z"));
        assert_eq!(
            shown(r),
            (
                "2026-11-22T00:00:00.000Z".into(),
                "2026-11-23T00:00:00.000Z".into()
            )
        );
        // At midnight exactly, the day that just ended is the report.
        let r = Period::Daily.range(at("2026-11-23T00:00:00Z"));
        assert_eq!(shown(r).0, "2026-11-22T00:00:00.000Z");
        // Across a year boundary.
        let r = Period::Daily.range(at("2027-01-01T00:00:01Z"));
        assert_eq!(shown(r).0, "2026-12-31T00:00:00.000Z");
    }

    #[test]
    fn weekly_is_the_last_full_iso_week() {
        // 2026-11-23 is a Monday: the week before, Mon 16 to Mon 23.
        let r = Period::Weekly.range(at("2026-11-23T08:00:00Z"));
        assert_eq!(
            shown(r),
            (
                "2026-11-16T00:00:00.000Z".into(),
                "2026-11-23T00:00:00.000Z".into()
            )
        );
        // Sunday 29th late: still the week of Mon 16 (the 23rd's week is not over).
        let r = Period::Weekly.range(at("2026-11-29T23:59:59.999Z"));
        assert_eq!(shown(r).0, "2026-11-16T00:00:00.000Z");
        // ISO week across a year boundary: Mon 2026-12-28 to Mon 2027-01-04.
        let r = Period::Weekly.range(at("2027-01-05T00:00:00Z"));
        assert_eq!(
            shown(r),
            (
                "2026-12-28T00:00:00.000Z".into(),
                "2027-01-04T00:00:00.000Z".into()
            )
        );
    }

    #[test]
    fn monthly_is_the_last_full_calendar_month() {
        let r = Period::Monthly.range(at("2026-11-23T14:00:00Z"));
        assert_eq!(
            shown(r),
            (
                "2026-10-01T00:00:00.000Z".into(),
                "2026-11-01T00:00:00.000Z".into()
            )
        );
        let r = Period::Monthly.range(at("2027-01-01T00:00:00Z"));
        assert_eq!(
            shown(r),
            (
                "2026-12-01T00:00:00.000Z".into(),
                "2027-01-01T00:00:00.000Z".into()
            )
        );
        // February of a non-leap year ends on the 28th.
        let r = Period::Monthly.range(at("2027-03-31T12:00:00Z"));
        assert_eq!(
            shown(r),
            (
                "2027-02-01T00:00:00.000Z".into(),
                "2027-03-01T00:00:00.000Z".into()
            )
        );
    }

    #[test]
    fn day_names_are_utc_dates() {
        assert_eq!(
            day_name(day_of(at("2026-11-23T23:59:59.999Z"))),
            "2026-11-23"
        );
        assert_eq!(day_of(at("1969-12-31T23:00:00Z")), -1);
    }
}
