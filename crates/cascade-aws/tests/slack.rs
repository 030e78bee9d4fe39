//! Slack delivery against a tiny local HTTP sink (Slack is not AWS, so no AWS stand-in is
//! involved), and reading the webhook URL from the local AWS stack's Secrets Manager.

use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::primitives::Blob;
use cascade_aws::slack::{
    Notification, RetryPolicy, SlackClient, SlackDelivery, SlackError, webhook_url,
};
use cascade_core::report::slack::slack_message;
use cascade_core::report::{REPORT_SCHEMA_VERSION, Report, Totals};
use cascade_tests::LocalStack;
use cascade_tests::slack_sink::{Reply, SlackSink as Sink, status};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The part of a webhook URL that is the secret.
const HOOK_PATH: &str = "/services/T0000/B0000/XXXXSECRETXXXX";

/// What the sink answers to one request.
fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        timeout: Duration::from_secs(2),
        max_retry_after: Duration::from_secs(5),
        backoff: Duration::from_millis(10),
    }
}

/// Posts through a client with `policy` (one client per process in the functions).
async fn post_message(url: &str, message: &Value, policy: &RetryPolicy) -> SlackDelivery {
    SlackClient::new(policy.clone())
        .expect("an HTTP client")
        .post_message(url, message)
        .await
}

fn message() -> Value {
    json!({
        "text": "Secret Cascade batch b-1: 1 failed. — ünïcødé",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Failed: `api`*"}}],
    })
}

fn assert_no_url(reason: &str, url: &str) {
    assert!(!reason.contains(url), "{reason}");
    assert!(!reason.contains(HOOK_PATH), "{reason}");
    assert!(!reason.contains("XXXXSECRETXXXX"), "{reason}");
}

#[tokio::test]
async fn delivers_on_200_and_sends_the_message() {
    let sink = Sink::scripted(vec![status(200)]).await;
    let delivery = post_message(&sink.url, &message(), &quick_policy()).await;
    assert_eq!(delivery, SlackDelivery::Delivered { attempts: 1 });
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, sink.path);
    assert_eq!(
        received[0].content_type.as_deref(),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body, message());
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let sink = Sink::scripted(vec![
        Reply::Status(429, vec![("Retry-After", "1")], "rate_limited"),
        status(200),
    ])
    .await;
    let delivery = post_message(&sink.url, &message(), &quick_policy()).await;
    assert_eq!(delivery, SlackDelivery::Delivered { attempts: 2 });
    let received = sink.received();
    assert_eq!(received.len(), 2);
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?}"
    );
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test]
async fn caps_retry_after() {
    let sink = Sink::scripted(vec![
        Reply::Status(429, vec![("Retry-After", "3600")], ""),
        status(200),
    ])
    .await;
    let policy = RetryPolicy {
        max_retry_after: Duration::from_millis(50),
        ..quick_policy()
    };
    let started = Instant::now();
    let delivery = post_message(&sink.url, &message(), &policy).await;
    assert_eq!(delivery, SlackDelivery::Delivered { attempts: 2 });
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn gives_up_after_repeated_5xx() {
    let sink = Sink::scripted(vec![status(500), status(502), status(503), status(500)]).await;
    let delivery = post_message(&sink.url, &message(), &quick_policy()).await;
    let SlackDelivery::GaveUp { attempts, reason } = delivery else {
        panic!("delivered despite 5xx: {delivery:?}");
    };
    assert_eq!(attempts, 4);
    assert_eq!(sink.received().len(), 4);
    assert!(reason.contains("500"), "{reason}");
    assert_no_url(&reason, &sink.url);
}

#[tokio::test]
async fn retries_5xx_then_delivers() {
    let sink = Sink::scripted(vec![status(503), status(200)]).await;
    let delivery = post_message(&sink.url, &message(), &quick_policy()).await;
    assert_eq!(delivery, SlackDelivery::Delivered { attempts: 2 });
}

#[tokio::test]
async fn gives_up_quickly_when_nobody_listens() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{closed}{HOOK_PATH}");
    let started = Instant::now();
    let delivery = post_message(&url, &message(), &quick_policy()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let SlackDelivery::GaveUp { attempts, reason } = delivery else {
        panic!("delivered to a closed port: {delivery:?}");
    };
    assert_eq!(attempts, 4);
    assert!(reason.starts_with("request failed"), "{reason}");
    assert_no_url(&reason, &url);
}

#[tokio::test]
async fn gives_up_at_once_on_400() {
    let sink = Sink::scripted(vec![Reply::Status(400, vec![], "invalid_payload")]).await;
    let delivery = post_message(&sink.url, &message(), &quick_policy()).await;
    let SlackDelivery::GaveUp { attempts, reason } = delivery else {
        panic!("delivered despite 400: {delivery:?}");
    };
    assert_eq!(attempts, 1);
    assert_eq!(sink.received().len(), 1);
    assert_eq!(reason, "Slack answered 400 Bad Request: invalid_payload");
}

#[tokio::test]
async fn times_out_a_silent_server() {
    let sink = Sink::scripted(vec![Reply::Hang, Reply::Hang]).await;
    let policy = RetryPolicy {
        attempts: 2,
        timeout: Duration::from_millis(200),
        ..quick_policy()
    };
    let delivery = post_message(&sink.url, &message(), &policy).await;
    let SlackDelivery::GaveUp { attempts, reason } = delivery else {
        panic!("delivered by a silent server: {delivery:?}");
    };
    assert_eq!(attempts, 2);
    assert!(reason.starts_with("no answer within 200ms"), "{reason}");
}

#[tokio::test]
async fn zero_attempts_still_tries_once_and_bad_urls_do_not_panic() {
    let sink = Sink::scripted(vec![]).await;
    let policy = RetryPolicy {
        attempts: 0,
        ..quick_policy()
    };
    let delivery = post_message(&sink.url, &message(), &policy).await;
    assert_eq!(delivery, SlackDelivery::Delivered { attempts: 1 });
    let delivery = post_message("not a url SECRET", &message(), &policy).await;
    assert_eq!(
        delivery,
        SlackDelivery::GaveUp {
            attempts: 0,
            reason: "the webhook URL is not a valid URL".into()
        }
    );
}

/// Reading the webhook URL from Secrets Manager (the local AWS stack).
#[tokio::test]
async fn webhook_url_reads_plain_and_json_secrets() {
    let local = LocalStack::start().expect("local AWS stack");
    let client = aws_sdk_secretsmanager::Client::new(&local.sdk_config().await);
    let put = |name: &'static str, value: &'static str| {
        let client = client.clone();
        async move {
            client
                .create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .unwrap();
        }
    };

    let plain = "https://hooks.slack.com/services/T0/B0/PLAINSECRET";
    put("slack/plain", plain).await;
    assert_eq!(webhook_url(&client, "slack/plain").await.unwrap(), plain);

    put(
        "slack/json",
        r##"{"webhook_url": " https://hooks.slack.com/services/T0/B0/JSONSECRET ", "channel": "#ops"}"##,
    )
    .await;
    assert_eq!(
        webhook_url(&client, "slack/json").await.unwrap(),
        "https://hooks.slack.com/services/T0/B0/JSONSECRET"
    );

    put("slack/local", "http://127.0.0.1:9/hook\n").await;
    assert_eq!(
        webhook_url(&client, "slack/local").await.unwrap(),
        "http://127.0.0.1:9/hook"
    );

    let invalid = [
        (
            "slack/no-field",
            r#"{"url": "https://hooks.slack.com/services/T0/B0/NOFIELDSECRET"}"#,
            "without a string field `webhook_url`",
        ),
        ("slack/not-url", "NOTAURL-hunter2", "valid URL"),
        (
            "slack/http",
            "http://hooks.slack.com/services/T0/B0/HTTPSECRET",
            "https:// URL",
        ),
        (
            "slack/bad-json",
            r#"{"webhook_url": "https://x/BADJSONSECRET""#,
            "does not parse",
        ),
    ];
    for (name, value, problem) in invalid {
        put(name, value).await;
        let err = webhook_url(&client, name).await.unwrap_err();
        assert!(matches!(err, SlackError::InvalidSecret { .. }), "{err:?}");
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(shown.contains(name), "{shown}");
            assert!(shown.contains(problem), "{shown}");
            assert!(!shown.contains(value), "{shown}");
            assert!(
                !shown.contains("SECRET") && !shown.contains("hunter2"),
                "{shown}"
            );
        }
    }

    client
        .create_secret()
        .name("slack/binary")
        .secret_binary(Blob::new(
            b"https://hooks.slack.com/services/BINARY".to_vec(),
        ))
        .send()
        .await
        .unwrap();
    let err = webhook_url(&client, "slack/binary").await.unwrap_err();
    assert!(err.to_string().contains("binary"), "{err}");

    let err = webhook_url(&client, "slack/missing").await.unwrap_err();
    assert!(matches!(err, SlackError::SecretNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("`slack/missing`"), "{err}");
}

/// The notification both `cascade run` and the `notify` function send: the webhook URL
/// from its secret, the message built from the report, one client for several posts.
#[tokio::test]
async fn a_report_is_told_through_the_webhook_its_secret_holds() {
    let local = LocalStack::start().expect("local AWS stack");
    let secrets = aws_sdk_secretsmanager::Client::new(&local.sdk_config().await);
    let sink = Sink::scripted(vec![status(200)]).await;
    secrets
        .create_secret()
        .name("slack/hook")
        .secret_string(json!({ "webhook_url": sink.url }).to_string())
        .send()
        .await
        .unwrap();
    let report = Report {
        schema_version: REPORT_SCHEMA_VERSION,
        batch_id: "b-7".into(),
        execution: "cli".into(),
        secrets: Vec::new(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        totals: Totals::default(),
        stacks: Vec::new(),
        attention: Vec::new(),
        notes: Vec::new(),
    };
    let location = "s3://reports/batches/b-7/report.json";
    let slack = SlackClient::new(quick_policy()).unwrap();

    let told = slack
        .notify_report(&secrets, "slack/hook", &report, Some(location))
        .await;
    assert!(
        matches!(told, Notification::Delivered { attempts: 1 }),
        "{told:?}"
    );
    let received = sink.received();
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body, slack_message(&report, Some(location)));

    let told = slack
        .notify_report(&secrets, "slack/missing", &report, Some(location))
        .await;
    assert!(
        matches!(
            told,
            Notification::NotSent(SlackError::SecretNotFound { .. })
        ),
        "{told:?}"
    );
    assert_eq!(sink.received().len(), 1, "nothing sent without a webhook");
}
