//! The planted cases of the rules the seed's own settings switch on
//! (SPEC §3): the example's `security-config.json` sets `rateLimiting`,
//! `authentication.tokenRotation` and `monitoring` (healthCheckInterval
//! 240 s, so `after` is 40 min: normal traffic never leaves a busy server
//! quiet that long). Each case fires its rule once; they come after every
//! other line of the script, so they shift no request id or random draw of
//! the cases before them (only line numbers).

use super::*;

/// `after` of the silences: 10 × the example's healthCheckInterval (240 s).
pub(super) const SILENCE_AFTER: Millis = 2400 * SEC;

pub(super) fn seeded_anomalies(b: &mut Builder) {
    // (h) rate_limit_exceeded: u-07 again, 30 s after its rapid burst: 12
    // calls 10 ms apart from 10:31:00. The bucket (10, 1 a second) is full
    // again; the 11th finds it empty. rapid_tool_usage is still within its
    // realert for u-07, so it only counts these as suppressed.
    let rate = b.plant(
        "rate_limit_exceeded",
        key(&[("user_id", "u-07")]),
        Some("24"),
        "12 calls 10 ms apart from 10:31:00 (the bucket holds 10, refills 1 a second); the 12th suppressed (realert 10m)",
    );
    let quick = [
        ("gmail", "email_read"),
        ("calendar", "calendar_read"),
        ("orders", "order_get"),
    ];
    for i in 0..12 {
        let (server, tool) = quick[i % quick.len()];
        let fires = (i == 10).then_some(rate);
        let t = at(10, 31, 0, 10 * i as i64);
        b.planted_call(7, t, server, tool, "success", None, fires, None);
    }

    // (i) token_shared: one bearer token used by two agents 35 minutes
    // apart (the seed's "token compromise").
    let shared = b.plant(
        "token_shared",
        key(&[("token_id", "tk-5e1d")]),
        Some("2"),
        "tk-5e1d used by ag-6 (u-11) at 12:05 and by ag-3 (u-14) at 12:40",
    );
    b.token_call(
        11,
        at(12, 5, 0, 0),
        ("crm", "contact_search"),
        "tk-5e1d",
        None,
    );
    b.token_call(
        14,
        at(12, 40, 0, 0),
        ("drive", "file_read"),
        "tk-5e1d",
        Some(shared),
    );

    // (j, k) token rotation: u-10's token first seen 33 days earlier (the
    // first line of tool-usage.log): due (> 30 − 7 days) and overdue (> 30
    // days) on the same call, once each.
    let due = b.plant(
        "token_rotation_due",
        key(&[("token_id", "tk-0b7c")]),
        Some("33"),
        "tk-0b7c first seen 2026-10-21T09:15:00Z (tool-usage.log:1); rotation due after 23 days",
    );
    let overdue = b.plant(
        "token_rotation_overdue",
        key(&[("token_id", "tk-0b7c")]),
        Some("33"),
        "same call: older than intervalDays (30)",
    );
    b.token_call(
        10,
        at(9, 15, 0, 0) - 33 * 24 * HOUR,
        ("gmail", "email_read"),
        "tk-0b7c",
        None,
    );
    let i = b.recs.len();
    b.token_call(
        10,
        at(9, 15, 0, 0),
        ("gmail", "email_read"),
        "tk-0b7c",
        Some(due),
    );
    b.also_fires(i, overdue);

    // (l) server_silence: a billing server busy from 07:00 (40 calls 90 s
    // apart), then quiet; the watermark passes 07:58:30 + 40 min.
    let silent = b.plant(
        "server_silence",
        key(&[("server_name", "billing")]),
        Some("40"),
        "40 invoice_get calls 90 s apart to 07:58:30, then none; alert at last call + 40 min (healthCheckInterval 240 s × 10)",
    );
    b.planted[silent].delay = SILENCE_AFTER;
    for k in 0..40 {
        let fires = (k == 39).then_some(silent);
        let t = at(7, 0, 0, 0) + k * 90 * SEC;
        b.planted_call(5, t, "billing", "invoice_get", "success", None, fires, None);
    }

    // (m) audit_silence: a nightly sync on behalf of every user, 66 calls
    // 54 s apart from 22:00 (as normal traffic ends; spread over six
    // servers, so no server has 30 in its hour), then nothing; an error at
    // 23:50 passes the last call + 40 min.
    let audit = b.plant(
        "audit_silence",
        key(&[("log", "tool-usage.log")]),
        Some("66"),
        "nightly sync: 66 calls 54 s apart from 22:00 to 22:58:30, then no call; an error at 23:50 passes last call + 40 min",
    );
    b.planted[audit].delay = SILENCE_AFTER;
    // The servers normal traffic left quiet longest come first, so none
    // of them stays silent for `after` before the sync reaches it.
    let sync = [
        ("crm", "contact_search"),
        ("calendar", "calendar_read"),
        ("drive", "file_read"),
        ("gmail", "email_read"),
        ("orders", "order_get"),
        ("weather", "weather_get"),
    ];
    for k in 0..66 {
        let (server, tool) = sync[k % sync.len()];
        let fires = (k == 65).then_some(audit);
        let t = at(22, 0, 0, 0) + k as Millis * 54 * SEC;
        b.planted_call(1 + k % USERS, t, server, tool, "success", None, fires, None);
    }
    let st = Style { canonical: true };
    let user = user_name(3);
    let agent = agent_of(3);
    let c = Call {
        ts: at(23, 50, 0, 0),
        rid: b.rid(),
        user: &user,
        agent: &agent,
        conv: "c-u-03-late",
        server: "gmail",
        tool: "email_read",
        outcome: "error",
        duration_ms: 30_000,
        args_bytes: 120,
    };
    let line = error_line(&mut b.rng, &st, &c, c.ts, 0);
    b.push(File::Errors, c.ts, line, None);
}

impl Builder {
    /// A planted auto-approved call of `user` that carries a `token_id`.
    fn token_call(
        &mut self,
        user: usize,
        ts: Millis,
        (server, tool): (&str, &str),
        token: &str,
        fires: Option<usize>,
    ) {
        let i = self.recs.len();
        self.planted_call(user, ts, server, tool, "success", None, fires, None);
        let line = &mut self.recs[i].line;
        line.pop(); // the closing brace
        line.push_str(&format!(r#","token_id":{}}}"#, js(token)));
    }

    /// The line pushed at `recs[i]` also fires planted alert `p` (two rules
    /// on one call).
    fn also_fires(&mut self, i: usize, p: usize) {
        self.recs[i].also = Some(p);
    }
}
