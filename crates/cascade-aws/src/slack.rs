//! Slack incoming-webhook delivery: the webhook URL is read from Secrets Manager (it is
//! itself a secret) and messages are posted with retries, through one [`SlackClient`] per
//! process. [`SlackClient::notify_report`] is the notification both the CLI's `cascade run`
//! and the `notify` Lambda function send.
//!
//! A failed notification never fails a run: [`SlackClient::post_message`] and
//! [`SlackClient::notify_report`] return what happened instead of an error. The URL never
//! appears in errors, results or logs; only its host is logged.

use std::time::Duration;

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use cascade_core::report::Report;
use cascade_core::report::slack::slack_message;
use reqwest::header::RETRY_AFTER;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tracing::{info, warn};

/// Most characters of Slack's answer kept in a [`SlackDelivery::GaveUp`] reason.
const MAX_ANSWER_CHARS: usize = 200;

/// Why the webhook URL cannot be had. Names the secret, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// The secret does not exist (or is not visible with these credentials).
    #[error(
        "Slack webhook secret `{secret_id}` was not found in Secrets Manager: check the name, \
         the region and the credentials"
    )]
    SecretNotFound {
        /// The secret's name or ARN, as given.
        secret_id: String,
    },
    /// GetSecretValue failed.
    #[error("cannot read Slack webhook secret `{secret_id}`: {message}")]
    ReadSecret {
        /// The secret's name or ARN, as given.
        secret_id: String,
        /// What Secrets Manager or the transport said.
        message: String,
    },
    /// The secret holds something other than a usable webhook URL.
    #[error(
        "Slack webhook secret `{secret_id}` {problem}: store the webhook URL (https://...) or \
         JSON {{\"webhook_url\": \"https://...\"}}"
    )]
    InvalidSecret {
        /// The secret's name or ARN, as given.
        secret_id: String,
        /// What is wrong, without quoting the value.
        problem: &'static str,
    },
    /// No HTTP client could be built (the TLS set-up failed).
    #[error("cannot build an HTTP client for Slack: {message}")]
    HttpClient {
        /// What went wrong.
        message: String,
    },
}

/// Reads the webhook URL from the secret `secret_id`: either the plain URL or JSON
/// `{"webhook_url": "..."}`. The URL must be `https://` (or `http://` to `127.0.0.1` or
/// `localhost`, for local tests).
pub async fn webhook_url(
    secrets: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<String, SlackError> {
    let out = secrets
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|err| {
            if matches!(
                err.as_service_error(),
                Some(GetSecretValueError::ResourceNotFoundException(_))
            ) {
                SlackError::SecretNotFound {
                    secret_id: secret_id.to_string(),
                }
            } else {
                SlackError::ReadSecret {
                    secret_id: secret_id.to_string(),
                    message: aws_smithy_types::error::display::DisplayErrorContext(&err)
                        .to_string(),
                }
            }
        })?;
    let invalid = |problem| SlackError::InvalidSecret {
        secret_id: secret_id.to_string(),
        problem,
    };
    let value = out
        .secret_string()
        .ok_or_else(|| invalid("holds binary data, not a string"))?
        .trim();
    let url = if value.starts_with('{') {
        let json: Value = serde_json::from_str(value)
            .map_err(|_| invalid("looks like JSON but does not parse"))?;
        json.get("webhook_url")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("is JSON without a string field `webhook_url`"))?
            .trim()
            .to_string()
    } else {
        value.to_string()
    };
    check_url(&url).map_err(invalid)?;
    Ok(url)
}

/// Accepts `https://` URLs, and `http://` ones to this machine.
fn check_url(url: &str) -> Result<(), &'static str> {
    let parsed = Url::parse(url).map_err(|_| "does not hold a valid URL")?;
    match (parsed.scheme(), parsed.host_str()) {
        ("https", Some(_)) => Ok(()),
        ("http", Some("127.0.0.1" | "localhost")) => Ok(()),
        _ => Err("does not hold an https:// URL"),
    }
}

/// How [`SlackClient::post_message`] retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least one is made).
    pub attempts: u32,
    /// Time allowed for each attempt, answer included.
    pub timeout: Duration,
    /// Longest wait a 429's `Retry-After` can ask for.
    pub max_retry_after: Duration,
    /// Wait after the first failed attempt; doubles after each further one.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            timeout: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
            backoff: Duration::from_secs(1),
        }
    }
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackDelivery {
    /// Slack accepted it.
    Delivered {
        /// Attempts made.
        attempts: u32,
    },
    /// It was not delivered.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last problem (never contains the URL).
        reason: String,
    },
}

/// What one attempt leads to.
enum Next {
    Done(SlackDelivery),
    Retry {
        after: Option<Duration>,
        reason: String,
    },
}

/// What became of a report's notification.
#[derive(Debug)]
pub enum Notification {
    /// Slack took the message.
    Delivered {
        /// Attempts made.
        attempts: u32,
    },
    /// Nothing was sent: the webhook URL could not be read from its secret (or no HTTP
    /// client could be built).
    NotSent(SlackError),
    /// Slack did not take the message.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last problem (never contains the URL).
        reason: String,
    },
}

/// The HTTP client Slack messages go through, with its retry policy. Build it once per
/// process and reuse it: it holds the connection pool and the TLS set-up. Redirects are
/// not followed.
#[derive(Debug, Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    policy: RetryPolicy,
}

impl SlackClient {
    /// A client that posts with `policy`.
    pub fn new(policy: RetryPolicy) -> Result<Self, SlackError> {
        crate::clients::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| SlackError::HttpClient {
                message: chain(&err.without_url()),
            })?;
        Ok(SlackClient { http, policy })
    }

    /// Tells Slack about a report: reads the webhook URL from the secret `secret_id`,
    /// builds the message from the report (linking to `location`, where the report is
    /// saved) and posts it. Never fails: what happened is returned.
    pub async fn notify_report(
        &self,
        secrets: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
        report: &Report,
        location: Option<&str>,
    ) -> Notification {
        let url = match webhook_url(secrets, secret_id).await {
            Ok(url) => url,
            Err(e) => return Notification::NotSent(e),
        };
        match self
            .post_message(&url, &slack_message(report, location))
            .await
        {
            SlackDelivery::Delivered { attempts } => Notification::Delivered { attempts },
            SlackDelivery::GaveUp { attempts, reason } => Notification::GaveUp { attempts, reason },
        }
    }

    /// Posts `message` as JSON to the webhook `url`. Retries 429 (after `Retry-After`,
    /// capped), 5xx, timeouts and connection errors with doubling backoff; gives up at once
    /// on any other answer. Never panics and never fails: the outcome is returned.
    pub async fn post_message(&self, url: &str, message: &Value) -> SlackDelivery {
        let policy = &self.policy;
        let Some(host) = Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        else {
            warn!("Slack webhook URL is not a valid URL");
            return SlackDelivery::GaveUp {
                attempts: 0,
                reason: "the webhook URL is not a valid URL".into(),
            };
        };
        let attempts = policy.attempts.max(1);
        let mut backoff = policy.backoff;
        let mut last_reason = String::new();
        for attempt in 1..=attempts {
            let (after, reason) = match attempt_once(&self.http, url, message, policy, attempt)
                .await
            {
                Next::Done(delivery) => {
                    match &delivery {
                        SlackDelivery::Delivered { .. } => {
                            info!(%host, attempts = attempt, "Slack message delivered");
                        }
                        SlackDelivery::GaveUp { reason, .. } => {
                            warn!(%host, attempts = attempt, %reason, "Slack refused the message");
                        }
                    }
                    return delivery;
                }
                Next::Retry { after, reason } => (after, reason),
            };
            if attempt < attempts {
                let wait = after.unwrap_or(backoff);
                warn!(%host, attempt, %reason, wait_ms = wait.as_millis() as u64, "Slack delivery failed, retrying");
                tokio::time::sleep(wait).await;
                if after.is_none() {
                    backoff = backoff.saturating_mul(2);
                }
            }
            last_reason = reason;
        }
        warn!(%host, attempts, reason = %last_reason, "Slack delivery abandoned");
        SlackDelivery::GaveUp {
            attempts,
            reason: format!(
                "{last_reason} (gave up after {attempts} attempt{})",
                if attempts == 1 { "" } else { "s" }
            ),
        }
    }
}

async fn attempt_once(
    client: &reqwest::Client,
    url: &str,
    message: &Value,
    policy: &RetryPolicy,
    attempt: u32,
) -> Next {
    let response = match client
        .post(url)
        .timeout(policy.timeout)
        .json(message)
        .send()
        .await
    {
        Ok(response) => response,
        Err(err) if err.is_builder() => {
            return Next::Done(SlackDelivery::GaveUp {
                attempts: attempt,
                reason: format!("cannot build the request: {}", chain(&err.without_url())),
            });
        }
        Err(err) => {
            let reason = if err.is_timeout() {
                format!("no answer within {:?}", policy.timeout)
            } else {
                format!("request failed: {}", chain(&err.without_url()))
            };
            return Next::Retry {
                after: None,
                reason,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Next::Done(SlackDelivery::Delivered { attempts: attempt });
    }
    let retry_after = retry_after(&response).map(|wait| wait.min(policy.max_retry_after));
    let reason = format!("Slack answered {status}{}", answer(response).await);
    if status == StatusCode::TOO_MANY_REQUESTS {
        Next::Retry {
            after: retry_after,
            reason,
        }
    } else if status.is_server_error() {
        Next::Retry {
            after: None,
            reason,
        }
    } else {
        Next::Done(SlackDelivery::GaveUp {
            attempts: attempt,
            reason,
        })
    }
}

/// `Retry-After` in seconds (Slack does not send the HTTP-date form).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

/// The start of Slack's answer (e.g. `: invalid_payload`), on one line, or nothing.
async fn answer(response: reqwest::Response) -> String {
    let body = response.text().await.unwrap_or_default();
    let body: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ANSWER_CHARS)
        .collect();
    let body = body.trim();
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// An error and its causes, `a: b: c`.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_and_local_http_only() {
        assert!(check_url("https://hooks.slack.com/services/T/B/X").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://localhost.example.com/hook").is_err());
        assert!(check_url("http://hooks.slack.com/services/T/B/X").is_err());
        assert!(check_url("ftp://example.com").is_err());
        assert!(check_url("hooks.slack.com/services").is_err());
        assert!(check_url("").is_err());
    }

    #[test]
    fn default_policy() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.attempts, 4);
        assert_eq!(policy.timeout, Duration::from_secs(10));
        assert_eq!(policy.max_retry_after, Duration::from_secs(30));
        assert_eq!(policy.backoff, Duration::from_secs(1));
    }
}
