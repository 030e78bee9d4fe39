//! The ticket dead-letter queue: what sits in it and why the gatekeeper could not read it,
//! and moving it back to the ticket queue once the cause is fixed.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use cascade_core::intake::{MESSAGE_GROUP, TicketParse, parse_ticket};
use jiff::Timestamp;
use serde::Serialize;

use crate::Clients;
use crate::error::AwsError;
use crate::status::sent_at;

/// One dead letter. Its body is not kept: only what reading it says.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The message id.
    pub message_id: String,
    /// When it was first sent, when SQS says.
    pub sent_at: Option<Timestamp>,
    /// How often it was received.
    pub receive_count: Option<u32>,
    /// Its size in bytes.
    pub bytes: usize,
    /// What reading it as a ticket says now: the parse error, or what it asks for.
    pub reading: String,
}

/// Looks at up to 10 messages of the dead-letter queue at `url` without taking them (they
/// stay visible), oldest first.
pub async fn peek(clients: &Clients, url: &str) -> Result<Vec<DeadLetter>, AwsError> {
    let received = clients
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| AwsError::call("sqs:ReceiveMessage", e))?;
    let mut letters: Vec<DeadLetter> = received
        .messages()
        .iter()
        .map(|m| {
            let body = m.body().unwrap_or_default();
            let id = m.message_id().unwrap_or_default();
            DeadLetter {
                message_id: id.to_string(),
                sent_at: sent_at(m),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok()),
                bytes: body.len(),
                reading: match parse_ticket(body, id) {
                    Ok(TicketParse::Ticket(ticket)) => {
                        format!("readable now: a ticket for {}", ticket.secret_id)
                    }
                    Ok(TicketParse::Ignored(reason)) => format!("ignored: {reason}"),
                    Err(error) => error.to_string(),
                },
            }
        })
        .collect();
    letters.sort_by_key(|l| l.sent_at);
    Ok(letters)
}

/// Moves every message of the dead-letter queue at `from` back to the ticket queue `to`
/// (the one message group tickets share): each is sent again, then deleted, so none is
/// lost. Returns how many were moved.
pub async fn redrive(clients: &Clients, from: &str, to: &str) -> Result<usize, AwsError> {
    let mut moved = 0;
    loop {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .send()
            .await
            .map_err(|e| AwsError::call("sqs:ReceiveMessage", e))?;
        if received.messages().is_empty() {
            return Ok(moved);
        }
        for message in received.messages() {
            let id = message.message_id().unwrap_or_default();
            clients
                .sqs
                .send_message()
                .queue_url(to)
                .message_group_id(MESSAGE_GROUP)
                .message_deduplication_id(format!("redrive-{id}"))
                .message_body(message.body().unwrap_or_default())
                .send()
                .await
                .map_err(|e| AwsError::call("sqs:SendMessage", e))?;
            clients
                .sqs
                .delete_message()
                .queue_url(from)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| AwsError::call("sqs:DeleteMessage", e))?;
            moved += 1;
        }
    }
}
