//! `discover`: resolves the batch's secrets, plans every stack of the account, saves the
//! batch (manifest, per-stack state and the map's items, in S3) and returns where the stacks
//! to refresh are.
//! A manual ticket's stacks limit the batch; a named stack that is not in the plan is a
//! note of the batch. Retried with the same batch id, it returns the batch already saved.

use cascade_aws::AwsError;
use cascade_aws::discovery::plan_secrets;
use cascade_aws::secrets::resolve_secret;
use cascade_aws::template_cache::TemplateCache;
use cascade_core::batch::BatchManifest;
use cascade_core::intake::ExecutionInput;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::DiscoverConfig;
use crate::error::HandlerError;
use crate::handlers::Context;

/// Templates read at once.
const CONCURRENCY: usize = 8;

/// The event: the execution and its input.
#[derive(Debug, Deserialize)]
pub struct DiscoverEvent {
    /// The execution id (ARN).
    pub execution: String,
    /// The execution input, as the gatekeeper wrote it.
    pub input: ExecutionInput,
}

/// The result: the batch, and where its stacks to refresh are. The names stay in S3 (the
/// map's `ItemReader` reads them), so the payload is the same size for 3 stacks or 20,000.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiscoverResult {
    /// The batch.
    pub batch_id: String,
    /// The key, in the application's bucket, of the JSON array of the stack names to
    /// refresh, in order.
    pub items_key: String,
    /// How many stacks that array names.
    pub stack_count: usize,
    /// Seconds between two looks at an updating stack.
    pub wait_seconds: u32,
}

/// Handles a `discover` event.
pub async fn handle(
    context: &Context<DiscoverConfig>,
    event: DiscoverEvent,
) -> Result<DiscoverResult, HandlerError> {
    let refresher = context.refresher();
    let input = event.input;
    let batch_id = input.batch_id.clone();
    // As given: the template's PollSeconds (MinValue 5) keeps production waits sane, and a
    // local run (a benchmark) may wait 0 s.
    let wait_seconds = input.options.poll_seconds;
    let result = |manifest: &BatchManifest, items_key: String| DiscoverResult {
        batch_id: manifest.batch_id.clone(),
        items_key,
        stack_count: manifest.plan.stacks.len(),
        wait_seconds,
    };
    if let Some(existing) = refresher.batches().find_manifest(&batch_id).await? {
        info!(batch = %batch_id, "batch already discovered: returning it");
        let items_key = refresher.batches().save_map_items(&existing).await?;
        return Ok(result(&existing, items_key));
    }

    let mut secrets = Vec::new();
    let mut notes = Vec::new();
    for id in &input.secrets {
        // Another partition, account or region than this execution's: not asked about.
        if let Some(foreign) = cascade_core::intake::foreign_secret(id, &event.execution) {
            warn!(secret = %id, "skipping a ticket's secret: {foreign}");
            notes.push(format!("skipped secret {id}: {foreign}"));
            continue;
        }
        match resolve_secret(&context.clients, id).await {
            Ok(secret) => secrets.push(secret),
            Err(e @ (AwsError::SecretNotFound(_) | AwsError::SecretDeleted(_))) => {
                warn!(secret = %id, "skipping a ticket's secret: {e}");
                notes.push(format!("skipped secret {id}: {e}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut plan = if secrets.is_empty() {
        cascade_core::plan::Plan::empty(Vec::new())
    } else {
        // Templates are kept in the bucket by stack id and last-updated time: the next
        // batch reads from CloudFormation only the stacks updated since.
        let clients = context
            .clients
            .clone()
            .with_template_cache(TemplateCache::new(refresher.batches().store().clone()));
        plan_secrets(&clients, &secrets, input.options.strategy, CONCURRENCY).await?
    };
    if let Some(only) = &input.stacks {
        for name in plan.keep_stacks(only) {
            warn!(stack = %name, "a ticket names a stack that is not in the plan");
            notes.push(format!(
                "stack {name} does not depend on these secrets (or does not exist): not refreshed"
            ));
        }
    }
    let mut manifest = BatchManifest::new(
        &batch_id,
        event.execution,
        jiff::Timestamp::now(),
        secrets,
        input.options.strategy,
        plan,
    );
    manifest.notes = notes;
    let manifest = refresher.batches().create(manifest).await?;
    let items_key = refresher.batches().save_map_items(&manifest).await?;
    info!(
        batch = %batch_id,
        to_refresh = manifest.plan.stacks.len(),
        skipped = manifest.plan.skipped.len(),
        "batch discovered"
    );
    Ok(result(&manifest, items_key))
}
