//! The service log: one line per event on standard error, as text or as
//! JSON objects (one per line, for log collectors), filtered by level.
//!
//! Events come from the library (`uefi_vars::refusal`: a refused guest
//! SetVariable; `uefi_vars::host_error`: a store write that failed, ...) and
//! from the server itself (start-up, clients, shutdown). Every line carries
//! the `serve` span (process id and store path), and events during a
//! request also the `client` span (connection id).

use tracing_subscriber::EnvFilter;

/// `--log-format` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines: time, level, spans, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`,
    /// `span`, `spans`).
    Json,
}

/// Why the log could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The level filter (`--log-level` or `RUST_LOG`) does not parse.
    #[error("log level filter {filter:?}: {source}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// What the parser said.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was installed already.
    #[error("cannot install the log subscriber: {0}")]
    Install(String),
}

/// The level filter when neither `--log-level` nor `RUST_LOG` is given:
/// every refusal, host error and server line.
pub const DEFAULT_FILTER: &str = "info";

/// Installs the process's log subscriber. `level` (`--log-level`) wins over
/// `rust_log` (the `RUST_LOG` environment variable, read by the caller),
/// which wins over [`DEFAULT_FILTER`]; both take `tracing` filter
/// directives (`warn`, `info,uefi_vars::refusal=off`, ...).
pub fn init(
    format: LogFormat,
    level: Option<&str>,
    rust_log: Option<&str>,
) -> Result<(), LogError> {
    let filter = level
        .or(rust_log.filter(|v| !v.trim().is_empty()))
        .unwrap_or(DEFAULT_FILTER);
    let env_filter = EnvFilter::builder()
        .parse(filter)
        .map_err(|source| LogError::Filter {
            filter: filter.to_owned(),
            source,
        })?;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(env_filter);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| LogError::Install(e.to_string()))
}
