//! The two scripts that fill the example's day: normal traffic, shaped to
//! set off no rule of SPEC §3, and the planted anomalies, each setting off
//! exactly its own rule once.
//!
//! A child of the example module, so it uses the example's tools, line
//! writers and builder directly.

use std::collections::BTreeMap;

use super::*;

pub(super) fn normal_traffic(b: &mut Builder) {
    let total_weight: i64 = TOOLS.iter().map(|t| t.weight).sum();
    // Error times per server: a normal error keeps 5 minutes from any other
    // on its server, far from error_spike's 6 in 5 minutes.
    let mut errors: BTreeMap<&str, Vec<Millis>> = BTreeMap::new();
    let spike_quiet = (at(15, 5, 0, 0), at(15, 45, 0, 0));
    for u in 1..=USERS {
        let user = user_name(u);
        let agent = agent_of(u);
        let target = b.rng.range(50, 130) as usize;
        let mut times: Vec<(Millis, u32)> = Vec::new();
        let mut session = 0u32;
        while times.len() < target {
            session += 1;
            let mut t = DAY_START + b.rng.range(0, 15 * HOUR + 30 * MIN);
            for _ in 0..b.rng.range(3, 13) {
                times.push((t, session));
                t += b.rng.range(MIN_GAP, 90 * SEC);
            }
        }
        times.sort();
        let mut last = Millis::MIN / 2;
        let mut denials: Vec<Millis> = Vec::new();
        // (session, server, ts) of the source calls (exfil_sequence's
        // default globs) so far.
        let mut sources: Vec<(u32, &str, Millis)> = Vec::new();
        for (t, session) in times {
            let t = t.max(last + MIN_GAP);
            if t >= DAY_END - 10 * SEC {
                break;
            }
            last = t;
            if excluded(u, t) {
                continue;
            }
            let mut w = b.rng.range(0, total_weight);
            let tool = TOOLS
                .iter()
                .find(|x| {
                    w -= x.weight;
                    w < 0
                })
                .unwrap_or(&TOOLS[0]);
            let st = Style {
                canonical: b.rng.range(0, 4) != 0,
            };
            // A send that would follow a read on another server within
            // exfil_sequence's 10 minutes in its session is made in a
            // conversation of its own: the user asked for that mail, the
            // agent is not passing on what it read.
            let after_read = beyond::is_sink(tool.name)
                && sources
                    .iter()
                    .any(|&(s, srv, ts)| s == session && srv != tool.server && ts > t - 10 * MIN);
            let conv = if after_read {
                format!("c-{user}-{session}-send")
            } else {
                format!("c-{user}-{session}")
            };
            if beyond::is_source(tool.name) {
                sources.push((session, tool.server, t));
            }
            let mut c = Call {
                ts: t,
                rid: b.rid(),
                user: &user,
                agent: &agent,
                conv: &conv,
                server: tool.server,
                tool: tool.name,
                outcome: "success",
                duration_ms: b.rng.range(40, 2500),
                args_bytes: b.rng.range(60, 4000),
            };
            if tool.needs_approval {
                // At most 2 denials per user in any hour: high_denial_rate
                // needs at least 3 of 5.
                let recent = denials.iter().filter(|d| **d > t - HOUR - 5 * SEC).count();
                let roll = b.rng.range(0, 100);
                let decision = if roll < 5 && recent < 2 {
                    "deny"
                } else if roll == 5 && recent < 2 {
                    "timeout"
                } else {
                    "approve"
                };
                let before = if decision == "timeout" {
                    b.rng.range(1000, 2000)
                } else {
                    b.rng.range(1000, 4001)
                };
                if decision != "approve" {
                    denials.push(t - before);
                    c.outcome = "denied";
                    c.duration_ms = b.rng.range(1, 20);
                }
                let line = approval_line(&mut b.rng, &st, &c, t - before, decision);
                b.push(File::Approvals, t - before, line, None);
            }
            if c.outcome == "success" && b.rng.chance(0.015) {
                let list = errors.entry(tool.server).or_default();
                let quiet = tool.server == "orders" && t >= spike_quiet.0 && t <= spike_quiet.1;
                if !quiet && list.iter().all(|e| (e - t).abs() > 5 * MIN + 5 * SEC) {
                    list.push(t);
                    c.outcome = "error";
                    let et = t + c.duration_ms;
                    let which = b.rng.range(0, ERRORS.len() as i64) as usize;
                    let line = error_line(&mut b.rng, &st, &c, et, which);
                    b.push(File::Errors, et, line, None);
                }
            }
            let line = call_line(&mut b.rng, &st, &c);
            b.push(File::Calls, t, line, None);
        }
    }
}

pub(super) fn planted_anomalies(b: &mut Builder) {
    // (a) rapid_tool_usage: u-07 makes 14 auto-approved calls in 39 s; the
    // 11th (10:30:30) fires, the last three are suppressed (realert 10m).
    let rapid = b.plant(
        "rapid_tool_usage",
        key(&[("user_id", "u-07")]),
        Some("11"),
        "14 calls 3 s apart from 10:30:00; calls 12-14 suppressed",
    );
    let quick = [
        ("gmail", "email_read"),
        ("calendar", "calendar_read"),
        ("orders", "order_get"),
        ("crm", "contact_search"),
        ("drive", "file_search"),
    ];
    for i in 0..14 {
        let (server, tool) = quick[i % quick.len()];
        let fires = (i == 10).then_some(rapid);
        b.planted_call(
            7,
            at(10, 30, 3 * i as i64, 0),
            server,
            tool,
            "success",
            None,
            fires,
            None,
        );
    }

    // (b) unusual_hours: u-13 at 03:12 and 03:40; the second is suppressed.
    let hours = b.plant(
        "unusual_hours",
        key(&[("user_id", "u-13")]),
        Some("3"),
        "second call at 03:40:41 suppressed (realert 1h)",
    );
    b.planted_call(
        13,
        at(3, 12, 5, 250),
        "gmail",
        "email_read",
        "success",
        None,
        Some(hours),
        None,
    );
    b.planted_call(
        13,
        at(3, 40, 41, 800),
        "calendar",
        "calendar_read",
        "success",
        None,
        None,
        None,
    );

    // (c) high_denial_rate: u-21, six decisions 4 minutes apart, four denials;
    // the 5th (3 of 5 denied = 0.6) fires, the 6th is suppressed.
    let denial = b.plant(
        "high_denial_rate",
        key(&[("user_id", "u-21")]),
        Some("0.6"),
        "decisions approve,deny,approve,deny,deny,deny from 13:00; the 6th suppressed (realert 30m)",
    );
    let decisions = ["approve", "deny", "approve", "deny", "deny", "deny"];
    let tools = [
        ("gmail", "email_send"),
        ("orders", "order_process"),
        ("calendar", "calendar_create"),
        ("gmail", "email_send"),
        ("drive", "file_export"),
        ("gmail", "email_send"),
    ];
    for (i, (decision, (server, tool))) in decisions.iter().zip(tools).enumerate() {
        let outcome = if *decision == "approve" {
            "success"
        } else {
            "denied"
        };
        let fires = (i == 4).then_some(denial);
        let call_ts = at(13, 4 * i as i64, 2, 0);
        b.planted_call(
            21,
            call_ts,
            server,
            tool,
            outcome,
            Some((2000, decision)),
            None,
            fires,
        );
    }

    // (d) new_tool_usage: a tool named in no list, approved (it requires
    // approval under fine_grained, matching no rule).
    let new_tool = b.plant(
        "new_tool_usage",
        key(&[("server_name", "crm"), ("tool_name", "contact_bulk_export")]),
        None,
        "approved 2.5 s before, so no approval_bypass",
    );
    b.planted_call(
        29,
        at(16, 45, 10, 500),
        "crm",
        "contact_bulk_export",
        "success",
        Some((2500, "approve")),
        Some(new_tool),
        None,
    );

    // (e) disabled_tool.
    let disabled = b.plant(
        "disabled_tool",
        key(&[
            ("server_name", "crm"),
            ("tool_name", "admin_reset_password"),
            ("user_id", "u-33"),
        ]),
        None,
        "admin_reset_password is disabled (named in disabled.tools; also matches admin_*)",
    );
    b.planted_call(
        33,
        at(11, 47, 31, 0),
        "crm",
        "admin_reset_password",
        "success",
        None,
        Some(disabled),
        None,
    );

    // (f) approval_bypass: email_send with a request_id and no approve.
    let bypass_at = b.planted.len();
    let rid = b.planted_call(
        18,
        at(14, 22, 40, 0),
        "gmail",
        "email_send",
        "success",
        None,
        Some(bypass_at),
        None,
    );
    b.plant(
        "approval_bypass",
        key(&[("request_id", &rid)]),
        None,
        "email_send requires approval; no approval line has this request_id",
    );

    // (g) error_spike: 7 errors on orders within 3 minutes; the 6th fires.
    let spike = b.plant(
        "error_spike",
        key(&[("server_name", "orders")]),
        Some("6"),
        "7 errors 25 s apart from 15:20:00.300; the 7th suppressed (realert 15m)",
    );
    for (i, user) in [2, 4, 9, 11, 15, 25, 30].into_iter().enumerate() {
        let t = at(15, 20, 25 * i as i64, 0);
        let st = Style { canonical: true };
        let user_s = user_name(user);
        let agent = agent_of(user);
        let conv = format!("c-{user_s}-spike");
        let c = Call {
            ts: t,
            rid: b.rid(),
            user: &user_s,
            agent: &agent,
            conv: &conv,
            server: "orders",
            tool: "order_get",
            outcome: "error",
            duration_ms: 300,
            args_bytes: b.rng.range(60, 400),
        };
        let line = call_line(&mut b.rng, &st, &c);
        b.push(File::Calls, t, line, None);
        let line = error_line(&mut b.rng, &st, &c, t + 300, 0);
        b.push(File::Errors, t + 300, line, (i == 5).then_some(spike));
    }
}
