//! Logging: human-readable lines on stderr, filtered by `RUST_LOG` (default `info`),
//! [`Escaped`], how text that came from outside appears in a log line or a message, and
//! [`Chain`], how an error appears with its causes.
//!
//! kiln's convention for errors: a message never repeats its cause. An error type that keeps
//! its cause (`#[source]`/`#[from]`, or a field named `source`) leaves it out of its own text,
//! and whoever shows the error to a person prints the whole chain once: anyhow's `{:#}`, or
//! [`Chain`] for a typed error.

use std::fmt;

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    // A panic's message may hold request values: log it escaped, in kiln's own line format,
    // instead of the default hook's raw text (which a newline in a value could forge lines in).
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        tracing::error!(
            panic = ?panic_text(info.payload()),
            at = %info.location().map_or_else(String::new, |l| l.to_string()),
            "panic (kiln catches it and goes on serving){}",
            match backtrace.status() {
                std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
                _ => String::new(),
            }
        );
    }));
}

/// A caught panic's message, for kiln's log (log it with `?`, which escapes it: the text may
/// hold request values). Never put it in an answer or a bake's record.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Request text as it may appear in a log line or a message: control characters (newlines,
/// ESC, NUL) escaped, so a value can never start a line of its own or steer a terminal.
/// Printable text, Unicode included, is kept as it is.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        f.write_str("'")
    }
}

/// [`Escaped`] as a `String`.
pub fn escaped(text: &str) -> String {
    Escaped(text).to_string()
}

/// An error and its causes on one line, `outer: cause: root cause`, as anyhow's `{:#}` prints
/// a chain. A cause whose text the line already holds is left out: kiln's own errors follow the
/// convention above, but some libraries' errors (the AWS SDK's) repeat their source.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            cause = c.source();
        }
        f.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_names_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open the store")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(Chain(&e).to_string(), "cannot open the store: disk on fire");
        // A library error that repeats its source in its own message: the cause is not added.
        #[derive(Debug, thiserror::Error)]
        #[error("no credentials: {0}")]
        struct Repeats(#[source] std::io::Error);
        let e = Repeats(std::io::Error::other("IMDS timed out"));
        assert_eq!(Chain(&e).to_string(), "no credentials: IMDS timed out");
    }

    #[test]
    fn escaped_text_cannot_start_a_line_or_steer_a_terminal() {
        let s = escaped("x\nkiln: bake succeeded\r\u{1b}[2J\0");
        assert_eq!(s, r"'x\nkiln: bake succeeded\r\u{1b}[2J\u{0}'");
        assert!(!s.chars().any(char::is_control));
        assert_eq!(escaped("ünï"), "'ünï'");
    }
}
