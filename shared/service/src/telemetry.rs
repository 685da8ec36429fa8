//! Tracing subscriber setup: text or JSON lines on stderr, filtered by `RUST_LOG` or a default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Deserialize, Serialize, Clone, Copy, Default, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!(
                "unknown log format {s:?}, expected \"text\" or \"json\""
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// Installs the global tracing subscriber writing to stderr.
///
/// `RUST_LOG`, when set and non-empty, replaces `filter` (e.g. `"info,acctmon=debug"`); an
/// invalid filter falls back to `info` with a warning. Later calls are no-ops.
pub fn init_tracing(format: LogFormat, filter: &str) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let directives = from_env.as_deref().unwrap_or(filter);
    let (env_filter, invalid) = match EnvFilter::try_new(directives) {
        Ok(env_filter) => (env_filter, None),
        Err(error) => (EnvFilter::new("info"), Some(error)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let (Ok(()), Some(error)) = (installed, invalid) {
        tracing::warn!(%error, directives, "invalid log filter, using \"info\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parses_and_round_trips() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("xml".parse::<LogFormat>().is_err());
        assert_eq!(serde_json::to_string(&LogFormat::Json).unwrap(), "\"json\"");
        assert_eq!(
            LogFormat::Json.to_string().parse::<LogFormat>(),
            Ok(LogFormat::Json)
        );
    }

    #[test]
    fn init_twice_is_a_no_op() {
        init_tracing(LogFormat::Text, "not a [valid filter");
        init_tracing(LogFormat::Json, "debug");
        tracing::info!("still logging");
    }
}
