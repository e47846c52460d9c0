//! How lb writes its logs: `--log-format text|json`.
//!
//! A command-line setting only: the subscriber is set up before the config file is read (so that
//! the file's own errors are logged in the chosen format), and it cannot change afterwards.
//! Pure: parsing takes the flag's text.

use std::fmt;
use std::str::FromStr;

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event: time, level, message, `key=value` fields.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields` with `message` and
    /// the event's fields), for journald, Loki or ELK.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?}: expected \"text\" or \"json\""
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_table() {
        let table = [
            ("text", Ok(LogFormat::Text)),
            ("json", Ok(LogFormat::Json)),
            (
                "JSON",
                Err("unknown log format \"JSON\": expected \"text\" or \"json\""),
            ),
            (
                "",
                Err("unknown log format \"\": expected \"text\" or \"json\""),
            ),
        ];
        for (text, want) in table {
            assert_eq!(
                text.parse::<LogFormat>(),
                want.map_err(str::to_string),
                "{text:?}"
            );
        }
        for format in [LogFormat::Text, LogFormat::Json] {
            assert_eq!(format.to_string().parse::<LogFormat>(), Ok(format));
        }
    }
}
