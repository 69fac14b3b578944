//! Logging: human-readable lines on stderr, filtered by `RUST_LOG` (default `info`).

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
