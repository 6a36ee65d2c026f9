//! The daemon (`mcpwatch run`): wired in by the run issue.
