//! Each function's configuration: one type per function, read from its environment and
//! checked once, at start-up. A missing or invalid variable is an init error naming it.

use std::time::Duration;

use cascade_aws::refresh::{PollPolicy, RefreshSettings};
use cascade_core::defaults::MAX_WAIT_SECONDS;
use cascade_core::intake::RunOptions;
use cascade_core::plan::StrategyChoice;

use crate::error::{ErrorKind, HandlerError};

pub use cascade_aws::gatekeeper::GatekeeperConfig;

/// Seconds a ticket the gatekeeper received stays invisible to other receivers while it
/// runs.
const VISIBILITY_TIMEOUT_SECONDS: i32 = 120;
/// The gatekeeper's receive rounds per invocation (a poison ticket is received again until
/// it moves to the dead-letter queue).
const MAX_RECEIVE_ROUNDS: u32 = 5;
/// The functions, by the name of their binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// Starts an execution when none is running, from the queued tickets.
    Gatekeeper,
    /// Resolves the secrets and plans the batch.
    Discover,
    /// One refresh step of one stack.
    Refresh,
    /// Writes the report.
    Report,
    /// Tells Slack.
    Notify,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 5] = [
        Function::Gatekeeper,
        Function::Discover,
        Function::Refresh,
        Function::Report,
        Function::Notify,
    ];

    /// The binary's name.
    pub fn name(self) -> &'static str {
        match self {
            Function::Gatekeeper => "gatekeeper",
            Function::Discover => "discover",
            Function::Refresh => "refresh",
            Function::Report => "report",
            Function::Notify => "notify",
        }
    }

    /// The function a `Handler` setting names (Lambda passes it as `_HANDLER`); an error
    /// naming the handlers there are when it names none.
    pub fn from_handler(handler: Option<&str>) -> Result<Function, UnknownHandler> {
        let given = handler.map(str::trim).unwrap_or_default();
        Function::ALL
            .into_iter()
            .find(|f| f.name() == given)
            .ok_or_else(|| UnknownHandler(given.to_string()))
    }

    /// The function a deployed function name or ARN stands for (`...-discover`,
    /// `arn:aws:lambda:...:function:secret-cascade-discover`).
    pub fn from_deployed_name(name: &str) -> Option<Function> {
        let name = name
            .rsplit(':')
            .find(|p| !p.is_empty() && !p.chars().all(|c| c.is_ascii_digit()))?;
        Function::ALL
            .into_iter()
            .find(|f| name.to_ascii_lowercase().ends_with(f.name()))
    }
}

/// The `Handler` setting names no function of the binary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the function's Handler is {0:?}: set it to one of gatekeeper, discover, refresh, report, notify (template.yaml does, per function)"
)]
pub struct UnknownHandler(pub String);

/// A function's configuration, read from its environment.
pub trait FromEnv: Sized {
    /// The function it configures.
    const FUNCTION: Function;

    /// Reads the configuration through `lookup` (the environment in Lambda).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, HandlerError> {
        Self::read(&Env {
            function: Self::FUNCTION,
            lookup: &lookup,
        })
    }

    /// Reads the configuration from the environment.
    fn from_env() -> Result<Self, HandlerError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration from `env`.
    fn read(env: &Env<'_>) -> Result<Self, HandlerError>;
}

/// A configuration naming the bucket for state and reports (every function but the
/// gatekeeper).
pub trait StateBucket {
    /// The bucket (`CASCADE_BUCKET`).
    fn bucket(&self) -> &str;

    /// Settings of the refresh steps run with this configuration: the defaults, but for
    /// the `refresh` function, which waits on updates.
    fn refresh_settings(&self) -> RefreshSettings {
        RefreshSettings::default()
    }
}

/// `discover`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverConfig {
    /// The bucket for state and reports (`CASCADE_BUCKET`).
    pub bucket: String,
}

/// `refresh`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshConfig {
    /// The bucket for state and reports (`CASCADE_BUCKET`).
    pub bucket: String,
    /// The CloudFormation service role for updates (`CASCADE_EXECUTION_ROLE_ARN`); by
    /// default each stack's own.
    pub execution_role_arn: Option<String>,
    /// Longest wait for one update (`CASCADE_MAX_WAIT_SECONDS`, default
    /// [`MAX_WAIT_SECONDS`]).
    pub max_wait: Duration,
}

/// `report`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    /// The bucket for state and reports (`CASCADE_BUCKET`).
    pub bucket: String,
}

/// `notify`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// The bucket for state and reports (`CASCADE_BUCKET`).
    pub bucket: String,
    /// The secret holding the Slack webhook URL (`CASCADE_SLACK_WEBHOOK_SECRET_ARN`);
    /// without it nothing is sent.
    pub slack_webhook_secret: Option<String>,
}

/// The configuration of any one function.
#[derive(Debug, Clone)]
pub enum FunctionConfig {
    /// `gatekeeper`'s.
    Gatekeeper(GatekeeperConfig),
    /// `discover`'s.
    Discover(DiscoverConfig),
    /// `refresh`'s.
    Refresh(RefreshConfig),
    /// `report`'s.
    Report(ReportConfig),
    /// `notify`'s.
    Notify(NotifyConfig),
}

impl FunctionConfig {
    /// Reads the configuration of `function` through `lookup` (the environment in Lambda).
    pub fn from_lookup(
        function: Function,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, HandlerError> {
        Ok(match function {
            Function::Gatekeeper => Self::Gatekeeper(GatekeeperConfig::from_lookup(lookup)?),
            Function::Discover => Self::Discover(DiscoverConfig::from_lookup(lookup)?),
            Function::Refresh => Self::Refresh(RefreshConfig::from_lookup(lookup)?),
            Function::Report => Self::Report(ReportConfig::from_lookup(lookup)?),
            Function::Notify => Self::Notify(NotifyConfig::from_lookup(lookup)?),
        })
    }

    /// Reads the configuration of `function` from the environment.
    pub fn from_env(function: Function) -> Result<Self, HandlerError> {
        Self::from_lookup(function, |k| std::env::var(k).ok())
    }
}

impl FromEnv for GatekeeperConfig {
    const FUNCTION: Function = Function::Gatekeeper;

    fn read(env: &Env<'_>) -> Result<Self, HandlerError> {
        let queue_url = env.required("CASCADE_QUEUE_URL")?;
        let state_machine_arn = env.required("CASCADE_STATE_MACHINE_ARN")?;
        let bucket = env.required("CASCADE_BUCKET")?;
        let mut options = RunOptions::default();
        if let Some(strategy) = env.optional("CASCADE_STRATEGY") {
            options.strategy = strategy.parse::<StrategyChoice>().map_err(|e| {
                HandlerError::new(
                    ErrorKind::ConfigurationError,
                    format!("CASCADE_STRATEGY: {e}"),
                )
            })?;
        }
        let poll = env.number("CASCADE_POLL_SECONDS", u64::from(options.poll_seconds))?;
        // A wait between two looks is at least a second and at most the longest wait.
        options.poll_seconds = u32::try_from(poll.clamp(1, MAX_WAIT_SECONDS)).unwrap_or(u32::MAX);
        Ok(GatekeeperConfig {
            queue_url,
            state_machine_arn,
            bucket,
            options,
            visibility_timeout_seconds: VISIBILITY_TIMEOUT_SECONDS,
            max_receive_rounds: MAX_RECEIVE_ROUNDS,
        })
    }
}

impl FromEnv for DiscoverConfig {
    const FUNCTION: Function = Function::Discover;

    fn read(env: &Env<'_>) -> Result<Self, HandlerError> {
        Ok(DiscoverConfig {
            bucket: env.required("CASCADE_BUCKET")?,
        })
    }
}

impl FromEnv for RefreshConfig {
    const FUNCTION: Function = Function::Refresh;

    fn read(env: &Env<'_>) -> Result<Self, HandlerError> {
        Ok(RefreshConfig {
            bucket: env.required("CASCADE_BUCKET")?,
            execution_role_arn: env.optional("CASCADE_EXECUTION_ROLE_ARN"),
            max_wait: Duration::from_secs(
                env.number("CASCADE_MAX_WAIT_SECONDS", MAX_WAIT_SECONDS)?,
            ),
        })
    }
}

impl FromEnv for ReportConfig {
    const FUNCTION: Function = Function::Report;

    fn read(env: &Env<'_>) -> Result<Self, HandlerError> {
        Ok(ReportConfig {
            bucket: env.required("CASCADE_BUCKET")?,
        })
    }
}

impl FromEnv for NotifyConfig {
    const FUNCTION: Function = Function::Notify;

    fn read(env: &Env<'_>) -> Result<Self, HandlerError> {
        Ok(NotifyConfig {
            bucket: env.required("CASCADE_BUCKET")?,
            slack_webhook_secret: env.optional("CASCADE_SLACK_WEBHOOK_SECRET_ARN"),
        })
    }
}

impl StateBucket for DiscoverConfig {
    fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl StateBucket for RefreshConfig {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn refresh_settings(&self) -> RefreshSettings {
        RefreshSettings {
            poll: PollPolicy {
                max_wait: self.max_wait,
                ..PollPolicy::default()
            },
            execution_role_arn: self.execution_role_arn.clone(),
        }
    }
}

impl StateBucket for ReportConfig {
    fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl StateBucket for NotifyConfig {
    fn bucket(&self) -> &str {
        &self.bucket
    }
}

/// A function's environment, read through a lookup: values are trimmed, and a blank one
/// counts as not set.
pub struct Env<'a> {
    function: Function,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    /// A variable, when set.
    pub fn optional(&self, key: &str) -> Option<String> {
        (self.lookup)(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A variable the function cannot run without.
    pub fn required(&self, key: &str) -> Result<String, HandlerError> {
        self.optional(key).ok_or_else(|| {
            HandlerError::new(
                ErrorKind::ConfigurationError,
                format!(
                    "environment variable {key} is not set: the {} function needs it",
                    self.function.name()
                ),
            )
        })
    }

    /// A whole number, `default` when not set.
    pub fn number(&self, key: &str, default: u64) -> Result<u64, HandlerError> {
        match self.optional(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                HandlerError::new(
                    ErrorKind::ConfigurationError,
                    format!("{key}={v} is not a whole number"),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_handler_setting_chooses_the_function() {
        for f in Function::ALL {
            assert_eq!(Function::from_handler(Some(f.name())), Ok(f));
        }
        assert_eq!(
            Function::from_handler(Some(" refresh\n")),
            Ok(Function::Refresh)
        );
        for wrong in [None, Some(""), Some("bootstrap"), Some("Refresh")] {
            let e = Function::from_handler(wrong).unwrap_err();
            assert!(
                e.to_string()
                    .contains("set it to one of gatekeeper, discover, refresh, report, notify"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_missing_variable_is_an_init_error_naming_it() {
        let e = FunctionConfig::from_lookup(Function::Refresh, lookup(&[])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ConfigurationError);
        assert!(
            e.message.contains("CASCADE_BUCKET") && e.message.contains("refresh"),
            "{e}"
        );
        let e = GatekeeperConfig::from_lookup(lookup(&[("CASCADE_QUEUE_URL", "q")])).unwrap_err();
        assert!(e.message.contains("CASCADE_STATE_MACHINE_ARN"));
    }

    #[test]
    fn values_are_checked() {
        let base = [
            ("CASCADE_QUEUE_URL", "q"),
            ("CASCADE_STATE_MACHINE_ARN", "sm"),
            ("CASCADE_BUCKET", "b"),
        ];
        assert!(
            GatekeeperConfig::from_lookup(lookup(&[base[0], base[1]]))
                .unwrap_err()
                .message
                .contains("CASCADE_BUCKET")
        );
        let c = GatekeeperConfig::from_lookup(lookup(&[
            base[0],
            base[1],
            base[2],
            ("CASCADE_STRATEGY", "pin"),
            ("CASCADE_POLL_SECONDS", "15"),
        ]))
        .unwrap();
        assert_eq!(c.options.strategy, StrategyChoice::Pin);
        assert_eq!(c.options.poll_seconds, 15);
        assert!(
            GatekeeperConfig::from_lookup(lookup(&[
                base[0],
                base[1],
                base[2],
                ("CASCADE_STRATEGY", "fast")
            ]))
            .is_err()
        );
        assert!(
            GatekeeperConfig::from_lookup(lookup(&[
                base[0],
                base[1],
                base[2],
                ("CASCADE_POLL_SECONDS", "soon")
            ]))
            .is_err()
        );
        let c = NotifyConfig::from_lookup(lookup(&[
            ("CASCADE_BUCKET", "b"),
            ("CASCADE_SLACK_WEBHOOK_SECRET_ARN", " "),
        ]))
        .unwrap();
        assert_eq!(c.slack_webhook_secret, None, "blank means not configured");
    }

    #[test]
    fn refresh_waits_the_default_longest_wait_unless_told() {
        let c = RefreshConfig::from_lookup(lookup(&[("CASCADE_BUCKET", "b")])).unwrap();
        assert_eq!(c.max_wait, Duration::from_secs(3600));
        assert_eq!(c.execution_role_arn, None);
        let c = RefreshConfig::from_lookup(lookup(&[
            ("CASCADE_BUCKET", "b"),
            ("CASCADE_MAX_WAIT_SECONDS", "90"),
            (
                "CASCADE_EXECUTION_ROLE_ARN",
                "arn:aws:iam::123456789012:role/cfn",
            ),
        ]))
        .unwrap();
        let settings = c.refresh_settings();
        assert_eq!(settings.poll.max_wait, Duration::from_secs(90));
        assert_eq!(
            settings.execution_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/cfn")
        );
        let e = RefreshConfig::from_lookup(lookup(&[
            ("CASCADE_BUCKET", "b"),
            ("CASCADE_MAX_WAIT_SECONDS", "1h"),
        ]))
        .unwrap_err();
        assert!(e.message.contains("CASCADE_MAX_WAIT_SECONDS"), "{e}");
        let report =
            FunctionConfig::from_lookup(Function::Report, lookup(&[("CASCADE_BUCKET", "b")]));
        assert!(
            matches!(report, Ok(FunctionConfig::Report(ReportConfig { bucket })) if bucket == "b")
        );
    }

    #[test]
    fn deployed_names_map_to_functions() {
        assert_eq!(
            Function::from_deployed_name("secret-cascade-discover"),
            Some(Function::Discover)
        );
        assert_eq!(
            Function::from_deployed_name(
                "arn:aws:lambda:us-east-1:123456789012:function:sc-refresh"
            ),
            Some(Function::Refresh)
        );
        assert_eq!(
            Function::from_deployed_name(
                "arn:aws:lambda:us-east-1:123456789012:function:sc-notify:7"
            ),
            Some(Function::Notify)
        );
        assert_eq!(Function::from_deployed_name("something-else"), None);
    }
}
