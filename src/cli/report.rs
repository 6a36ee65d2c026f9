//! `mcpwatch report` (SPEC §7): flags and configuration → [`ReportOptions`],
//! then [`mcpwatch::report::build`] and a renderer. The wall clock is read here
//! only: `MCPWATCH_NOW` (RFC 3339) overrides it, so the period selection can
//! be tested.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;

use super::{CommonArgs, EXIT_OK, EXIT_USAGE};
use mcpwatch::report::render::{Format, render};
use mcpwatch::report::{ReportOptions, ToolClassifier};

#[derive(Args, Debug)]
pub(crate) struct ReportArgs {
    /// The audit log directory [default: input.dir of mcpwatch.toml, .elevenlabs/audit]
    #[arg(long, value_name = "D")]
    pub(crate) dir: Option<PathBuf>,
    /// The last complete period (UTC): yesterday, the last ISO week, the last calendar month
    #[arg(long, value_enum, conflicts_with_all = ["since", "until"])]
    pub(crate) period: Option<Period>,
    /// Only events at or after T ("24h" back from now, or RFC 3339)
    #[arg(long, value_name = "T")]
    pub(crate) since: Option<String>,
    /// Only events before T ("24h" back from now, or RFC 3339)
    #[arg(long, value_name = "T")]
    pub(crate) until: Option<String>,
    /// Only this user
    #[arg(long, value_name = "U")]
    pub(crate) user: Option<String>,
    /// Only this MCP server
    #[arg(long, value_name = "S")]
    pub(crate) server: Option<String>,
    /// Only this token id (audit a compromised token's activity)
    #[arg(long, value_name = "T")]
    pub(crate) token: Option<String>,
    /// Only this request id
    #[arg(long, value_name = "R")]
    pub(crate) request: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}

/// Inputs larger than this get a progress bar when stderr is a terminal.
const PROGRESS_MIN_BYTES: u64 = 100 * 1024 * 1024;

/// Environment variable fixing "now" (RFC 3339), for tests and for
/// re-running a report exactly as it was made.
pub(crate) const NOW_ENV: &str = "MCPWATCH_NOW";

pub(crate) fn run(common: &CommonArgs, args: ReportArgs) -> anyhow::Result<u8> {
    super::init_logging(false);
    let wall = chrono::Utc::now().timestamp_millis();
    let now = match std::env::var(NOW_ENV) {
        Ok(s) => match chrono::DateTime::parse_from_rfc3339(&s) {
            Ok(d) => d.timestamp_millis(),
            Err(_) => {
                eprintln!("mcpwatch report: {NOW_ENV}={s:?} is not an RFC 3339 time");
                return Ok(EXIT_USAGE);
            }
        },
        Err(_) => wall,
    };
    let timeline = matches!(
        args.format,
        ReportFormat::Timeline | ReportFormat::TimelineJson
    );
    if let Err(msg) = check_subject(&args, timeline) {
        eprintln!("mcpwatch report: {msg}");
        return Ok(EXIT_USAGE);
    }
    let config = match super::load_config(common, args.dir.as_deref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let (range, period) = match args.period {
        Some(p) => {
            let p = match p {
                Period::Daily => mcpwatch::report::Period::Daily,
                Period::Weekly => mcpwatch::report::Period::Weekly,
                Period::Monthly => mcpwatch::report::Period::Monthly,
            };
            (p.range(now), Some(p))
        }
        None => match super::time_range(args.since.as_deref(), args.until.as_deref(), now) {
            Ok(r) => (r, None),
            Err(msg) => {
                eprintln!("mcpwatch report: {msg}");
                return Ok(EXIT_USAGE);
            }
        },
    };
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| config.settings.input.dir.clone());
    if !dir.is_dir() {
        eprintln!(
            "mcpwatch report: {}: no such directory (set --dir or input.dir)",
            dir.display()
        );
        return Ok(EXIT_USAGE);
    }
    let security_path = common.config.clone().or_else(|| {
        let p = PathBuf::from("security-config.json");
        p.exists().then_some(p)
    });
    let raw_security = config
        .policy
        .as_ref()
        .and(security_path)
        .and_then(|p| std::fs::read_to_string(p).ok());
    let policy = config.policy.as_deref().map(|p| p as &dyn ToolClassifier);

    let mut opts = ReportOptions::new(dir, range, now);
    opts.period = period;
    opts.user = args.user;
    opts.server = args.server;
    opts.token = args.token;
    opts.request = args.request;
    opts.timeline = timeline;
    // bad_ts is judged against the real clock, whatever "now" the report uses.
    opts.parser.now_ms = wall.max(now);
    opts.parser.max_line_bytes = config.settings.input.max_line_bytes;
    opts.policy = policy;
    opts.policy_info = mcpwatch::report::policy_info(
        config.policy.as_ref().map(|p| p.mode),
        raw_security.as_deref(),
    );
    opts.retention_days = config.retention.days;

    let total = mcpwatch::report::input_bytes(&opts.dir).unwrap_or(0);
    let counter = Arc::new(AtomicU64::new(0));
    let bar = (total >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} report [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let ticker = bar.as_ref().map(|b| {
        opts.progress = Some(counter.clone());
        let b = b.clone();
        let c = counter.clone();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        let h = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                b.set_position(c.load(Ordering::Relaxed));
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        (done, h)
    });
    let report = mcpwatch::report::build(&opts);
    if let Some((done, h)) = ticker {
        done.store(true, Ordering::Relaxed);
        let _ = h.join();
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report.map_err(|e| anyhow::anyhow!("{e}"))?;

    let format = match args.format {
        ReportFormat::Text => Format::Text,
        ReportFormat::Json => Format::Json,
        ReportFormat::Csv => Format::Csv,
        ReportFormat::Compliance => Format::Compliance,
        ReportFormat::Timeline => Format::Timeline,
        ReportFormat::TimelineJson => Format::TimelineJson,
        ReportFormat::Html => Format::Html,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let res = render(&mut out, &report, format).and_then(|_| out.flush());
    match res {
        Ok(()) => Ok(EXIT_OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
        Err(e) => Err(e.into()),
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Period {
    Daily,
    Weekly,
    Monthly,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportFormat {
    Text,
    Json,
    Csv,
    Compliance,
    /// Every event and alert of the subject in ts order, one line each
    Timeline,
    /// The timeline as one JSON object per line
    TimelineJson,
    /// One self-contained HTML page with charts (inline CSS and SVG)
    Html,
}

/// The subject flags: none empty (no log line's id is); a timeline needs
/// at least one.
fn check_subject(args: &ReportArgs, timeline: bool) -> Result<(), String> {
    let subjects = [
        ("user", &args.user),
        ("server", &args.server),
        ("token", &args.token),
        ("request", &args.request),
    ];
    for (flag, v) in subjects {
        if v.as_deref() == Some("") {
            return Err(format!("--{flag}: must not be empty"));
        }
    }
    if timeline && subjects.iter().all(|(_, v)| v.is_none()) {
        return Err(
            "--format timeline needs a subject: --user U, --server S, --token T or --request R"
                .to_string(),
        );
    }
    Ok(())
}
