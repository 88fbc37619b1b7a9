//! Where the binary's log lines go and how they look: `--log-format text|json|journal`, on
//! stderr, filtered by `RUST_LOG` or `--log-level`.
//!
//! - `text`: one human line per event (time, level, target, message, fields), the default on
//!   a terminal or a file.
//! - `json`: one JSON object per line (tracing-subscriber's JSON formatter: `timestamp`,
//!   `level`, `fields.message`, the other fields, `target`), for log shippers.
//! - `journal`: the text line without the time (journald stamps each line) and prefixed with
//!   the sd-daemon(3) priority `<N>` — error `<3>`, warn `<4>`, info `<6>`, debug and trace
//!   `<7>` — which journald (`SyslogLevelPrefix=yes`, the default) strips and records as the
//!   line's PRIORITY, so `journalctl -p warning` shows warnings and errors. Chosen
//!   automatically when no format is given and stderr is the journal: `JOURNAL_STREAM`
//!   (set by systemd for `StandardError=journal`) names stderr's device and inode, compared
//!   with stderr's own as systemd.exec(5) advises, so a shell started from a unit that
//!   redirects stderr elsewhere does not get prefixes.
//!
//! Why a prefix on stderr rather than `tracing-journald` (the journal's native socket
//! protocol): stderr stays the one sink in every setting — under systemd, in a container, in
//! a terminal, in the tests that read the daemon's output — with nothing lost when
//! `/run/systemd/journal/socket` is absent, and the priority is all journald needs from us;
//! the prefix is a small [`FormatEvent`] wrapper around tracing-subscriber's own formatter.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
    /// Text lines with the sd-daemon `<N>` priority prefix, no time (journald).
    Journal,
}

/// Installs the global subscriber: `format`, or when none is given `journal` if stderr is the
/// journal and `text` otherwise.
pub fn init(format: Option<LogFormat>, filter: EnvFilter) {
    let format = format.unwrap_or_else(|| {
        if stderr_is_journal() {
            LogFormat::Journal
        } else {
            LogFormat::Text
        }
    });
    let ansi = format == LogFormat::Text && std::io::IsTerminal::is_terminal(&std::io::stderr());
    use tracing_subscriber::util::SubscriberInitExt;
    subscriber(format, filter, std::io::stderr, ansi).init();
}

/// The subscriber for `format`, writing to `writer`.
fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(builder.json().with_ansi(false).finish()),
        LogFormat::Journal => Box::new(
            builder
                .with_ansi(false)
                .event_format(Prioritized(
                    tracing_subscriber::fmt::format()
                        .without_time()
                        .with_ansi(false),
                ))
                .finish(),
        ),
    }
}

/// The sd-daemon(3) / syslog priority of a level: error 3, warn 4, info 6, debug and trace 7.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// An event format that writes the `<N>` priority before what `F` writes.
struct Prioritized<F>(F);

impl<S, N, F> FormatEvent<S, N> for Prioritized<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// Whether stderr is the stream systemd connected to the journal (`JOURNAL_STREAM`).
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
    else {
        return false;
    };
    names_stream(&stream, meta.dev(), meta.ino())
}

/// Whether a `JOURNAL_STREAM` value (`DEVICE:INODE`, decimal) names this device and inode.
fn names_stream(value: &str, dev: u64, ino: u64) -> bool {
    value
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((dev, ino))
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer: what the subscriber printed.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The lines one event of each level produces in `format`.
    fn lines_of(format: LogFormat) -> Vec<String> {
        let out = Captured::default();
        let w = out.clone();
        let sub = subscriber(format, EnvFilter::new("trace"), move || w.clone(), false);
        tracing::subscriber::with_default(sub, || {
            tracing::error!(code = 7, "first");
            tracing::warn!(source = "192.0.2.1", "second \"quoted\"");
            tracing::info!("third");
            tracing::debug!("fourth");
            tracing::trace!("fifth");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn journal_lines_carry_the_sd_daemon_priority() {
        let lines = lines_of(LogFormat::Journal);
        let prefixes: Vec<&str> = lines.iter().map(|l| &l[..3]).collect();
        assert_eq!(prefixes, ["<3>", "<4>", "<6>", "<7>", "<7>"], "{lines:?}");
        assert!(
            lines[0].starts_with("<3>ERROR"),
            "no time stamp: {}",
            lines[0]
        );
        assert!(lines[0].contains("first") && lines[0].contains("code=7"));
    }

    #[test]
    fn json_is_one_object_per_line() {
        let lines = lines_of(LogFormat::Json);
        assert_eq!(lines.len(), 5);
        let objects: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        assert_eq!(objects[0]["level"], "ERROR");
        assert_eq!(objects[0]["fields"]["message"], "first");
        assert_eq!(objects[0]["fields"]["code"], 7);
        assert_eq!(objects[1]["fields"]["message"], "second \"quoted\"");
        assert_eq!(objects[1]["fields"]["source"], "192.0.2.1");
        assert!(objects.iter().all(|o| o["timestamp"].is_string()));
    }

    #[test]
    fn text_lines_have_no_prefix() {
        let lines = lines_of(LogFormat::Text);
        assert_eq!(lines.len(), 5);
        assert!(lines.iter().all(|l| !l.starts_with('<')));
        assert!(lines[2].contains(" INFO ") && lines[2].contains("third"));
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(names_stream("64769:123456", 64769, 123456));
        assert!(!names_stream("64769:123456", 64769, 123457));
        assert!(!names_stream("64769", 64769, 123456));
        assert!(!names_stream("x:y", 0, 0));
        assert!(!names_stream("", 0, 0));
    }

    #[test]
    fn priorities_follow_syslog() {
        let p: Vec<u8> = [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ]
        .iter()
        .map(priority)
        .collect();
        assert_eq!(p, [3, 4, 6, 7, 7]);
    }
}
