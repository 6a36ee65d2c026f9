//! `[[actions]]` of mcpwatch.toml (SPEC §5): the seed's incident response
//! as commands. Checked like channels (every error at once, with place):
//! a name unique among channels and actions, a command that is not empty,
//! a `timeout` that parses, `min_severity` and `rules` as for routes.

use std::collections::HashSet;

use super::Action;
use super::settings::{get, keys, nonempty_str, required, rule_list, severity, tables};
use super::tree::{Ctx, Entry};
use crate::event::{Millis, Severity};

const ACTION: [&str; 5] = ["name", "command", "timeout", "min_severity", "rules"];
/// `timeout` when not set (SPEC §5: 60 s).
pub(crate) const DEFAULT_ACTION_TIMEOUT: Millis = 60_000;

/// Every `[[actions]]` table that passed; `channels` are the channel names
/// (one namespace: `test-alert --channel` takes either).
pub(super) fn check_actions(
    cx: &mut Ctx,
    v: &super::tree::Node,
    channels: &HashSet<String>,
) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::new();
    for (i, t) in tables(cx, v, "actions") {
        let p = format!("actions[{i}]");
        if let Some(a) = action(cx, t, &p, channels, &out) {
            out.push(a);
        }
    }
    out
}

fn action(
    cx: &mut Ctx,
    t: &[Entry],
    p: &str,
    channels: &HashSet<String>,
    earlier: &[Action],
) -> Option<Action> {
    keys(cx, t, p, &ACTION);
    let before = cx.errors.len();
    let f = |k: &str| format!("{p}.{k}");
    let name = required(cx, t, p, "name", "an action name")
        .and_then(|n| {
            let s = nonempty_str(cx, n, &f("name"), "an action name")?;
            Some((n.pos, s))
        })
        .and_then(|(pos, s)| {
            if channels.contains(&s) {
                cx.err(
                    pos,
                    &f("name"),
                    format!("{s:?} is already a channel's name; actions and channels share one namespace"),
                );
                None
            } else if earlier.iter().any(|a| a.name == s) {
                cx.err(pos, &f("name"), format!("action name {s:?} is used twice"));
                None
            } else {
                Some(s)
            }
        });
    let command = required(cx, t, p, "command", "a shell command").and_then(|n| {
        nonempty_str(
            cx,
            n,
            &f("command"),
            "a shell command such as \"disable-mcp-server.sh \\\"$MCPWATCH_SERVER_NAME\\\"\"",
        )
    });
    let timeout = get(t, "timeout").map_or(Some(DEFAULT_ACTION_TIMEOUT), |n| {
        cx.duration(n, &f("timeout"), 1)
    });
    let min_severity = get(t, "min_severity").map_or(Some(Severity::High), |n| {
        severity(cx, n, &f("min_severity"))
    });
    let rules = get(t, "rules").map_or_else(Vec::new, |n| rule_list(cx, n, p));
    if cx.errors.len() > before {
        return None;
    }
    Some(Action {
        name: name?,
        command: command?,
        timeout: timeout?,
        min_severity: min_severity?,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tree::parse_toml;
    use super::*;
    use crate::config::RuleName;

    fn check(text: &str) -> (Vec<Action>, Vec<String>) {
        let Ok(root) = parse_toml(text) else {
            panic!("syntax")
        };
        let mut cx = Ctx::new("mcpwatch.toml", "a table");
        let s = super::super::settings::check_settings(&root, &mut cx);
        (s.actions, cx.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn defaults_are_60s_high_and_every_rule() {
        let (a, e) = check("[[actions]]\nname = \"x\"\ncommand = \"true\"\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].timeout, a[0].min_severity, a[0].rules.len()),
            (DEFAULT_ACTION_TIMEOUT, Severity::High, 0)
        );
        let (a, e) = check(
            "[[actions]]\nname = \"x\"\ncommand = \"true\"\ntimeout = \"1500ms\"\nmin_severity = \"low\"\nrules = [\"disabled_tool\"]\n",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            (a[0].timeout, a[0].min_severity, a[0].rules.clone()),
            (1_500, Severity::Low, vec![RuleName::DisabledTool])
        );
    }

    #[test]
    fn missing_name_and_command_and_duplicate_names_are_errors() {
        let (a, e) = check(
            "[[actions]]\ntimeout = \"0s\"\n\n[[actions]]\nname = \"x\"\ncommand = \"a\"\n\n[[actions]]\nname = \"x\"\ncommand = \"b\"\nshell = \"bash\"\n",
        );
        assert_eq!(a.len(), 1);
        assert_eq!(
            e,
            [
                "mcpwatch.toml:2:1: actions[0].name: missing; expected an action name",
                "mcpwatch.toml:2:1: actions[0].command: missing; expected a shell command",
                "mcpwatch.toml:2:11: actions[0].timeout: duration \"0s\" must be more than 0",
                "mcpwatch.toml:11:1: actions[2].shell: unknown key \"shell\"; expected name, command, timeout, min_severity or rules",
                "mcpwatch.toml:9:8: actions[2].name: action name \"x\" is used twice",
            ]
        );
    }
}
