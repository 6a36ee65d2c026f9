//! `error_spike`: more than `threshold` (5) errors for one key (the
//! server) with ts in (t − 5 min, t].

use super::counting;
use super::threshold_number;
use crate::config::RuleConfig;
use crate::detect::{Cx, describe_key, format_window};

pub(crate) type State = counting::State;

pub(crate) fn process(r: &RuleConfig, st: &mut State, cx: &mut Cx<'_, '_>) {
    counting::process(r, st, cx, |count, cx| {
        let latest = match cx.ev.error_type.as_deref() {
            Some(ty) => format!("; latest: {ty}"),
            None => String::new(),
        };
        format!(
            "{} had {count} errors in {} (threshold {}){latest}",
            describe_key(&r.key, cx.ev),
            format_window(r.window),
            threshold_number(r.threshold)
        )
    });
}
