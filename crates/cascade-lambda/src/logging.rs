//! Logging as Lambda's advanced logging controls configure it: JSON lines when the log
//! format is JSON (`AWS_LAMBDA_LOG_FORMAT`), at the level `AWS_LAMBDA_LOG_LEVEL` gives,
//! else the directives of `RUST_LOG` (`info`, or `cascade_aws=debug,info`), else `info`.
//!
//! The same as `lambda_runtime::tracing::init_default_subscriber`, but filtered by
//! [`Targets`] rather than `EnvFilter`: no regular-expression engine in the binary
//! (about 0.3 MB of the zipped artifact) for directives that never need one.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the process's subscriber from the environment (see the module docs).
pub fn init() {
    let format = std::env::var("AWS_LAMBDA_LOG_FORMAT").unwrap_or_default();
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG"));
    let filter = filter(level.ok().as_deref());
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(std::io::stdout);
    let registry = tracing_subscriber::registry().with(filter);
    // A subscriber already installed (a test's) stays.
    let _ = if format.eq_ignore_ascii_case("json") {
        registry.with(layer.json()).try_init()
    } else {
        registry.with(layer).try_init()
    };
}

/// The filter for a level or directives: Lambda's levels (`TRACE` ... `ERROR`, and
/// `FATAL` as error), or `RUST_LOG`-style `target=level` directives; `info` when unset or
/// unreadable.
pub fn filter(spec: Option<&str>) -> Targets {
    let default = Targets::new().with_default(LevelFilter::INFO);
    let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
        return default;
    };
    if spec.eq_ignore_ascii_case("fatal") {
        return Targets::new().with_default(LevelFilter::ERROR);
    }
    spec.parse().unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn allows(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn lambda_levels_and_rust_log_directives_set_the_filter() {
        let unset = filter(None);
        assert!(allows(&unset, "cascade_aws", Level::INFO));
        assert!(!allows(&unset, "cascade_aws", Level::DEBUG));

        let debug = filter(Some("DEBUG"));
        assert!(allows(&debug, "cascade_aws", Level::DEBUG));
        assert!(!allows(&debug, "cascade_aws", Level::TRACE));

        let fatal = filter(Some("FATAL"));
        assert!(allows(&fatal, "x", Level::ERROR) && !allows(&fatal, "x", Level::WARN));

        let directives = filter(Some("cascade_aws=debug,warn"));
        assert!(allows(&directives, "cascade_aws::refresh", Level::DEBUG));
        assert!(!allows(&directives, "hyper", Level::INFO));
        assert!(allows(&directives, "hyper", Level::WARN));

        let unreadable = filter(Some("cascade_aws=loud"));
        assert!(allows(&unreadable, "x", Level::INFO) && !allows(&unreadable, "x", Level::DEBUG));
    }
}
