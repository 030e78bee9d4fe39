//! Where a batch lives: its manifest, the state of each stack, the saved originals, the
//! templates sent through S3 and the report, over a [`Store`] (S3 or a local directory).
//! One owner for the keys of `cascade_core::batch::keys`, used by the CLI and the Lambda
//! handlers alike.

use cascade_core::batch::{BatchManifest, SavedOriginal, keys};
use cascade_core::plan::{Plan, StrategyChoice};
use cascade_core::refresh::{StackState, UpdateStep};
use cascade_core::report::Report;
use cascade_core::report::markdown::render_markdown;
use cascade_core::secret::Secret;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::store::{Store, StoreError};

/// Stack states read or written at once (S3 answers each in tens of milliseconds: a batch
/// of 2,000 stacks takes seconds, not a minute).
const CONCURRENCY: usize = 16;

/// The batches kept in a store.
#[derive(Debug, Clone, Copy)]
pub struct BatchStore<'a> {
    store: &'a Store,
}

impl<'a> BatchStore<'a> {
    /// The batches kept in `store`.
    pub fn new(store: &'a Store) -> Self {
        BatchStore { store }
    }

    /// The store underneath.
    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// Saves a new batch: its manifest and the initial state of every stack.
    pub async fn create(&self, manifest: BatchManifest) -> Result<BatchManifest, StoreError> {
        self.save_manifest(&manifest).await?;
        let batch_id = manifest.batch_id.as_str();
        stream::iter(manifest.initial_states())
            .map(|state| async move { self.save_state(batch_id, &state).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
        Ok(manifest)
    }

    /// Saves the names of the stacks to refresh, in order, where the state machine's map
    /// reads them ([`keys::map_items`]); returns the key. Written again when discovery is
    /// retried, so it is there whenever the manifest is.
    pub async fn save_map_items(&self, manifest: &BatchManifest) -> Result<String, StoreError> {
        let key = keys::map_items(&manifest.batch_id);
        let names: Vec<&str> = manifest
            .plan
            .stacks
            .iter()
            .map(|s| s.stack_name.as_str())
            .collect();
        self.store.put_json(&key, &names).await?;
        Ok(key)
    }

    /// Starts a batch now: a new manifest for `plan`, saved with every stack's initial
    /// state.
    pub async fn start(
        &self,
        batch_id: &str,
        execution: &str,
        secrets: &[Secret],
        strategy: StrategyChoice,
        plan: Plan,
    ) -> Result<BatchManifest, StoreError> {
        let manifest = BatchManifest::new(
            batch_id,
            execution,
            jiff::Timestamp::now(),
            secrets.to_vec(),
            strategy,
            plan,
        );
        self.create(manifest).await
    }

    /// Saves a batch's manifest (once at the start, again when a retried stack is planned
    /// anew).
    pub async fn save_manifest(&self, manifest: &BatchManifest) -> Result<(), StoreError> {
        self.store
            .put_json(&keys::manifest(&manifest.batch_id), manifest)
            .await
    }

    /// A batch's manifest, or `None` when there is no such batch.
    pub async fn find_manifest(&self, batch_id: &str) -> Result<Option<BatchManifest>, StoreError> {
        self.store.get_json(&keys::manifest(batch_id)).await
    }

    /// A batch's manifest; no such batch is [`StoreError::UnknownBatch`].
    pub async fn manifest(&self, batch_id: &str) -> Result<BatchManifest, StoreError> {
        self.find_manifest(batch_id)
            .await?
            .ok_or_else(|| StoreError::UnknownBatch(batch_id.to_string()))
    }

    /// One stack's state, or `None` before it was first saved.
    pub async fn state(
        &self,
        batch_id: &str,
        stack_name: &str,
    ) -> Result<Option<StackState>, StoreError> {
        self.store
            .get_json(&keys::state(batch_id, stack_name))
            .await
    }

    /// The state of every stack of a batch, in plan order (planned, then skipped); a stack
    /// whose state was never saved is in its initial state.
    pub async fn states(&self, manifest: &BatchManifest) -> Result<Vec<StackState>, StoreError> {
        let batch_id = manifest.batch_id.as_str();
        stream::iter(manifest.initial_states())
            .map(|initial| async move {
                let saved = self.state(batch_id, &initial.stack_name).await?;
                Ok::<_, StoreError>(saved.unwrap_or(initial))
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await
    }

    /// Saves a stack's state.
    pub async fn save_state(&self, batch_id: &str, state: &StackState) -> Result<(), StoreError> {
        self.store
            .put_json(&keys::state(batch_id, &state.stack_name), state)
            .await
    }

    /// The original a batch saved of a stack before changing it, if it did.
    pub async fn original(
        &self,
        batch_id: &str,
        stack_name: &str,
    ) -> Result<Option<SavedOriginal>, StoreError> {
        self.store
            .get_json(&keys::original(batch_id, stack_name))
            .await
    }

    /// Saves a stack's original.
    pub async fn save_original(
        &self,
        batch_id: &str,
        original: &SavedOriginal,
    ) -> Result<(), StoreError> {
        self.store
            .put_json(&keys::original(batch_id, &original.stack_name), original)
            .await
    }

    /// Uploads a template too large to send inline; returns the key it has.
    pub async fn put_template(
        &self,
        batch_id: &str,
        stack_name: &str,
        step: UpdateStep,
        body: String,
    ) -> Result<String, StoreError> {
        let key = keys::template(batch_id, stack_name, step);
        self.store
            .put(&key, body.into_bytes(), "application/json")
            .await?;
        Ok(key)
    }

    /// Saves the report as JSON and Markdown; returns where the JSON is.
    pub async fn write_report(&self, report: &Report) -> Result<String, StoreError> {
        let json_key = keys::report_json(&report.batch_id);
        self.store.put_json(&json_key, report).await?;
        self.store
            .put(
                &keys::report_markdown(&report.batch_id),
                render_markdown(report).into_bytes(),
                "text/markdown",
            )
            .await?;
        Ok(self.store.location(&json_key))
    }

    /// The most recent batch: the one whose manifest was created last (batch ids are not
    /// ordered by time: the state machine's are hashes).
    pub async fn latest(&self) -> Result<Option<String>, StoreError> {
        let keys = self.store.list(keys::BATCHES).await?;
        let mut latest: Option<(jiff::Timestamp, String)> = None;
        for batch in keys
            .iter()
            .filter_map(|k| k.strip_prefix(keys::BATCHES)?.strip_suffix("/batch.json"))
        {
            let Some(manifest) = self.find_manifest(batch).await? else {
                continue;
            };
            let candidate = (manifest.created_at, batch.to_string());
            if latest.as_ref().is_none_or(|best| candidate > *best) {
                latest = Some(candidate);
            }
        }
        Ok(latest.map(|(_, id)| id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_latest_batch_is_the_last_created_not_the_largest_id() {
        let dir = std::env::temp_dir().join(format!("cascade-latest-{}", std::process::id()));
        let store = Store::Local(dir.clone());
        let batches = BatchStore::new(&store);
        assert_eq!(batches.latest().await.unwrap(), None);
        for (id, at) in [
            ("ffff0000", "2026-11-26T01:00:00Z"),
            ("0000ffff", "2026-11-26T02:00:00.5Z"),
            ("20261126T013000Z-abc", "2026-11-26T01:30:00Z"),
        ] {
            let mut manifest = batches
                .start(id, "cli", &[], StrategyChoice::Auto, Plan::empty(vec![]))
                .await
                .unwrap();
            manifest.created_at = at.parse().unwrap();
            batches.save_manifest(&manifest).await.unwrap();
        }
        assert_eq!(batches.latest().await.unwrap().as_deref(), Some("0000ffff"));
        assert!(matches!(
            batches.manifest("nope").await,
            Err(StoreError::UnknownBatch(id)) if id == "nope"
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
