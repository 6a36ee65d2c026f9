//! `mcpwatch scan` (SPEC §7).

use std::path::PathBuf;

use clap::Args;

use super::CommonArgs;

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files, directories and .zst archives [default: .elevenlabs/audit/]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only events at or after T ("24h" back from now, or RFC 3339)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only events before T ("24h" back from now, or RFC 3339)
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ScanFormat::Ndjson)]
    pub format: ScanFormat,
    /// Exit 3 when an alert at or above this severity was found
    #[arg(long, value_name = "SEV", value_parser = ["low", "medium", "high", "critical"])]
    pub fail_on: Option<String>,
}

pub fn run(_common: &CommonArgs, _args: ScanArgs) -> anyhow::Result<u8> {
    super::not_yet("scan")
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanFormat {
    Ndjson,
    Json,
    Table,
}
