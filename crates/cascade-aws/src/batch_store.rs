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

    /// Saves a new batch: its manifest, each planned stack's slice of it and the initial
    /// state of every stack.
    pub async fn create(&self, manifest: BatchManifest) -> Result<BatchManifest, StoreError> {
        self.save_manifest(&manifest).await?;
        let batch_id = manifest.batch_id.as_str();
        stream::iter(manifest.stack_manifests())
            .map(|slice| async move { self.save_stack_manifest(&slice).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
        stream::iter(manifest.initial_states())
            .map(|state| async move { self.save_state(batch_id, &state).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
        Ok(manifest)
    }

    /// Saves a planned stack's slice of the manifest ([`BatchManifest::for_stack`]), the
    /// one stack of its plan.
    pub async fn save_stack_manifest(&self, slice: &BatchManifest) -> Result<(), StoreError> {
        let Some(planned) = slice.plan.stacks.first() else {
            return Ok(());
        };
        self.store
            .put_json(
                &keys::stack_manifest(&slice.batch_id, &planned.stack_name),
                slice,
            )
            .await
    }

    /// What the steps of `stack` need of its batch's manifest: its slice, or, for a batch
    /// saved before slices were, the whole manifest (it holds the stack too). No such
    /// batch is [`StoreError::UnknownBatch`].
    pub async fn stack_manifest(
        &self,
        batch_id: &str,
        stack: &str,
    ) -> Result<BatchManifest, StoreError> {
        match self
            .store
            .get_json(&keys::stack_manifest(batch_id, stack))
            .await?
        {
            Some(slice) => Ok(slice),
            None => self.manifest(batch_id).await,
        }
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

    #[tokio::test]
    async fn a_step_reads_its_stacks_slice_or_the_whole_manifest_of_an_older_batch() {
        let dir = std::env::temp_dir().join(format!("cascade-slices-{}", std::process::id()));
        let store = Store::Local(dir.clone());
        let batches = BatchStore::new(&store);
        let mut plan = Plan::empty(vec![]);
        plan.stacks = ["a", "b"]
            .iter()
            .map(|name| cascade_core::plan::StackPlan {
                stack_name: name.to_string(),
                stack_id: format!("id-{name}"),
                strategy: cascade_core::plan::Strategy::Pin,
                secrets: vec![],
                resources: vec![],
                closure: vec![],
                outputs: vec![],
                needs_placeholder: false,
                actions: vec![],
                references: vec![],
                template_digest: String::new(),
                notes: vec![],
            })
            .collect();
        let manifest = batches
            .start("b-slices", "cli", &[], StrategyChoice::Auto, plan)
            .await
            .unwrap();
        let b = batches.stack_manifest("b-slices", "b").await.unwrap();
        assert_eq!(Some(b), manifest.for_stack("b"));
        // A batch saved before slices were: the whole manifest.
        std::fs::remove_file(dir.join(keys::stack_manifest("b-slices", "a"))).unwrap();
        let a = batches.stack_manifest("b-slices", "a").await.unwrap();
        assert_eq!(a, manifest);
        assert!(matches!(
            batches.stack_manifest("nope", "a").await,
            Err(StoreError::UnknownBatch(id)) if id == "nope"
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
