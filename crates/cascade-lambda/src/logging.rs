//! Structured logs: JSON lines when Lambda's log format is JSON (`AWS_LAMBDA_LOG_FORMAT`),
//! at the level Lambda's logging configuration gives (`AWS_LAMBDA_LOG_LEVEL`, else
//! `RUST_LOG`, else `info`).

/// Installs the global subscriber (once; later calls do nothing).
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .to_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_target(false);
    let result =
        if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .try_init()
        } else {
            builder.try_init()
        };
    let _ = result;
}
