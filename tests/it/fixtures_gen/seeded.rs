//! A plain reading of SPEC §3's rules that the seed's own settings switch
//! on, over the example, to check the generator's planted cases: the token
//! bucket as a bucket (level and refill, not the engine's GCRA), token
//! ages from first sight, distinct agents per token, and silences judged
//! by the first event past each last call + `after`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use mcpwatch::event::{Kind, Millis};

use super::{FILES, Key, Line, key};

const S: Millis = 1000;
const DAY: Millis = 86_400 * S;

type Fired = BTreeSet<(String, Key, Millis, String, u64)>;

/// The example's seed settings, read from its security-config.json.
struct Seed {
    rate: i128,
    burst: i128,
    interval_days: i64,
    notify_days: i64,
    after: Millis,
}

fn seed(dir: &Path) -> Seed {
    let text = std::fs::read_to_string(dir.join("security-config.json")).expect("config");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let n = |p: &str| v.pointer(p).and_then(|x| x.as_f64()).expect(p);
    Seed {
        rate: n("/rateLimiting/requestsPerMinute") as i128,
        burst: n("/rateLimiting/burstLimit") as i128,
        interval_days: n("/authentication/tokenRotation/intervalDays") as i64,
        notify_days: n("/authentication/tokenRotation/notifyBeforeDays") as i64,
        after: (n("/monitoring/healthCheckInterval") * 10_000.0) as Millis,
    }
}

pub(super) fn reference(dir: &Path, lines: &[Line]) -> Fired {
    let seed = seed(dir);
    let mut fired = Fired::new();
    let mut last: HashMap<(&str, Key), Millis> = HashMap::new();
    let mut hit =
        |fired: &mut Fired, rule: &'static str, k: Key, l: &Line, realert: Option<Millis>| {
            let t = l.event.ts;
            if let Some(prev) = last.get(&(rule, k.clone())) {
                match realert {
                    None => return,
                    Some(r) if t < prev + r => return,
                    Some(_) => {}
                }
            }
            last.insert((rule, k.clone()), t);
            fired.insert((rule.to_string(), k, t, FILES[l.file].0.to_string(), l.line));
        };
    // Bucket level in tokens × 60 000 (a token refills in 60 000 / r ms, so
    // r units a millisecond), and when it was last filled up to.
    let mut buckets: HashMap<String, (i128, Millis)> = HashMap::new();
    let mut first_seen: HashMap<String, Millis> = HashMap::new();
    // Silences: per key, its calls since its last silence fired, and whether
    // its latest call has been judged.
    let mut quiet: BTreeMap<Key, (Vec<&Line>, bool)> = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        let e = &l.event;
        let t = e.ts;
        for (k, (calls, judged)) in quiet.iter_mut() {
            let Some(c) = calls.last().copied() else {
                continue;
            };
            if *judged || t <= c.event.ts + seed.after {
                continue;
            }
            *judged = true;
            let n = calls
                .iter()
                .filter(|o| o.event.ts > c.event.ts - 3600 * S)
                .count();
            let (rule, min) = if k.contains_key("log") {
                ("audit_silence", 60)
            } else {
                ("server_silence", 30)
            };
            if n >= min {
                let f = FILES[c.file].0.to_string();
                fired.insert((
                    rule.to_string(),
                    k.clone(),
                    c.event.ts + seed.after,
                    f,
                    c.line,
                ));
                calls.clear();
            }
        }
        if e.kind != Some(Kind::ToolCall) {
            continue;
        }
        let user = e.user_id.as_deref();
        let (level, at) = buckets
            .entry(user.unwrap_or("unknown").to_string())
            .or_insert((seed.burst * 60_000, t));
        *level = (*level + i128::from(t - *at) * seed.rate).min(seed.burst * 60_000);
        *at = t;
        if *level >= 60_000 {
            *level -= 60_000;
        } else {
            hit(
                &mut fired,
                "rate_limit_exceeded",
                key(&[("user_id", user)]),
                l,
                Some(600 * S),
            );
        }
        if let Some(token) = e.token_id.as_deref() {
            let k = key(&[("token_id", Some(token))]);
            let agents: BTreeSet<&str> = lines[..=i]
                .iter()
                .filter(|o| o.event.token_id.as_deref() == Some(token) && o.event.ts > t - 3600 * S)
                .filter_map(|o| o.event.agent_id.as_deref())
                .collect();
            if e.agent_id.is_some() && agents.len() > 1 {
                hit(&mut fired, "token_shared", k.clone(), l, Some(3600 * S));
            }
            let first = *first_seen.entry(token.to_string()).or_insert(t);
            if t - first > (seed.interval_days - seed.notify_days) * DAY {
                hit(&mut fired, "token_rotation_due", k.clone(), l, None);
            }
            if t - first > seed.interval_days * DAY {
                hit(&mut fired, "token_rotation_overdue", k, l, Some(DAY));
            }
        }
        let server = key(&[("server_name", e.server_name.as_deref())]);
        for k in [server, key(&[("log", Some("tool-usage.log"))])] {
            let q = quiet.entry(k).or_default();
            q.0.push(l);
            q.1 = false;
        }
    }
    fired
}
