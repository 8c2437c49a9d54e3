//! Log lines in zap's console encoding, as upstream's manager writes them by default:
//! `time<TAB>LEVEL<TAB>logger<TAB>message<TAB>{"key": value, ...}`. Tools that read upstream's
//! logs (and upstream's e2e suite, which waits for
//! `controller-runtime.metrics<TAB>Serving metrics server`) read ours the same way.
//!
//! The logger is the event's `tracing` target, with `::` written as `.`
//! (`lws_host.controller.serve`); events that stand for one of upstream's lines use upstream's
//! logger name as their target.

use crate::settings::logging::TimeEncoding;
use serde_json::Value;
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct ZapConsole {
    /// controller-runtime's default is RFC 3339.
    pub time: TimeEncoding,
}

impl<S, N> FormatEvent<S, N> for ZapConsole
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let metadata = event.metadata();
        writer.write_str(&line(
            &self.time.format(now),
            *metadata.level(),
            metadata.target(),
            &fields,
        ))
    }
}

/// One event's message and other fields, in the order they were recorded.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(String, Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("message", Value::String(text)) => self.message = text,
            ("message", other) => self.message = other.to_string(),
            (name, value) => self.others.push((name.to_string(), value)),
        }
    }
}

/// zap's level names (it has no trace: `tracing`'s is its debug).
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// The whole line, newline included. The fields are zap's spaced JSON object, left out when
/// there are none.
fn line(time: &str, level: Level, target: &str, fields: &Fields) -> String {
    let mut out = format!(
        "{time}\t{}\t{}\t{}",
        level_name(level),
        target.replace("::", "."),
        fields.message
    );
    if !fields.others.is_empty() {
        out.push_str("\t{");
        for (i, (key, value)) in fields.others.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}: {value}", Value::from(key.as_str()));
        }
        out.push('}');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_metrics_line() {
        let fields = Fields {
            message: "Serving metrics server".into(),
            others: vec![
                ("bindAddress".into(), Value::from(":8443")),
                ("secure".into(), Value::from(true)),
            ],
        };
        assert_eq!(
            line(
                "2026-12-02T10:00:00Z",
                Level::INFO,
                "controller-runtime.metrics",
                &fields
            ),
            "2026-12-02T10:00:00Z\tINFO\tcontroller-runtime.metrics\tServing metrics server\t\
             {\"bindAddress\": \":8443\", \"secure\": true}\n"
        );
    }

    #[test]
    fn module_targets_and_bare_messages() {
        let fields = Fields {
            message: "caches synced".into(),
            others: vec![],
        };
        assert_eq!(
            line("t", Level::TRACE, "lws_host::controller::serve", &fields),
            "t\tDEBUG\tlws_host.controller.serve\tcaches synced\n"
        );
    }

    /// Through a real subscriber: the message, typed fields and a Display field.
    #[test]
    fn events_are_encoded_by_the_subscriber() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(ZapConsole {
                time: TimeEncoding::Rfc3339,
            })
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let addr: std::net::SocketAddr = "0.0.0.0:8443".parse().unwrap();
            tracing::info!(target: "controller-runtime.metrics", bindAddress = %addr,
                secure = true, replicas = 3, "Serving metrics server");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let (_, rest) = text.split_once('\t').unwrap();
        assert_eq!(
            rest,
            "INFO\tcontroller-runtime.metrics\tServing metrics server\t\
             {\"bindAddress\": \"0.0.0.0:8443\", \"secure\": true, \"replicas\": 3}\n"
        );
    }
}
