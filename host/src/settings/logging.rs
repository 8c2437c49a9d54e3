//! Upstream's logging flags (controller-runtime's `--zap-*`) read as what they ask of our
//! `tracing` logs: a level, an encoder, a time format. The stack-trace level has no
//! counterpart (tracing events carry no stack); it is accepted, checked and reported.

use std::fmt;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// Targets whose verbosity the zap levels set: this binary's own code. Dependencies (kube,
/// hyper, rustls) stay at `info`, as upstream's zap level does not reach client-go's logs.
const OWN_TARGETS: [&str; 2] = ["lws_host", "lws"];

/// A log level: one of zap's (`debug`, `info`, `error`, `panic`, or a verbosity > 0 such as
/// upstream's `2`), or else a `tracing` filter (`warn`, `info,kube=debug`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Error,
    /// Only panics are logged: nothing here, as this program's errors are not panics.
    Panic,
    /// zap's custom levels, `V(n)`: 1 is debug, 2 and more are ever more verbose.
    Verbosity(u32),
    Filter(String),
}

impl LogLevel {
    /// Reads a level as controller-runtime reads `--zap-log-level` (case-insensitive words, a
    /// positive integer); anything else must be a valid `tracing` filter.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "debug" => return Ok(LogLevel::Debug),
            "info" => return Ok(LogLevel::Info),
            "error" => return Ok(LogLevel::Error),
            "panic" => return Ok(LogLevel::Panic),
            _ => {}
        }
        if let Ok(number) = text.parse::<i64>() {
            return match u32::try_from(number) {
                Ok(level) if level > 0 => Ok(LogLevel::Verbosity(level)),
                _ => Err(format!("invalid log level {text:?}")),
            };
        }
        tracing_subscriber::EnvFilter::try_new(text)
            .map(|_| LogLevel::Filter(text.to_string()))
            .map_err(|e| {
                format!(
                    "invalid log level {text:?}: not one of debug, info, error, panic or an \
                     integer > 0, and not a tracing filter ({e})"
                )
            })
    }

    /// The `tracing` filter directives this level stands for.
    pub fn filter(&self) -> String {
        let own = |level: &str| {
            let mut filter = String::from("info");
            for target in OWN_TARGETS {
                filter.push_str(&format!(",{target}={level}"));
            }
            filter
        };
        match self {
            LogLevel::Debug | LogLevel::Verbosity(1) => own("debug"),
            LogLevel::Verbosity(_) => own("trace"),
            LogLevel::Info => "info".to_string(),
            LogLevel::Error => "error".to_string(),
            LogLevel::Panic => "off".to_string(),
            LogLevel::Filter(filter) => filter.clone(),
        }
    }
}

/// How each line is written: zap's `console` is our text format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `json` or `console` (zap's names, any case), or `text` (ours).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "console" | "text" => Ok(LogFormat::Text),
            _ => Err(format!("invalid encoder value {text:?} (json or console)")),
        }
    }
}

/// zap's stack-trace levels; accepted for compatibility, with no effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StacktraceLevel {
    Info,
    Error,
    Panic,
}

impl StacktraceLevel {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "info" => Ok(StacktraceLevel::Info),
            "error" => Ok(StacktraceLevel::Error),
            "panic" => Ok(StacktraceLevel::Panic),
            _ => Err(format!(
                "invalid stacktrace level {text:?} (info, error or panic)"
            )),
        }
    }
}

/// zap's time encodings. Times are UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeEncoding {
    /// Seconds since the epoch, with a fraction.
    Epoch,
    /// Milliseconds since the epoch, with a fraction.
    Millis,
    /// Nanoseconds since the epoch.
    Nanos,
    /// `2006-01-02T15:04:05.000Z`.
    Iso8601,
    /// `2006-01-02T15:04:05Z`.
    Rfc3339,
    /// `2006-01-02T15:04:05.999999999Z`, trailing zeros dropped.
    Rfc3339Nano,
}

impl TimeEncoding {
    /// The names controller-runtime accepts, any case (its help says `nano`, its parser takes
    /// `nanos`; so do we).
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "epoch" => TimeEncoding::Epoch,
            "millis" => TimeEncoding::Millis,
            "nanos" => TimeEncoding::Nanos,
            "iso8601" => TimeEncoding::Iso8601,
            "rfc3339" => TimeEncoding::Rfc3339,
            "rfc3339nano" => TimeEncoding::Rfc3339Nano,
            _ => {
                return Err(format!(
                    "invalid time-encoding value {text:?} (epoch, millis, nanos, iso8601, \
                     rfc3339 or rfc3339nano)"
                ))
            }
        })
    }

    /// `unix_nanos` (nanoseconds since 1970-01-01T00:00:00Z) in this encoding.
    pub fn format(self, unix_nanos: i128) -> String {
        let seconds = unix_nanos.div_euclid(1_000_000_000);
        let nanos = unix_nanos.rem_euclid(1_000_000_000);
        match self {
            TimeEncoding::Epoch => format!("{seconds}.{:06}", nanos / 1_000),
            TimeEncoding::Millis => format!(
                "{}.{:06}",
                unix_nanos.div_euclid(1_000_000),
                unix_nanos.rem_euclid(1_000_000)
            ),
            TimeEncoding::Nanos => unix_nanos.to_string(),
            TimeEncoding::Iso8601 => format!("{}.{:03}Z", civil(seconds), nanos / 1_000_000),
            TimeEncoding::Rfc3339 => format!("{}Z", civil(seconds)),
            TimeEncoding::Rfc3339Nano => {
                let fraction = format!("{nanos:09}");
                let fraction = fraction.trim_end_matches('0');
                match fraction {
                    "" => format!("{}Z", civil(seconds)),
                    _ => format!("{}.{fraction}Z", civil(seconds)),
                }
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time in seconds (UTC).
fn civil(seconds: i128) -> String {
    let fallback = time::OffsetDateTime::UNIX_EPOCH;
    let at = i64::try_from(seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(fallback);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

impl FormatTime for TimeEncoding {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        w.write_str(&self.format(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zap_levels() {
        assert_eq!(LogLevel::parse("debug"), Ok(LogLevel::Debug));
        assert_eq!(LogLevel::parse("INFO"), Ok(LogLevel::Info));
        assert_eq!(LogLevel::parse("Error"), Ok(LogLevel::Error));
        assert_eq!(LogLevel::parse("panic"), Ok(LogLevel::Panic));
        assert_eq!(LogLevel::parse("2"), Ok(LogLevel::Verbosity(2)));
        assert_eq!(LogLevel::parse("+3"), Ok(LogLevel::Verbosity(3)));
        for bad in ["0", "-1", "99999999999"] {
            assert_eq!(
                LogLevel::parse(bad),
                Err(format!("invalid log level {bad:?}")),
                "{bad}"
            );
        }
        assert!(LogLevel::parse("lws_host=nope=x").is_err());
    }

    #[test]
    fn levels_as_filters() {
        assert_eq!(LogLevel::Info.filter(), "info");
        assert_eq!(LogLevel::Error.filter(), "error");
        assert_eq!(LogLevel::Panic.filter(), "off");
        assert_eq!(LogLevel::Debug.filter(), "info,lws_host=debug,lws=debug");
        assert_eq!(LogLevel::Verbosity(1).filter(), LogLevel::Debug.filter());
        assert_eq!(
            LogLevel::Verbosity(2).filter(),
            "info,lws_host=trace,lws=trace"
        );
        assert_eq!(
            LogLevel::parse("warn,kube=debug").unwrap().filter(),
            "warn,kube=debug"
        );
        for level in [LogLevel::Debug, LogLevel::Verbosity(5), LogLevel::Panic] {
            assert!(tracing_subscriber::EnvFilter::try_new(level.filter()).is_ok());
        }
    }

    #[test]
    fn encoders_and_stacktrace_levels() {
        assert_eq!(LogFormat::parse("json"), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse("Console"), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse("text"), Ok(LogFormat::Text));
        assert!(LogFormat::parse("logfmt").is_err());
        assert_eq!(StacktraceLevel::parse("ERROR"), Ok(StacktraceLevel::Error));
        assert!(StacktraceLevel::parse("debug").is_err());
        assert!(StacktraceLevel::parse("warn").is_err());
    }

    #[test]
    fn time_encodings() {
        // 2009-02-13T23:31:30.012345678Z
        let at: i128 = 1_234_567_890_012_345_678;
        let cases = [
            ("epoch", "1234567890.012345"),
            ("millis", "1234567890012.345678"),
            ("nanos", "1234567890012345678"),
            ("iso8601", "2009-02-13T23:31:30.012Z"),
            ("rfc3339", "2009-02-13T23:31:30Z"),
            ("RFC3339Nano", "2009-02-13T23:31:30.012345678Z"),
        ];
        for (name, want) in cases {
            assert_eq!(
                TimeEncoding::parse(name).unwrap().format(at),
                want,
                "{name}"
            );
        }
        assert_eq!(
            TimeEncoding::Rfc3339Nano.format(1_234_567_890_100_000_000),
            "2009-02-13T23:31:30.1Z"
        );
        assert_eq!(
            TimeEncoding::Rfc3339Nano.format(1_234_567_890_000_000_000),
            "2009-02-13T23:31:30Z"
        );
        assert!(TimeEncoding::parse("nano").is_err());
    }
}
