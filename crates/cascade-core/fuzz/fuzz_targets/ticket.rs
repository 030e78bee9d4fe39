//! The ticket parser (`cascade_core::intake`): SQS bodies carrying EventBridge events or
//! manual tickets.
//!
//! Properties, beyond "never panics":
//! - parsing is deterministic;
//! - a ticket names a secret and survives its wire form (the JSON the execution input
//!   carries) unchanged;
//! - an error never quotes the message: a body holding the canary never yields an error
//!   text holding it (bodies may carry secret values);
//! - any set of tickets coalesces into a batch whose execution name Step Functions accepts
//!   (1-80 characters of `[A-Za-z0-9_-]`) and is the same for the same messages.
#![no_main]

use cascade_core::intake::{Ticket, TicketParse, coalesce, execution_name, parse_ticket};
use libfuzzer_sys::fuzz_target;

const CANARY: &str = "CANARY";

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_ticket(body, "message-1");
    assert_eq!(parsed, parse_ticket(body, "message-1"), "not deterministic");
    match parsed {
        Ok(TicketParse::Ticket(ticket)) => {
            assert!(!ticket.secret_id.is_empty(), "a ticket names its secret");
            let wire = serde_json::to_string(&ticket).expect("a ticket prints");
            let back: Ticket = serde_json::from_str(&wire)
                .unwrap_or_else(|e| panic!("the wire form does not read back: {e}"));
            assert_eq!(back, ticket, "the wire form changes the ticket");

            let items = vec![
                ("message-1".to_string(), ticket.clone()),
                ("message-0".to_string(), ticket),
            ];
            let batch = coalesce(items.clone());
            let name = execution_name(&batch);
            assert!((1..=80).contains(&name.len()), "{name:?}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{name:?}"
            );
            assert_eq!(batch.secrets.len(), 1, "one secret, twice, is one secret");
            assert_eq!(name, execution_name(&coalesce(items.into_iter().rev())));
        }
        Ok(TicketParse::Ignored(reason)) => {
            assert!(!reason.is_empty(), "an ignored message says why");
            assert!(
                !reason.contains(CANARY),
                "the reason quotes the message: {reason}"
            );
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                !text.contains(CANARY),
                "the error quotes the message: {text}"
            );
        }
    }
});
