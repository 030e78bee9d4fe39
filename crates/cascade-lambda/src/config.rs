//! Each function's configuration, read from its environment and checked at start.

use std::time::Duration;

use cascade_core::intake::RunOptions;
use cascade_core::plan::StrategyChoice;

use crate::error::{ErrorKind, HandlerError};

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

/// Configuration of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The function.
    pub function: Function,
    /// The bucket for state and reports (`CASCADE_BUCKET`; all but the gatekeeper).
    pub bucket: Option<String>,
    /// The ticket queue (`CASCADE_QUEUE_URL`; gatekeeper).
    pub queue_url: Option<String>,
    /// The state machine (`CASCADE_STATE_MACHINE_ARN`; gatekeeper).
    pub state_machine_arn: Option<String>,
    /// Options of the runs the gatekeeper starts (`CASCADE_STRATEGY`, `CASCADE_POLL_SECONDS`).
    pub run_options: RunOptions,
    /// The CloudFormation service role for updates (`CASCADE_EXECUTION_ROLE_ARN`; refresh).
    pub execution_role_arn: Option<String>,
    /// Longest wait for one update (`CASCADE_MAX_WAIT_SECONDS`, default 3600; refresh).
    pub max_wait: Duration,
    /// The secret holding the Slack webhook URL (`CASCADE_SLACK_WEBHOOK_SECRET_ARN`; notify).
    pub slack_webhook_secret: Option<String>,
}

impl Config {
    /// Reads the configuration of `function` through `lookup` (the environment in Lambda).
    pub fn from_lookup(
        function: Function,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, HandlerError> {
        let optional = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |key: &str| {
            optional(key).ok_or_else(|| {
                HandlerError::new(
                    ErrorKind::ConfigurationError,
                    format!(
                        "environment variable {key} is not set: the {} function needs it",
                        function.name()
                    ),
                )
            })
        };
        let number = |key: &str, default: u64| -> Result<u64, HandlerError> {
            match optional(key) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| {
                    HandlerError::new(
                        ErrorKind::ConfigurationError,
                        format!("{key}={v} is not a whole number"),
                    )
                }),
            }
        };
        let mut config = Config {
            function,
            bucket: None,
            queue_url: None,
            state_machine_arn: None,
            run_options: RunOptions::default(),
            execution_role_arn: None,
            max_wait: Duration::from_secs(number("CASCADE_MAX_WAIT_SECONDS", 3600)?),
            slack_webhook_secret: optional("CASCADE_SLACK_WEBHOOK_SECRET_ARN"),
        };
        match function {
            Function::Gatekeeper => {
                config.queue_url = Some(required("CASCADE_QUEUE_URL")?);
                config.state_machine_arn = Some(required("CASCADE_STATE_MACHINE_ARN")?);
                if let Some(strategy) = optional("CASCADE_STRATEGY") {
                    config.run_options.strategy =
                        strategy.parse::<StrategyChoice>().map_err(|e| {
                            HandlerError::new(
                                ErrorKind::ConfigurationError,
                                format!("CASCADE_STRATEGY: {e}"),
                            )
                        })?;
                }
                let poll = number(
                    "CASCADE_POLL_SECONDS",
                    u64::from(config.run_options.poll_seconds),
                )?;
                config.run_options.poll_seconds =
                    u32::try_from(poll).unwrap_or(u32::MAX).clamp(1, 3600);
            }
            Function::Refresh => {
                config.bucket = Some(required("CASCADE_BUCKET")?);
                config.execution_role_arn = optional("CASCADE_EXECUTION_ROLE_ARN");
            }
            Function::Discover | Function::Report | Function::Notify => {
                config.bucket = Some(required("CASCADE_BUCKET")?);
            }
        }
        Ok(config)
    }

    /// Reads the configuration of `function` from the environment.
    pub fn from_env(function: Function) -> Result<Self, HandlerError> {
        Self::from_lookup(function, |k| std::env::var(k).ok())
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
    fn a_missing_variable_is_an_init_error_naming_it() {
        let e = Config::from_lookup(Function::Refresh, lookup(&[])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ConfigurationError);
        assert!(
            e.message.contains("CASCADE_BUCKET") && e.message.contains("refresh"),
            "{e}"
        );
        let e = Config::from_lookup(Function::Gatekeeper, lookup(&[("CASCADE_QUEUE_URL", "q")]))
            .unwrap_err();
        assert!(e.message.contains("CASCADE_STATE_MACHINE_ARN"));
    }

    #[test]
    fn values_are_checked() {
        let base = [
            ("CASCADE_QUEUE_URL", "q"),
            ("CASCADE_STATE_MACHINE_ARN", "sm"),
        ];
        let c = Config::from_lookup(
            Function::Gatekeeper,
            lookup(&[
                base[0],
                base[1],
                ("CASCADE_STRATEGY", "pin"),
                ("CASCADE_POLL_SECONDS", "15"),
            ]),
        )
        .unwrap();
        assert_eq!(c.run_options.strategy, StrategyChoice::Pin);
        assert_eq!(c.run_options.poll_seconds, 15);
        assert!(
            Config::from_lookup(
                Function::Gatekeeper,
                lookup(&[base[0], base[1], ("CASCADE_STRATEGY", "fast")])
            )
            .is_err()
        );
        assert!(
            Config::from_lookup(
                Function::Gatekeeper,
                lookup(&[base[0], base[1], ("CASCADE_POLL_SECONDS", "soon")])
            )
            .is_err()
        );
        let c = Config::from_lookup(
            Function::Notify,
            lookup(&[
                ("CASCADE_BUCKET", "b"),
                ("CASCADE_SLACK_WEBHOOK_SECRET_ARN", " "),
            ]),
        )
        .unwrap();
        assert_eq!(c.slack_webhook_secret, None, "blank means not configured");
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
