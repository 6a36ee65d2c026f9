//! Configuration: four optional sources (SPEC §2) → one validated [`Config`].
//!
//! Raw files are parsed into position-keeping trees, checked field by field,
//! and every problem is collected as a [`ConfigError`] carrying
//! `file:line:col`, the field and the allowed values, so `check` can report
//! them all at once.

mod actions;
mod channels;
mod rule_name;
mod rules;
mod security;
mod seeded;
mod settings;
mod tree;
mod types;
#[cfg(test)]
use rules::BUILTIN_RULES;
pub(crate) use rules::TOOL_CLASSES;
pub(crate) use settings::DEFAULT_DIR;
pub use types::*;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::event::Millis;
#[cfg(test)]
use crate::policy::Policy;
use tree::{Ctx, SyntaxError};

/// Where the configuration comes from. `None` means "the default place if
/// it exists" (SPEC §7), resolved by [`Sources::resolve`].
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `security-config.json`.
    pub config: Option<PathBuf>,
    /// Directory of `rules/<rule>.toml`.
    pub rules: Option<PathBuf>,
    /// `mcpwatch.toml`.
    pub settings: Option<PathBuf>,
    /// The audit log directory (its `config.json` holds retention); when
    /// `None`, the settings' `input.dir` (default `.elevenlabs/audit`).
    pub dir: Option<PathBuf>,
}

/// The default file names, relative to the working directory (SPEC §7).
pub(crate) const DEFAULT_CONFIG: &str = "security-config.json";
pub(crate) const DEFAULT_RULES: &str = "rules";
pub(crate) const DEFAULT_SETTINGS: &str = "mcpwatch.toml";

impl Sources {
    /// Fills each absent source with its default place when that exists
    /// in the working directory; an absent `dir` stays `None` (it comes
    /// from the settings' `input.dir`).
    pub(crate) fn resolve(&self) -> Sources {
        fn default_if_exists(given: &Option<PathBuf>, name: &str) -> Option<PathBuf> {
            given
                .clone()
                .or_else(|| Path::new(name).exists().then(|| PathBuf::from(name)))
        }
        Sources {
            config: default_if_exists(&self.config, DEFAULT_CONFIG),
            rules: default_if_exists(&self.rules, DEFAULT_RULES),
            settings: default_if_exists(&self.settings, DEFAULT_SETTINGS),
            dir: self.dir.clone(),
        }
    }
}

/// One configuration problem, displayed as `file:line:col: field: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {field}: {message}")]
pub(crate) struct ConfigError {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) col: usize,
    pub(crate) field: String,
    pub(crate) message: String,
}

/// Every problem found, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub(crate) Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// No files at all: built-in rules, default settings, no policy.
    #[cfg(test)]
    pub(crate) fn defaults() -> Config {
        let mut cfg = Config::unresolved();
        seeded::resolve(&mut cfg, &[false; RuleName::COUNT]);
        cfg
    }

    /// [`Config::defaults`] before the seed-driven rules are resolved.
    fn unresolved() -> Config {
        Config {
            policy: None,
            security: default_security(),
            retention: Retention::default(),
            rules: rules::builtin(),
            settings: Settings::default(),
            warnings: Vec::new(),
            sources: LoadedSources {
                dir: PathBuf::from(DEFAULT_DIR),
                ..LoadedSources::default()
            },
        }
    }

    /// Whether a rule runs: enabled, and for the rules that judge calls by
    /// their policy class (`disabled_tool`, `approval_bypass`) a policy is
    /// known (SPEC §2: with no `security-config.json` they stay off).
    pub fn rule_active(&self, name: RuleName) -> bool {
        self.rules.get(name).enabled && (self.policy.is_some() || !name.needs_policy())
    }

    /// The audit log directory: `--dir`, else `input.dir` (for tests; the
    /// commands use [`Config::dirs`]).
    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.sources.dir
    }

    /// The state directory: `state_dir`, else `<dir>/../mcpwatch` (SPEC §2).
    /// Commands with `--state-dir` override it themselves; they use
    /// [`Config::dirs`], this is for tests.
    #[cfg(test)]
    pub(crate) fn state_dir(&self) -> PathBuf {
        match &self.settings.state_dir {
            Some(d) => d.clone(),
            None => default_state_dir(self.dir()),
        }
    }

    /// The log and state directories a command works on: its `--dir` and
    /// `--state-dir` when given, else the settings, else the defaults.
    pub fn dirs(&self, dir: Option<&Path>, state_dir: Option<&Path>) -> (PathBuf, PathBuf) {
        let dir = dir.map_or_else(|| self.settings.input.dir.clone(), Path::to_path_buf);
        let state = match (state_dir, &self.settings.state_dir) {
            (Some(s), _) => s.to_path_buf(),
            (None, Some(s)) => s.clone(),
            (None, None) => default_state_dir(&dir),
        };
        (dir, state)
    }
}

/// `<dir>/../mcpwatch` (SPEC §2), written without `..` where the path allows.
pub(crate) fn default_state_dir(dir: &Path) -> PathBuf {
    match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(_)) => parent.join("mcpwatch"),
        _ => dir.join("..").join("mcpwatch"),
    }
}

/// Parses the text of a `security-config.json` into its policy, for tests
/// that hold the text rather than a file. `file` names it in errors.
#[cfg(test)]
pub(crate) fn policy_from_json(
    text: &str,
    file: &str,
) -> Result<(Policy, SecurityExtras), ConfigErrors> {
    let root = tree::parse_json(text).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.to_string(),
            line: e.pos.line,
            col: e.pos.col,
            field: "syntax".into(),
            message: lowercase_first(&e.message),
        }])
    })?;
    let mut cx = Ctx::new(file, "an object");
    let sec = security::check_security(&root, &mut cx);
    if cx.errors.is_empty() {
        Ok(((*sec.policy).clone(), sec.extras))
    } else {
        cx.errors.sort_by_key(|e| (e.line, e.col));
        Err(ConfigErrors(cx.errors))
    }
}

/// The configuration a `security-config.json` of this text gives with no
/// other file (for tests of the rules it switches on).
#[cfg(test)]
pub(crate) fn config_from_seed(text: &str) -> Result<Config, ConfigErrors> {
    let (policy, extras) = policy_from_json(text, DEFAULT_CONFIG)?;
    let mut cfg = Config::unresolved();
    cfg.policy = Some(std::sync::Arc::new(policy));
    cfg.security = extras;
    seeded::resolve(&mut cfg, &[false; RuleName::COUNT]);
    Ok(cfg)
}

fn default_security() -> SecurityExtras {
    SecurityExtras {
        timeout_is_denial: true,
        anomaly_detection: true,
        audit_logging: true,
        ..SecurityExtras::default()
    }
}

/// Per-file results: a syntax error stops everything (reported alone);
/// semantic errors accumulate.
struct Collector {
    syntax: Option<ConfigError>,
    errors: Vec<ConfigError>,
}

impl Collector {
    fn read(&mut self, path: &Path) -> Option<String> {
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                // Editors on Windows write a BOM; it is not part of the JSON.
                Ok(s) => Some(match s.strip_prefix('\u{feff}') {
                    Some(rest) => rest.to_string(),
                    None => s,
                }),
                Err(e) => {
                    self.errors.push(file_error(
                        path,
                        format!(
                            "not UTF-8 (invalid byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ),
                    ));
                    None
                }
            },
            Err(e) => {
                self.errors
                    .push(file_error(path, format!("cannot read: {e}")));
                None
            }
        }
    }

    fn syntax(&mut self, path: &Path, e: SyntaxError) {
        if self.syntax.is_none() {
            self.syntax = Some(ConfigError {
                file: path.display().to_string(),
                line: e.pos.line,
                col: e.pos.col,
                field: "syntax".into(),
                message: lowercase_first(&e.message),
            });
        }
    }

    fn take(&mut self, mut cx: Ctx) {
        cx.errors.sort_by_key(|e| (e.line, e.col));
        self.errors.append(&mut cx.errors);
    }
}

/// Parsers start messages with a capital; ours are lowercase after `: `.
fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn file_error(path: &Path, message: String) -> ConfigError {
    ConfigError {
        file: path.display().to_string(),
        line: 1,
        col: 1,
        field: "file".into(),
        message,
    }
}

/// Loads and validates every source (SPEC §2). A syntax error is returned
/// alone; otherwise every semantic error of every file, each file's errors
/// in position order, files in the order security-config.json, the audit
/// `config.json`, rules, `mcpwatch.toml`.
pub fn load(sources: &Sources) -> Result<Config, ConfigErrors> {
    let src = sources.resolve();
    let mut col = Collector {
        syntax: None,
        errors: Vec::new(),
    };
    let mut cfg = Config::unresolved();
    let mut settings_errors = Vec::new();

    // Settings first: they name the log directory.
    if let Some(path) = &src.settings {
        cfg.sources.settings = Some(path.clone());
        if let Some(text) = col.read(path) {
            match tree::parse_toml(&text) {
                Ok(root) => {
                    let mut cx = Ctx::new(path.display().to_string(), "a table");
                    cfg.settings = settings::check_settings(&root, &mut cx);
                    cx.errors.sort_by_key(|e| (e.line, e.col));
                    settings_errors = cx.errors;
                }
                Err(e) => col.syntax(path, e),
            }
        }
    }
    cfg.sources.dir = src
        .dir
        .clone()
        .unwrap_or_else(|| cfg.settings.input.dir.clone());

    let mut retention_sec = security::RetentionPatch::default();
    if let Some(path) = &src.config {
        cfg.sources.config = Some(path.clone());
        if let Some(text) = col.read(path) {
            match tree::parse_json(&text) {
                Ok(root) => {
                    let mut cx = Ctx::new(path.display().to_string(), "an object");
                    let sec = security::check_security(&root, &mut cx);
                    cfg.policy = Some(sec.policy);
                    cfg.security = sec.extras;
                    cfg.warnings.extend(sec.warnings);
                    retention_sec = sec.retention;
                    col.take(cx);
                }
                Err(e) => col.syntax(path, e),
            }
        }
    }

    let audit_path = cfg.sources.dir.join("config.json");
    let mut retention_audit = security::RetentionPatch::default();
    if audit_path.is_file() {
        cfg.sources.audit_config = Some(audit_path.clone());
        if let Some(text) = col.read(&audit_path) {
            match tree::parse_json(&text) {
                Ok(root) => {
                    let mut cx = Ctx::new(audit_path.display().to_string(), "an object");
                    retention_audit = security::check_audit(&root, &mut cx);
                    col.take(cx);
                }
                Err(e) => col.syntax(&audit_path, e),
            }
        }
    }
    // Where both set retention, the audit directory's config.json wins.
    retention_sec.apply(&mut cfg.retention);
    retention_audit.apply(&mut cfg.retention);

    let mut explicit = [false; RuleName::COUNT];
    if let Some(dir) = &src.rules {
        cfg.sources.rules_dir = Some(dir.clone());
        match rule_files(dir) {
            Ok(files) => {
                for path in files {
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                    let Some(name) = RuleName::parse(stem) else {
                        let names: Vec<&str> = RuleName::ALL.iter().map(|r| r.as_str()).collect();
                        col.errors.push(file_error(
                            &path,
                            format!(
                                "unknown rule {stem:?}; expected a file named after a rule: {}",
                                tree::one_of(&names)
                            ),
                        ));
                        continue;
                    };
                    let Some(text) = col.read(&path) else {
                        continue;
                    };
                    match tree::parse_toml(&text) {
                        Ok(root) => {
                            let mut cx = Ctx::new(path.display().to_string(), "a table");
                            explicit[name as usize] =
                                rules::apply(&root, cfg.rules.get_mut(name), &mut cx);
                            if name == RuleName::TokenRotationDue {
                                let seed = cfg.security.token_rotation.as_ref();
                                rules::check_rotation(cfg.rules.get(name), seed, &mut cx);
                            }
                            cfg.sources.rule_files.push(name);
                            col.take(cx);
                        }
                        Err(e) => col.syntax(&path, e),
                    }
                }
            }
            Err(e) => col.errors.push(file_error(
                dir,
                format!("cannot read the rules directory: {e}"),
            )),
        }
    }
    seeded::resolve(&mut cfg, &explicit);
    if !cfg.security.anomaly_detection {
        for r in RuleName::ALL.into_iter().filter(|r| r.anomaly()) {
            if !explicit[r as usize] {
                cfg.rules.get_mut(r).enabled = false;
            }
        }
    }

    col.errors.append(&mut settings_errors);
    if let Some(e) = col.syntax {
        return Err(ConfigErrors(vec![e]));
    }
    if !col.errors.is_empty() {
        return Err(ConfigErrors(col.errors));
    }

    if cfg.policy.is_none() {
        cfg.warnings.push(format!(
            "no {DEFAULT_CONFIG}: the tool policy is unknown, so disabled_tool and approval_bypass stay off"
        ));
    }
    // Email needs allow_plaintext for the same; a URL is accepted (loopback
    // proxies and test receivers are legitimate) but never without a word.
    for w in &cfg.settings.webhook {
        if let Some(shown) = security::plaintext_remote_url(&w.url) {
            cfg.warnings.push(format!(
                "webhook {:?}: {shown} sends alerts and signatures unencrypted to a non-loopback host; use https://",
                w.name
            ));
        }
    }
    if let Some(shown) = cfg
        .security
        .escalation_webhook
        .as_deref()
        .and_then(security::plaintext_remote_url)
    {
        cfg.warnings.push(format!(
            "incidentResponse.escalationWebhook: {shown} sends critical alerts unencrypted to a non-loopback host; use https://"
        ));
    }
    if cfg.security.auto_disable && cfg.settings.actions.is_empty() {
        cfg.warnings.push(
            "incidentResponse.autoDisableOnSuspicious is true but mcpwatch.toml has no [[actions]] to run".into(),
        );
    }
    // A secret's variable unset now means a failed delivery later: say so
    // at load (only the name, never a value).
    let unset = |var: &Option<String>| {
        var.as_deref()
            .filter(|v| std::env::var_os(v).is_none_or(|x| x.is_empty()))
            .map(str::to_string)
    };
    for c in &cfg.settings.email {
        if let Some(v) = unset(&c.password_env) {
            cfg.warnings.push(format!(
                "email {:?}: password_env {v} is not set in this environment; the SMTP login will fail",
                c.name
            ));
        }
    }
    for w in &cfg.settings.webhook {
        if let Some(v) = unset(&w.secret_env) {
            cfg.warnings.push(format!(
                "webhook {:?}: secret_env {v} is not set in this environment; requests would go unsigned, so they are not sent",
                w.name
            ));
        }
        let named = w
            .headers_env
            .iter()
            .map(|(h, v)| (format!("headers_env.{h}"), v))
            .chain(
                w.routing_key_env
                    .iter()
                    .map(|v| ("routing_key_env".to_string(), v)),
            )
            .chain((w.basic_auth.iter().map(|(_, v)| v)).map(|v| ("password_env".to_string(), v)))
            .chain(
                w.bearer_token_env
                    .iter()
                    .map(|v| ("bearer_token_env".to_string(), v)),
            );
        for (what, var) in named {
            if let Some(v) = unset(&Some(var.clone())) {
                cfg.warnings.push(format!(
                    "webhook {:?}: {what} names {v}, which is not set in this environment; nothing is sent until it is",
                    w.name
                ));
            }
        }
    }
    if !cfg.security.notification_emails.is_empty() && cfg.settings.email.is_empty() {
        cfg.warnings.push(
            "incidentResponse.notificationEmails is set but mcpwatch.toml has no [[channels.email]] to send critical alerts through".into(),
        );
    }
    Ok(cfg)
}

/// The `*.toml` files of a rules directory, sorted by name so errors come
/// out in a stable order.
fn rule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "toml") {
            v.push(p);
        }
    }
    v.sort();
    Ok(v)
}

/// Parses a duration of SPEC §2: `"500ms"`, `"60s"`, `"10m"`, `"1h"`,
/// `"90d"`, and sums of them such as `"1h30m"` or `"1h 30m"`. Only these
/// five units: `M` (months in humantime's reading) or `w` are refused
/// rather than guessed at; humantime does the arithmetic.
pub fn parse_duration(s: &str) -> Result<Millis, String> {
    const EXPECTED: &str = "expected e.g. 500ms, 60s, 10m, 1h30m, 90d";
    let s = s.trim();
    let mut unit = String::new();
    let mut saw_number = false;
    let check = |unit: &mut String| -> Result<(), String> {
        if !unit.is_empty() && !matches!(unit.as_str(), "ms" | "s" | "m" | "h" | "d") {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}; expected ms, s, m, h or d"
            ));
        }
        unit.clear();
        Ok(())
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            check(&mut unit)?;
            saw_number = true;
        } else if c.is_ascii_alphabetic() {
            if !saw_number {
                return Err(format!("invalid duration {s:?}; {EXPECTED}"));
            }
            unit.push(c);
        } else if c != ' ' {
            return Err(format!("invalid duration {s:?}; {EXPECTED}"));
        }
    }
    check(&mut unit)?;
    if s.ends_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("missing unit in {s:?}; expected ms, s, m, h or d"));
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?}: {e}; {EXPECTED}"))?;
    Millis::try_from(d.as_millis()).map_err(|_| format!("duration {s:?} is too large"))
}

/// `"off"` → `None`; otherwise `host:port` (`localhost` means 127.0.0.1;
/// no name resolution at load time).
pub fn parse_addr(s: &str) -> Result<Option<SocketAddr>, String> {
    if s == "off" {
        return Ok(None);
    }
    let resolved = match s.rsplit_once(':') {
        Some(("localhost", port)) => format!("127.0.0.1:{port}"),
        _ => s.to_string(),
    };
    resolved.parse::<SocketAddr>().map(Some).map_err(|_| {
        format!(
            "invalid address {s:?}; expected \"off\" or ip:port such as \"127.0.0.1:9464\" or \"[::1]:9464\" (port 0 picks one)"
        )
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_beyond;
#[cfg(test)]
mod tests_values;
