//! The refresh steps of one stack (DESIGN.md §2) carried out against CloudFormation, each
//! saving the stack's state: `begin` (save the original, first update), `poll` / `wait`
//! (look at the update), `settle` (what the look means), `finish` (recreate: update back
//! to the original) and `restore` (put back the saved original at any time). What the
//! state becomes is decided in `cascade_core::refresh::state`; the CLI's batch runner and
//! the Lambda `refresh` handler call these steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{Capability, Parameter, Stack};
use cascade_core::batch::{BatchManifest, STATE_SCHEMA_VERSION, SavedOriginal};
use cascade_core::change_set::{ChangeSetState, Intent, Verdict, verdict};
use cascade_core::defaults;
use cascade_core::plan::{StackPlan, Strategy, template_digest};
use cascade_core::refresh::{
    Look, MAX_TEMPLATE_BODY_BYTES, Observation, Settled, StackState, UpdateAnswer, UpdateProgress,
    UpdateStep, change_set_name, client_request_token, manual_restore_change_set_name,
    manual_restore_token, pinned_template, removal_template, update_timed_out,
};
use cascade_core::report::{FailedResource, Outcome};
use cascade_core::stack::{MASKED_VALUE, StackInfo, no_echo_parameters, status_allows_update};
use cascade_core::template::read_template;
use jiff::Timestamp;
use serde_json::Value;
use tracing::{info, warn};

use crate::batch_store::BatchStore;
use crate::change_set::{self, Created, Creation, Described, TemplateSource};
use crate::clients::Clients;
use crate::error::AwsError;
use crate::stacks::{describe_stack, original_template};
use crate::store::{Store, StoreError};

/// How to wait for an update.
#[derive(Debug, Clone)]
pub struct PollPolicy {
    /// First wait between two looks.
    pub initial: Duration,
    /// Longest wait between two looks (the wait grows by half each time).
    pub max: Duration,
    /// Longest wait for one update, from when it was issued, before giving up on it.
    pub max_wait: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_secs(defaults::POLL_SECONDS),
            max: Duration::from_secs(defaults::MAX_POLL_SECONDS),
            max_wait: Duration::from_secs(defaults::MAX_WAIT_SECONDS),
        }
    }
}

/// Settings of the refresh steps.
#[derive(Debug, Clone, Default)]
pub struct RefreshSettings {
    /// How to wait for updates.
    pub poll: PollPolicy,
    /// The role CloudFormation uses for the updates; by default each stack's own.
    pub execution_role_arn: Option<String>,
}

/// Runs the refresh steps against CloudFormation, keeping state in a [`Store`].
#[derive(Debug, Clone)]
pub struct Refresher {
    /// The AWS clients.
    pub clients: Clients,
    /// Where state, originals and large templates go.
    pub store: Store,
    /// Settings.
    pub settings: RefreshSettings,
}

/// A step could not be carried out or recorded (the stack's state says how far it got).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The state store failed: the step's result could not be saved.
    #[error("could not save the state of the batch: {0}")]
    Store(#[from] StoreError),
    /// CloudFormation could not be asked (throttled beyond the retries, network, ...).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The batch never saved an original of the stack, so there is nothing to put back.
    #[error(
        "batch {batch_id} has no saved original of stack {stack_name} (it was never changed by that batch)"
    )]
    NoSavedOriginal {
        /// The batch.
        batch_id: String,
        /// The stack.
        stack_name: String,
    },
    /// A template this step needs cannot be read.
    #[error("the template of {stack_name} cannot be read: {reason}")]
    TemplateUnreadable {
        /// The stack.
        stack_name: String,
        /// Why.
        reason: String,
    },
    /// CloudFormation refused to put the original back (`cascade restore`).
    #[error("CloudFormation rejected the restore of {stack_name}: {message}")]
    RestoreRejected {
        /// The stack.
        stack_name: String,
        /// What CloudFormation said.
        message: String,
    },
    /// The restore was still in progress when the longest wait was over, or was
    /// interrupted.
    #[error("gave up waiting for {stack_name} to finish restoring")]
    RestoreUnfinished {
        /// The stack.
        stack_name: String,
    },
}

const ALL_CAPABILITIES: [Capability; 3] = [
    Capability::CapabilityIam,
    Capability::CapabilityNamedIam,
    Capability::CapabilityAutoExpand,
];

/// The longest wait for a change set to be created (CloudFormation takes seconds; the
/// refresh Lambda function has 300 s for the whole step), unless the poll policy's
/// `max_wait` is shorter. A change set still being created then is deleted and the update
/// counts as rejected.
pub const CHANGE_SET_MAX_WAIT: Duration = Duration::from_secs(240);

/// One update, sent as a change set: everything but the settings every update shares.
struct UpdateRequest<'a> {
    batch_id: &'a str,
    stack_name: &'a str,
    step: UpdateStep,
    body: String,
    parameters: Vec<Parameter>,
    notification_arns: Vec<String>,
    tags: Vec<(String, String)>,
    token: String,
    change_set_name: String,
    /// What the plan means the update to do: the change set may do nothing else.
    intent: Intent,
    /// The stack's template, for the types and DeletionPolicy of its resources.
    template: &'a Value,
}

/// What an update request came to, and the change set executed for it, if one was.
struct Updated {
    answer: UpdateAnswer,
    change_set: Option<String>,
}

impl Updated {
    fn not_executed(answer: UpdateAnswer) -> Self {
        Updated {
            answer,
            change_set: None,
        }
    }

    /// Records the change set executed, then the answer, in `state`.
    fn apply(self, state: &mut StackState, step: UpdateStep, at: Timestamp) {
        if let Some(id) = &self.change_set {
            state.change_set_executed(id);
        }
        state.update_answered(step, self.answer, at);
    }
}

impl Refresher {
    /// The batches in this refresher's store.
    pub fn batches(&self) -> BatchStore<'_> {
        BatchStore::new(&self.store)
    }

    /// Saves a stack's state, saying how it ended once it has.
    pub async fn save_state(&self, batch_id: &str, state: &StackState) -> Result<(), StoreError> {
        match (state.outcome, state.reason.as_deref()) {
            (Some(Outcome::Refreshed), _) => info!(stack = %state.stack_name, "refreshed"),
            (Some(outcome), reason) => {
                warn!(stack = %state.stack_name, %outcome, reason = reason.unwrap_or(""), "stack not refreshed")
            }
            (None, _) => {}
        }
        self.batches().save_state(batch_id, state).await
    }

    async fn conclude(
        &self,
        batch_id: &str,
        state: &mut StackState,
        outcome: Outcome,
        reason: String,
    ) -> Result<(), StepError> {
        state.conclude(outcome, Some(reason), Timestamp::now());
        Ok(self.save_state(batch_id, state).await?)
    }

    /// `begin`: checks the stack is still what was planned, saves its original (once per
    /// batch), and issues the first update: the template without the affected resources
    /// (`recreate`) or with the references pinned to the new version (`pin`).
    pub async fn begin(
        &self,
        manifest: &BatchManifest,
        plan: &StackPlan,
        state: &mut StackState,
    ) -> Result<(), StepError> {
        let batch = manifest.batch_id.as_str();
        state.begin(Timestamp::now());
        self.save_state(batch, state).await?;

        let current = match self.still_planned(plan).await? {
            Ok(current) => current,
            Err(reason) => return self.conclude(batch, state, Outcome::Skipped, reason).await,
        };
        let saved = self.batches().original(batch, &plan.stack_name).await?;
        let current_body = original_template(&self.clients, &plan.stack_name).await?;
        let current_digest = digest_of(&current_body);
        let (body, saved_is_planned) = match planned_body(
            plan,
            saved.as_ref(),
            &current_body,
            current_digest.as_deref(),
        ) {
            Ok(planned) => planned,
            Err(reason) => return self.conclude(batch, state, Outcome::Skipped, reason).await,
        };
        let template = read_template(&body).map_err(|e| StepError::TemplateUnreadable {
            stack_name: plan.stack_name.clone(),
            reason: e.to_string(),
        })?;
        let (first, step) = match first_update(manifest, plan, &current, &template) {
            Ok(first) => first,
            Err(reason) => return self.conclude(batch, state, Outcome::Failed, reason).await,
        };
        let status = current
            .stack_status()
            .map(|s| s.as_str())
            .unwrap_or_default();
        // Already issued by an earlier run of this step that died before saving its
        // state: the stack is updating, or already has our first template.
        if saved_is_planned
            && (UpdateProgress::of_status(status) == UpdateProgress::InProgress
                || current_digest == Some(template_digest(&first)))
        {
            info!(stack = %plan.stack_name, "the first update was already issued: waiting for it");
            // Its change set, for the state and the report (the earlier run died before
            // recording it).
            let name = change_set_name(batch, &plan.stack_name, step, state.attempt);
            if let Some(found) = change_set::describe(&self.clients, &plan.stack_name, &name)
                .await?
                .filter(|d| d.state == ChangeSetState::Executed)
            {
                state.change_set_executed(&found.id);
            }
            state.update_issued(step, Timestamp::now());
            return Ok(self.save_state(batch, state).await?);
        }
        if !status_allows_update(status) {
            let reason = format!("stack status {status} does not allow an update");
            return self.conclude(batch, state, Outcome::Skipped, reason).await;
        }
        if !saved_is_planned {
            let saved = saved_original(&current, current_body, &template, Timestamp::now());
            self.batches().save_original(batch, &saved).await?;
        }

        let issued_at = Timestamp::now();
        let updated = self
            .update(UpdateRequest {
                batch_id: batch,
                stack_name: &plan.stack_name,
                step,
                body: first.to_string(),
                parameters: previous_parameters(&current),
                notification_arns: current.notification_arns().to_vec(),
                tags: stack_tags(&current),
                token: client_request_token(batch, step, state.attempt),
                change_set_name: change_set_name(batch, &plan.stack_name, step, state.attempt),
                intent: Intent::for_update(plan, step),
                template: &template,
            })
            .await?;
        updated.apply(state, step, issued_at);
        Ok(self.save_state(batch, state).await?)
    }

    /// The stack as it is now, when it is still the one planned; else why it is skipped.
    async fn still_planned(&self, plan: &StackPlan) -> Result<Result<Stack, String>, StepError> {
        let Some(current) = describe_stack(&self.clients, &plan.stack_name).await? else {
            return Ok(Err(format!(
                "stack {} was deleted since the plan",
                plan.stack_name
            )));
        };
        if current.stack_id().unwrap_or_default() != plan.stack_id {
            return Ok(Err(format!(
                "stack {} was replaced since the plan (its id changed)",
                plan.stack_name
            )));
        }
        Ok(Ok(current))
    }

    /// `poll`: one look at the stack's status.
    pub async fn poll(&self, stack_name: &str) -> Result<Look, StepError> {
        Ok(match describe_stack(&self.clients, stack_name).await? {
            None => Look::gone(),
            Some(stack) => Look::at(
                stack.stack_status().map(|s| s.as_str()).unwrap_or_default(),
                stack.stack_status_reason().map(str::to_string),
            ),
        })
    }

    /// Looks at the stack's update in flight until it is no longer in progress (backing
    /// off), the longest wait since it was issued is over ([`Observation::GaveUp`]), or
    /// `cancel` is set (`None`).
    pub async fn wait(
        &self,
        state: &StackState,
        cancel: &Arc<AtomicBool>,
    ) -> Result<Option<Observation>, StepError> {
        let issued_at = state.update_issued_at.unwrap_or_else(Timestamp::now);
        self.wait_for(&state.stack_name, issued_at, cancel).await
    }

    async fn wait_for(
        &self,
        stack_name: &str,
        issued_at: Timestamp,
        cancel: &Arc<AtomicBool>,
    ) -> Result<Option<Observation>, StepError> {
        let max_wait = self.settings.poll.max_wait;
        let mut delay = self.settings.poll.initial;
        loop {
            let look = self.poll(stack_name).await?;
            if look.progress != UpdateProgress::InProgress {
                return Ok(Some(Observation::Looked(look)));
            }
            // Give up now rather than sleep past the longest wait.
            let next_look = jiff::SignedDuration::try_from(delay)
                .ok()
                .and_then(|d| Timestamp::now().checked_add(d).ok())
                .unwrap_or(Timestamp::MAX);
            if update_timed_out(issued_at, next_look, max_wait) {
                return Ok(Some(Observation::GaveUp { waited: max_wait }));
            }
            if cancel.load(Ordering::SeqCst) {
                return Ok(None);
            }
            sleep_unless_cancelled(delay, cancel).await;
            delay = (delay + delay / 2).min(self.settings.poll.max);
        }
    }

    /// Applies what was seen of the update in flight to the stack's state and saves it;
    /// a stack whose update ended failed or degraded gets the resources CloudFormation
    /// reported as failed (an update given up on is still running: it has none yet).
    pub async fn settle(
        &self,
        batch_id: &str,
        state: &mut StackState,
        observation: Observation,
    ) -> Result<Settled, StepError> {
        let ended = matches!(observation, Observation::Looked(_));
        let settled = state.settle(batch_id, observation, Timestamp::now());
        if ended && settled.is_failure() {
            state.failed_resources = self
                .failed_resources(&state.stack_name)
                .await
                .unwrap_or_default();
        }
        if settled != Settled::Waiting {
            self.save_state(batch_id, state).await?;
        }
        Ok(settled)
    }

    /// `finish`: updates the stack back to its saved original template and parameters,
    /// byte for byte what was there (after recreate's removal, or before a degraded stack
    /// is retried). The change set may only add `plan`'s closure back.
    pub async fn finish(
        &self,
        batch_id: &str,
        plan: &StackPlan,
        state: &mut StackState,
    ) -> Result<(), StepError> {
        let saved = self.saved_original(batch_id, &state.stack_name).await?;
        let step = UpdateStep::Restore;
        let names = (
            client_request_token(batch_id, step, state.attempt),
            change_set_name(batch_id, &state.stack_name, step, state.attempt),
        );
        let issued_at = Timestamp::now();
        let intent = Intent::for_update(plan, step);
        let updated = self.put_back(batch_id, &saved, names, intent).await?;
        updated.apply(state, step, issued_at);
        Ok(self.save_state(batch_id, state).await?)
    }

    /// `restore`: puts back the saved original of a stack in a batch and waits for it.
    /// Returns the final look at the stack.
    pub async fn restore(
        &self,
        batch_id: &str,
        stack_name: &str,
        cancel: &Arc<AtomicBool>,
    ) -> Result<Look, StepError> {
        let saved = self.saved_original(batch_id, stack_name).await?;
        let issued_at = Timestamp::now();
        let names = (
            manual_restore_token(batch_id, issued_at),
            manual_restore_change_set_name(batch_id, stack_name, issued_at),
        );
        // The change set may add back what the batch's plan removed, nothing else.
        let intent = match self.batches().find_manifest(batch_id).await? {
            Some(manifest) => manifest
                .plan
                .stacks
                .iter()
                .find(|p| p.stack_name == stack_name)
                .map(|plan| Intent::for_update(plan, UpdateStep::Restore)),
            None => None,
        }
        .unwrap_or_else(|| Intent {
            step: Some(UpdateStep::Restore),
            ..Intent::default()
        });
        match self.put_back(batch_id, &saved, names, intent).await?.answer {
            UpdateAnswer::Rejected(message) | UpdateAnswer::Refused(message) => {
                return Err(StepError::RestoreRejected {
                    stack_name: stack_name.to_string(),
                    message,
                });
            }
            UpdateAnswer::Started | UpdateAnswer::NoChange => {}
        }
        match self.wait_for(stack_name, issued_at, cancel).await? {
            Some(Observation::Looked(look)) => Ok(look),
            _ => Err(StepError::RestoreUnfinished {
                stack_name: stack_name.to_string(),
            }),
        }
    }

    async fn saved_original(
        &self,
        batch_id: &str,
        stack_name: &str,
    ) -> Result<SavedOriginal, StepError> {
        self.batches()
            .original(batch_id, stack_name)
            .await?
            .ok_or_else(|| StepError::NoSavedOriginal {
                batch_id: batch_id.to_string(),
                stack_name: stack_name.to_string(),
            })
    }

    /// Sends the saved original back; `names` are the request token and the change set
    /// name.
    async fn put_back(
        &self,
        batch_id: &str,
        saved: &SavedOriginal,
        (token, change_set_name): (String, String),
        intent: Intent,
    ) -> Result<Updated, StepError> {
        let template =
            read_template(&saved.template_body).map_err(|e| StepError::TemplateUnreadable {
                stack_name: saved.stack_name.clone(),
                reason: e.to_string(),
            })?;
        let parameters = saved
            .parameters
            .iter()
            .map(|(key, value)| match value {
                Some(v) => Parameter::builder()
                    .parameter_key(key)
                    .parameter_value(v)
                    .build(),
                None => Parameter::builder()
                    .parameter_key(key)
                    .use_previous_value(true)
                    .build(),
            })
            .collect();
        self.update(UpdateRequest {
            batch_id,
            stack_name: &saved.stack_name,
            step: UpdateStep::Restore,
            body: saved.template_body.clone(),
            parameters,
            notification_arns: saved.notification_arns.clone(),
            tags: saved.tags.clone(),
            token,
            change_set_name,
            intent,
            template: &template,
        })
        .await
    }

    /// Sends one update as a change set, with every capability and the configured
    /// execution role (or none: CloudFormation then keeps the stack's own role; passing
    /// that one explicitly would need iam:PassRole on it); a template over the inline
    /// limit goes through S3. The change set is found by its name first (a retried or
    /// resumed step reuses its own, or finds it executed), else created; once created,
    /// every change is read and [`verdict`] decides: executed, or deleted and refused.
    async fn update(&self, request: UpdateRequest<'_>) -> Result<Updated, StepError> {
        let stack = request.stack_name;
        let name = request.change_set_name.as_str();
        let found = change_set::describe(&self.clients, stack, name)
            .await?
            .filter(|d| d.state != ChangeSetState::Deleted);
        let described = match found {
            Some(found) => {
                info!(stack, change_set = %found.id, "found the change set of an earlier try of this step");
                found
            }
            None => match self.create_change_set(&request).await? {
                Ok(created) => created,
                Err(answer) => return Ok(Updated::not_executed(answer)),
            },
        };
        let described = self.until_created(stack, described).await?;
        let id = described.id.clone();
        let answer = match described.state {
            ChangeSetState::Executed => {
                return Ok(Updated {
                    answer: UpdateAnswer::Started,
                    change_set: Some(id),
                });
            }
            ChangeSetState::Ready => {
                match verdict(&request.intent, request.template, &described.changes) {
                    Verdict::Execute => {
                        match change_set::execute(&self.clients, stack, &id, &request.token).await {
                            Ok(()) => {
                                info!(stack, change_set = %id, changes = described.changes.len(), "change set executed");
                                return Ok(Updated {
                                    answer: UpdateAnswer::Started,
                                    change_set: Some(id),
                                });
                            }
                            Err(e) if e.kind().is_retryable() => return Err(e.into()),
                            Err(e) => UpdateAnswer::Rejected(e.to_string()),
                        }
                    }
                    refused @ Verdict::Refuse(_) => {
                        let reason = refused.refusal().unwrap_or_default();
                        warn!(stack, change_set = %id, %reason, "change set refused");
                        UpdateAnswer::Refused(reason)
                    }
                }
            }
            ChangeSetState::NoChanges => UpdateAnswer::NoChange,
            ChangeSetState::Failed(reason) => UpdateAnswer::Rejected(reason),
            ChangeSetState::Creating => UpdateAnswer::Rejected(format!(
                "the change set was still being created after {} s",
                self.change_set_max_wait().as_secs()
            )),
            ChangeSetState::Deleted => {
                return Ok(Updated::not_executed(UpdateAnswer::Rejected(
                    "the change set was deleted before it could be executed".into(),
                )));
            }
        };
        // Not executed: nothing is left behind on the stack.
        if let Err(e) = change_set::delete(&self.clients, stack, &id).await {
            warn!(stack, change_set = %id, error = %e, "could not delete the change set");
        }
        Ok(Updated::not_executed(answer))
    }

    /// CreateChangeSet with exactly what UpdateStack would send; `Err` with the answer
    /// when it is not created (nothing to do, or rejected).
    async fn create_change_set(
        &self,
        request: &UpdateRequest<'_>,
    ) -> Result<Result<Described, UpdateAnswer>, StepError> {
        let template = match self.template_source(request).await? {
            Ok(template) => template,
            Err(reason) => return Ok(Err(UpdateAnswer::Rejected(reason))),
        };
        let created = change_set::create(
            &self.clients,
            Creation {
                stack_name: request.stack_name,
                name: &request.change_set_name,
                description: format!(
                    "Secret Cascade batch {}: {}",
                    request.batch_id, request.step
                ),
                template,
                parameters: request.parameters.clone(),
                capabilities: ALL_CAPABILITIES.to_vec(),
                role_arn: self.settings.execution_role_arn.clone(),
                notification_arns: request.notification_arns.clone(),
                tags: request.tags.clone(),
                token: &request.token,
            },
        )
        .await?;
        Ok(match created {
            Created::Id(id) => Ok(Described {
                id,
                state: ChangeSetState::Creating,
                changes: Vec::new(),
            }),
            Created::NoUpdates => Err(UpdateAnswer::NoChange),
            Created::Rejected(e) => Err(UpdateAnswer::Rejected(e.to_string())),
        })
    }

    /// The template of an update: inline, or uploaded to the store and sent by URL when
    /// over the inline limit; `Err` with why it cannot be sent.
    async fn template_source(
        &self,
        request: &UpdateRequest<'_>,
    ) -> Result<Result<TemplateSource, String>, StepError> {
        if request.body.len() <= MAX_TEMPLATE_BODY_BYTES {
            return Ok(Ok(TemplateSource::Body(request.body.clone())));
        }
        let region = self.clients.region().unwrap_or_else(|| "us-east-1".into());
        let bytes = request.body.len();
        let key =
            cascade_core::batch::keys::template(request.batch_id, request.stack_name, request.step);
        let Some(url) = self.store.template_url(&key, &region) else {
            return Ok(Err(format!(
                "the template is {bytes} bytes, over CloudFormation's {MAX_TEMPLATE_BODY_BYTES}-byte inline limit: configure a bucket (--bucket) so it can go through S3"
            )));
        };
        self.batches()
            .put_template(
                request.batch_id,
                request.stack_name,
                request.step,
                request.body.clone(),
            )
            .await?;
        Ok(Ok(TemplateSource::Url(url)))
    }

    /// The longest wait for a change set to be created.
    fn change_set_max_wait(&self) -> Duration {
        self.settings.poll.max_wait.min(CHANGE_SET_MAX_WAIT)
    }

    /// Looks at the change set (backing off as the poll policy says) until it is no
    /// longer being created, or the longest wait for it is over (then it is returned
    /// still [`ChangeSetState::Creating`]).
    async fn until_created(
        &self,
        stack_name: &str,
        mut described: Described,
    ) -> Result<Described, StepError> {
        let started = Instant::now();
        let mut delay = self.settings.poll.initial;
        let mut first = true;
        while described.state == ChangeSetState::Creating {
            if !first {
                if started.elapsed() + delay > self.change_set_max_wait() {
                    return Ok(described);
                }
                tokio::time::sleep(delay).await;
                delay = (delay + delay / 2).min(self.settings.poll.max);
            }
            first = false;
            described = change_set::describe(&self.clients, stack_name, &described.id)
                .await?
                .unwrap_or(Described {
                    state: ChangeSetState::Deleted,
                    ..described
                });
        }
        Ok(described)
    }

    /// The resources that failed in the stack's latest update (DescribeStackEvents, newest
    /// first, back to the event that started that update).
    pub async fn failed_resources(
        &self,
        stack_name: &str,
    ) -> Result<Vec<FailedResource>, StepError> {
        let mut pages = self
            .clients
            .cloudformation
            .describe_stack_events()
            .stack_name(stack_name)
            .into_paginator()
            .send();
        let mut failed = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::call("cloudformation:DescribeStackEvents", e))?;
            for event in page.stack_events() {
                let status = event
                    .resource_status()
                    .map(|s| s.as_str())
                    .unwrap_or_default();
                let is_stack = event.resource_type() == Some("AWS::CloudFormation::Stack")
                    && event.logical_resource_id() == Some(stack_name);
                if is_stack && status == "UPDATE_IN_PROGRESS" {
                    return Ok(failed);
                }
                if !is_stack && status.ends_with("_FAILED") {
                    failed.push(FailedResource {
                        logical_id: event.logical_resource_id().unwrap_or_default().to_string(),
                        resource_type: event.resource_type().map(str::to_string),
                        status: status.to_string(),
                        reason: event.resource_status_reason().map(str::to_string),
                    });
                }
            }
        }
        Ok(failed)
    }
}

/// The digest of a template body, when it can be read.
fn digest_of(body: &str) -> Option<String> {
    read_template(body).ok().map(|t| template_digest(&t))
}

/// The template body the first update starts from, and whether it is the original this
/// batch saved (a resumed or retried begin) rather than the stack's template now; either
/// must be the one planned, else the stack is skipped with the reason.
fn planned_body(
    plan: &StackPlan,
    saved: Option<&SavedOriginal>,
    current_body: &str,
    current_digest: Option<&str>,
) -> Result<(String, bool), String> {
    if let Some(saved) = saved
        .filter(|s| digest_of(&s.template_body).as_deref() == Some(plan.template_digest.as_str()))
    {
        return Ok((saved.template_body.clone(), true));
    }
    match current_digest {
        Some(digest) if digest == plan.template_digest => Ok((current_body.to_string(), false)),
        Some(_) => Err("its template changed since the plan: plan again".into()),
        None => Err("its template can no longer be read".into()),
    }
}

/// The template of the first update and which update it is: the original without the
/// closure (`recreate`), or with the references pinned (`pin`); else why it cannot be made.
fn first_update(
    manifest: &BatchManifest,
    plan: &StackPlan,
    current: &Stack,
    template: &Value,
) -> Result<(Value, UpdateStep), String> {
    match plan.strategy {
        Strategy::Recreate => Ok((removal_template(template, plan), UpdateStep::Remove)),
        Strategy::Pin => {
            let stack = StackInfo {
                parameters: current
                    .parameters()
                    .iter()
                    .filter_map(|p| {
                        Some((
                            p.parameter_key()?.to_string(),
                            p.parameter_value()?.to_string(),
                        ))
                    })
                    .collect(),
                ..StackInfo::from_template(&plan.stack_name, &plan.stack_id, template.clone())
            };
            match pinned_template(&stack, plan, &manifest.secrets, &Default::default()) {
                Ok((pinned, pins)) if !pins.is_empty() => Ok((pinned, UpdateStep::Pin)),
                Ok(_) => {
                    Err("no reference could be pinned (ids built from values unknown here)".into())
                }
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

/// The stack's tags, as they are.
fn stack_tags(stack: &Stack) -> Vec<(String, String)> {
    stack
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// Every parameter of the stack, kept with `UsePreviousValue`.
fn previous_parameters(stack: &Stack) -> Vec<Parameter> {
    stack
        .parameters()
        .iter()
        .filter_map(|p| p.parameter_key())
        .map(|k| {
            Parameter::builder()
                .parameter_key(k)
                .use_previous_value(true)
                .build()
        })
        .collect()
}

/// What to save of a stack before changing it. NoEcho parameters are saved without a
/// value (restored with UsePreviousValue), whatever DescribeStacks showed.
fn saved_original(
    stack: &Stack,
    template_body: String,
    template: &Value,
    at: Timestamp,
) -> SavedOriginal {
    let no_echo = no_echo_parameters(template);
    SavedOriginal {
        schema_version: STATE_SCHEMA_VERSION,
        stack_id: stack.stack_id().unwrap_or_default().to_string(),
        stack_name: stack.stack_name().unwrap_or_default().to_string(),
        template_body,
        parameters: stack
            .parameters()
            .iter()
            .filter_map(|p| {
                let key = p.parameter_key()?;
                let value = p
                    .parameter_value()
                    .filter(|v| *v != MASKED_VALUE && !no_echo.contains(key));
                Some((key.to_string(), value.map(str::to_string)))
            })
            .collect(),
        capabilities: stack
            .capabilities()
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        role_arn: stack.role_arn().map(str::to_string),
        notification_arns: stack.notification_arns().to_vec(),
        tags: stack_tags(stack),
        saved_at: at.to_string(),
    }
}

async fn sleep_unless_cancelled(delay: Duration, cancel: &Arc<AtomicBool>) {
    let until = Instant::now() + delay;
    while Instant::now() < until && !cancel.load(Ordering::SeqCst) {
        tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(100))).await;
    }
}
