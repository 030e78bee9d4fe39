//! The tickets of one receive, coalesced into one batch: each secret once, the stacks
//! to limit the run to, a batch id derived from the messages and the execution's name.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Ticket, TicketSource, is_full_secret_arn};
use crate::secret::secret_name;

/// Longest execution name Step Functions accepts.
const MAX_EXECUTION_NAME: usize = 80;

/// The tickets of one receive, coalesced: each secret once, the stacks to limit the run
/// to (if any), and a batch id derived from the messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// First 16 hex characters of SHA-256 over the sorted message ids: the same
    /// messages always give the same batch (and so the same execution name).
    pub batch_id: String,
    /// The tickets, ordered by message id.
    pub tickets: Vec<Ticket>,
    /// Each changed secret once (its ARN when a ticket has it), sorted.
    pub secrets: Vec<String>,
    /// The stacks to refresh, when every ticket is a manual one with a subset (their
    /// union, sorted); `None` means every dependent stack.
    pub stacks: Option<Vec<String>>,
}

/// Coalesces `(message id, ticket)` pairs into one batch. A secret named by its name in
/// one ticket and by its ARN in another counts once.
pub fn coalesce(items: impl IntoIterator<Item = (String, Ticket)>) -> Batch {
    let mut items: Vec<(String, Ticket)> = items.into_iter().collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let batch_id = batch_id(items.iter().map(|(message_id, _)| message_id.as_str()));
    let tickets: Vec<Ticket> = items.into_iter().map(|(_, ticket)| ticket).collect();
    Batch {
        batch_id,
        secrets: secrets(&tickets),
        stacks: stacks(&tickets),
        tickets,
    }
}

/// First 16 hex characters of SHA-256 over the (sorted) message ids, one a line.
fn batch_id<'a>(message_ids: impl Iterator<Item = &'a str>) -> String {
    let lines: String = message_ids.flat_map(|id| [id, "\n"]).collect();
    let mut digest = crate::digest::sha256_hex(lines);
    digest.truncate(16);
    digest
}

/// Each secret once, sorted: by its full ARN when a ticket has it, else as named.
fn secrets(tickets: &[Ticket]) -> Vec<String> {
    // Name → how to name the secret in the batch: a full ARN wins over anything else.
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    for ticket in tickets {
        let arn = ticket
            .secret_arn
            .as_deref()
            .filter(|arn| is_full_secret_arn(arn))
            .or_else(|| is_full_secret_arn(&ticket.secret_id).then_some(ticket.secret_id.as_str()));
        let key = secret_name(arn.unwrap_or(&ticket.secret_id)).to_string();
        match (secrets.get(&key), arn) {
            (Some(known), _) if is_full_secret_arn(known) => {}
            (Some(_), None) => {}
            (_, Some(arn)) => {
                secrets.insert(key, arn.to_string());
            }
            (None, None) => {
                secrets.insert(key, ticket.secret_id.clone());
            }
        }
    }
    let mut secrets: Vec<String> = secrets.into_values().collect();
    secrets.sort();
    secrets
}

/// The union of the stack subsets, sorted, when every ticket is a manual one with a
/// subset; `None` (every dependent stack) otherwise.
fn stacks(tickets: &[Ticket]) -> Option<Vec<String>> {
    let all_subsets = !tickets.is_empty()
        && tickets
            .iter()
            .all(|t| t.source == TicketSource::Manual && t.stacks.is_some());
    all_subsets.then(|| {
        let union: BTreeSet<&String> = tickets
            .iter()
            .flat_map(|t| t.stacks.iter().flatten())
            .collect();
        union.into_iter().cloned().collect()
    })
}

/// The Step Functions execution name of a batch: `cascade-<batch_id>` (at most 80
/// characters of `[A-Za-z0-9_-]`).
pub fn execution_name(batch: &Batch) -> String {
    let mut name: String = format!("cascade-{}", batch.batch_id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(MAX_EXECUTION_NAME);
    name
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::secret::AWSCURRENT;

    #[test]
    fn ten_tickets_for_three_secrets_make_three_secrets() {
        let a_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AAAAAA";
        let b_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/b-BBBBBB";
        let mut items = Vec::new();
        for i in 0..4 {
            let t = ticket(&native("a", a_arn, AWSCURRENT));
            items.push((format!("m{i}"), t));
        }
        for i in 4..7 {
            let mut t = ticket(&native("prod/b", b_arn, AWSCURRENT));
            if i == 5 {
                t.secret_arn = None; // named by its name only
            }
            items.push((format!("m{i}"), t));
        }
        items.push(("m7".into(), manual(b_arn, None)));
        items.push(("m8".into(), manual("c", None)));
        items.push((
            "m9".into(),
            manual(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:c",
                None,
            ),
        ));
        let batch = coalesce(items);
        assert_eq!(batch.tickets.len(), 10);
        assert_eq!(
            batch.secrets,
            vec![a_arn.to_string(), b_arn.to_string(), "c".to_string()]
        );
        assert_eq!(batch.stacks, None);
    }

    #[test]
    fn an_arn_wins_over_a_name_whatever_the_order() {
        for order in [["m1", "m2"], ["m2", "m1"]] {
            let batch = coalesce([
                (order[0].to_string(), manual("mySecret", None)),
                (order[1].to_string(), manual(ARN, None)),
            ]);
            assert_eq!(batch.secrets, vec![ARN.to_string()]);
        }
    }

    #[test]
    fn stack_subsets_only_when_every_ticket_is_manual_with_one() {
        let subset = coalesce([
            ("m1".to_string(), manual("a", Some(&["web", "api"]))),
            ("m2".to_string(), manual("b", Some(&["api", "db"]))),
        ]);
        assert_eq!(
            subset.stacks,
            Some(vec!["api".to_string(), "db".to_string(), "web".to_string()])
        );
        let mixed = coalesce([
            ("m1".to_string(), manual("a", Some(&["web"]))),
            ("m2".to_string(), manual("b", None)),
        ]);
        assert_eq!(mixed.stacks, None);
        let with_event = coalesce([
            ("m1".to_string(), manual("a", Some(&["web"]))),
            (
                "m2".to_string(),
                ticket(&native("mySecret", ARN, AWSCURRENT)),
            ),
        ]);
        assert_eq!(with_event.stacks, None);
        assert_eq!(coalesce([]).stacks, None);
    }

    #[test]
    fn batch_id_depends_on_the_message_ids_only_and_not_their_order() {
        let forward = coalesce([
            ("m1".to_string(), manual("a", None)),
            ("m2".to_string(), manual("b", None)),
        ]);
        let backward = coalesce([
            ("m2".to_string(), manual("b", None)),
            ("m1".to_string(), manual("a", None)),
        ]);
        assert_eq!(forward, backward);
        assert_eq!(forward.batch_id.len(), 16);
        assert!(forward.batch_id.chars().all(|c| c.is_ascii_hexdigit()));
        let other = coalesce([("m1".to_string(), manual("a", None))]);
        assert_ne!(forward.batch_id, other.batch_id);
    }

    #[test]
    fn execution_names_are_valid() {
        let batch = coalesce([("m1".to_string(), manual("a", None))]);
        let name = execution_name(&batch);
        assert_eq!(name, format!("cascade-{}", batch.batch_id));
        assert!(name.len() <= 80);
        let odd = Batch {
            batch_id: format!("x y/{}", "z".repeat(100)),
            ..batch
        };
        let name = execution_name(&odd);
        assert!(name.len() <= 80);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
