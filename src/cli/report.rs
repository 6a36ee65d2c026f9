//! `mcpwatch report` (SPEC §7).

use std::path::PathBuf;

use clap::Args;

use super::CommonArgs;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The audit log directory [default: .elevenlabs/audit]
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
    /// The last complete period (UTC)
    #[arg(long, value_enum)]
    pub period: Option<Period>,
    /// Only events at or after T ("24h" back from now, or RFC 3339)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only events before T ("24h" back from now, or RFC 3339)
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Only this user
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// Only this MCP server
    #[arg(long, value_name = "S")]
    pub server: Option<String>,
    /// Only this token id (audit a compromised token's activity)
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

pub fn run(_common: &CommonArgs, _args: ReportArgs) -> anyhow::Result<u8> {
    super::not_yet("report")
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Daily,
    Weekly,
    Monthly,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Json,
    Csv,
    Compliance,
}
