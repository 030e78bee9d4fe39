//! What the state machine is started with: a batch and how to run it.

use serde::{Deserialize, Serialize};

use super::{Batch, Ticket};
use crate::plan::StrategyChoice;

/// How the execution runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// The refresh strategy asked for.
    pub strategy: StrategyChoice,
    /// Seconds between two looks at an updating stack.
    pub poll_seconds: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strategy: StrategyChoice::Auto,
            poll_seconds: crate::defaults::MAX_POLL_SECONDS as u32,
        }
    }
}

/// The state machine's input. Its JSON is deterministic (same batch and options, same
/// bytes): StartExecution is idempotent only for the same name AND the same input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionInput {
    /// The batch id.
    pub batch_id: String,
    /// The tickets, ordered by message id.
    pub tickets: Vec<Ticket>,
    /// Each changed secret once.
    pub secrets: Vec<String>,
    /// The stacks to limit the run to; `None` means every dependent stack.
    pub stacks: Option<Vec<String>>,
    /// How to run.
    pub options: RunOptions,
}

impl ExecutionInput {
    /// The input for a batch.
    pub fn new(batch: &Batch, options: &RunOptions) -> Self {
        ExecutionInput {
            batch_id: batch.batch_id.clone(),
            tickets: batch.tickets.clone(),
            secrets: batch.secrets.clone(),
            stacks: batch.stacks.clone(),
            options: options.clone(),
        }
    }

    /// The input as compact JSON (fields in declaration order, lists in batch order).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an execution input always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::super::coalesce;
    use super::super::fixtures::*;
    use super::*;
    use crate::secret::AWSCURRENT;
    use serde_json::{Value, json};

    #[test]
    fn execution_input_json_is_byte_identical_and_round_trips() {
        let items = || {
            vec![
                ("m2".to_string(), ticket(&cloudtrail("PutSecretValue"))),
                (
                    "m1".to_string(),
                    ticket(&native("mySecret", ARN, AWSCURRENT)),
                ),
                ("m3".to_string(), manual("other", Some(&["web"]))),
            ]
        };
        let options = RunOptions {
            strategy: StrategyChoice::Pin,
            poll_seconds: 10,
        };
        let first = ExecutionInput::new(&coalesce(items()), &options).to_json();
        let mut reversed = items();
        reversed.reverse();
        let second = ExecutionInput::new(&coalesce(reversed), &options).to_json();
        assert_eq!(first, second);
        assert!(!first.contains(CANARY));
        let back: ExecutionInput = serde_json::from_str(&first).unwrap();
        assert_eq!(back.to_json(), first);
        let value: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(
            value["options"],
            json!({"strategy": "pin", "poll_seconds": 10})
        );
        assert_eq!(value["tickets"][0]["source"], json!("label-updated"));
        assert_eq!(value["tickets"][1]["source"], json!("cloudtrail"));
        assert_eq!(value["tickets"][2]["source"], json!("manual"));
        assert_eq!(value["secrets"], json!([ARN, "other"]));
    }
}
