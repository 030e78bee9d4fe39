//! `cascade enqueue` against the local stack (`cascade status` is in status_cli.rs).

use std::process::{Command, Output};

use cascade_core::intake::{TicketParse, TicketSource, parse_ticket};
use cascade_tests::LocalStack;

fn cascade(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cascade"));
    command
        .args(args)
        .env_remove("CASCADE_QUEUE_URL")
        .env_remove("CASCADE_STACK_NAME");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("cascade runs")
}

#[tokio::test]
async fn enqueue_sends_a_manual_ticket_the_gatekeeper_reads() {
    let local = LocalStack::start().unwrap();
    let config = local.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let arn = sm
        .create_secret()
        .name("prod/db")
        .secret_string("x")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs
        .create_queue()
        .queue_name("tickets.fifo")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::ContentBasedDeduplication,
            "true",
        )
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let env = local.env();

    let out = cascade(
        &[
            "enqueue",
            "--secret",
            "prod/db",
            "--stack",
            "app",
            "--requested-by",
            "alice",
            "--queue-url",
            &queue,
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("queued a ticket for prod/db"));

    let waiting = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        waiting
            .attributes()
            .and_then(
                |a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            )
            .map(String::as_str),
        Some("1")
    );

    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .send()
        .await
        .unwrap();
    let message = &received.messages()[0];
    let TicketParse::Ticket(ticket) =
        parse_ticket(message.body().unwrap(), message.message_id().unwrap()).unwrap()
    else {
        panic!("the gatekeeper would ignore it");
    };
    assert_eq!(ticket.source, TicketSource::Manual);
    assert_eq!(ticket.secret_id, arn);
    assert_eq!(ticket.actor.as_deref(), Some("alice"));
    assert_eq!(ticket.stacks, Some(vec!["app".to_string()]));

    let out = cascade(
        &["enqueue", "--secret", "prod/missing", "--queue-url", &queue],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("secret `prod/missing` was not found"));
}
