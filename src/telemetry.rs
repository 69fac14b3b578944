//! Logging: human-readable lines on stderr, filtered by `RUST_LOG` (default `info`), and
//! [`Escaped`], how text that came from outside appears in a log line or a message.

use std::fmt;

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_text_cannot_start_a_line_or_steer_a_terminal() {
        let s = escaped("x\nkiln: bake succeeded\r\u{1b}[2J\0");
        assert_eq!(s, r"'x\nkiln: bake succeeded\r\u{1b}[2J\u{0}'");
        assert!(!s.chars().any(char::is_control));
        assert_eq!(escaped("ünï"), "'ünï'");
    }
}
