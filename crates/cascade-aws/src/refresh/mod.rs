//! The refresh steps of one stack (DESIGN.md §2) carried out against CloudFormation, each
//! saving the stack's state: `begin` (save the original, first update), `poll` / `wait`
//! (look at the update), `settle` (what the look means), `finish` (recreate: update back
//! to the original) and `restore` (put back the saved original at any time). What the
//! state becomes is decided in `cascade_core::refresh::state`; the CLI's batch runner and
//! the Lambda `refresh` handler call these steps. Every update they make goes through
//! [`update`]: a change set, executed only on CloudFormation's own verdict.

mod update;

use cascade_core::restore::RestoreTarget;
use update::{UpdateRequest, previous_parameters, stack_tags};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::Stack;
use cascade_core::batch::{BatchManifest, STATE_SCHEMA_VERSION, SavedOriginal};
use cascade_core::change_set::{ChangeSetState, Intent};
use cascade_core::defaults;
use cascade_core::plan::{StackPlan, Strategy, template_digest};
use cascade_core::refresh::{
    Look, Observation, Settled, StackState, UpdateAnswer, UpdateProgress, UpdateStep,
    change_set_name, client_request_token, manual_restore_change_set_name, manual_restore_token,
    pinned_template, removal_template, repinned_template, update_timed_out,
};
use cascade_core::report::{FailedResource, Outcome};
use cascade_core::stack::{MASKED_VALUE, StackInfo, no_echo_parameters, status_allows_update};
use cascade_core::template::read_template;
use jiff::Timestamp;
use serde_json::Value;
use tracing::{info, warn};

use crate::batch_store::BatchStore;
use crate::change_set;
use crate::clients::Clients;
use crate::ecs::{self, ServiceRef};
use crate::error::AwsError;
use crate::secrets::resolve_secret;
use crate::stacks::{describe_stack, original_template, parameter_values};
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
    #[error("{0}")]
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

impl Refresher {
    /// The batches in this refresher's store.
    pub fn batches(&self) -> BatchStore<'_> {
        BatchStore::new(&self.store)
    }

    /// What a report's restore command names: this store and the service role the
    /// updates use.
    pub fn restore_target(&self) -> RestoreTarget {
        RestoreTarget {
            location: self.store.state_location(),
            execution_role_arn: self.settings.execution_role_arn.clone(),
        }
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
        if saved.is_none() {
            // Nothing issued yet for this stack (an earlier run of this step saves the
            // original before its update): a secret gone since the plan stops it here.
            if let Some(reason) = self.secret_gone(manifest, plan).await? {
                return self.conclude(batch, state, Outcome::Skipped, reason).await;
            }
        }
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
        if plan.strategy == Strategy::Restart {
            // No template update: the services are restarted next.
            state.restarts_next();
            return Ok(self.save_state(batch, state).await?);
        }
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

    /// Before a failed step is recorded: a recreate's `begin` that died after its removal
    /// executed (a Lambda timeout, a call failing after the execute) left the state at
    /// `begin`, which alone says the stack is intact. Its removal's change set says what
    /// the stack went through: executed, the state records the removal as issued, so the
    /// failure leaves the stack degraded (with its restore command). A removal that cannot
    /// be looked at is taken as executed when the original was saved (it precedes the
    /// update): better a restore that finds nothing to do than resources missing unsaid.
    pub async fn reconcile_unrecorded_removal(
        &self,
        batch_id: &str,
        state: &mut StackState,
    ) -> Result<(), StoreError> {
        if !state.removal_unrecorded() {
            return Ok(());
        }
        let stack_name = state.stack_name.clone();
        if self
            .batches()
            .original(batch_id, &stack_name)
            .await?
            .is_none()
        {
            return Ok(());
        }
        let name = change_set_name(batch_id, &stack_name, UpdateStep::Remove, state.attempt);
        match change_set::describe(&self.clients, &stack_name, &name).await {
            Ok(Some(found)) if found.state == ChangeSetState::Executed => {
                warn!(stack = %stack_name, "the removal was executed before the step failed");
                state.removal_found_executed(Some(&found.id), Timestamp::now());
            }
            Ok(_) => {}
            Err(e) => {
                warn!(stack = %stack_name, error = %e, "cannot tell whether the removal was executed: taken as executed");
                state.removal_found_executed(None, Timestamp::now());
            }
        }
        Ok(())
    }

    /// Records a step that failed on a transient AWS error (throttled beyond the retries)
    /// as the stack's outcome, after [`Self::reconcile_unrecorded_removal`]; the batch goes
    /// on with the other stacks. Other errors are given back.
    pub async fn record_transient_failure(
        &self,
        batch_id: &str,
        state: &mut StackState,
        error: StepError,
    ) -> Result<(), StepError> {
        let StepError::Aws(aws) = &error else {
            return Err(error);
        };
        if aws.kind() != crate::error::ErrorKind::Throttled {
            return Err(error);
        }
        self.reconcile_unrecorded_removal(batch_id, state).await?;
        let why = format!(
            "{aws} (throttled beyond the retries: try again later, `cascade run --retry-failed {batch_id}`)"
        );
        state.step_failed(&why, Timestamp::now());
        Ok(self.save_state(batch_id, state).await?)
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

    /// Why the stack is skipped when a secret it is refreshed for was deleted, or
    /// scheduled for deletion, since the plan: CloudFormation could not resolve its
    /// references (the update would fail), and a service restarted would start tasks
    /// that cannot read it. DescribeSecret only: never a value.
    async fn secret_gone(
        &self,
        manifest: &BatchManifest,
        plan: &StackPlan,
    ) -> Result<Option<String>, StepError> {
        for name in &plan.secrets {
            let id = manifest
                .secrets
                .iter()
                .find(|s| &s.name == name)
                .map_or(name.as_str(), |s| s.arn.as_str());
            let (how, remedy) = match resolve_secret(&self.clients, id).await {
                Ok(_) => continue,
                Err(AwsError::SecretNotFound(_)) => ("deleted", "create it again".to_string()),
                Err(AwsError::SecretDeleted(_)) => (
                    "scheduled for deletion",
                    format!("restore it (`aws secretsmanager restore-secret --secret-id {name}`)"),
                ),
                Err(e) => return Err(e.into()),
            };
            warn!(stack = %plan.stack_name, secret = %name, "the secret is {how} since the plan: stack skipped");
            return Ok(Some(format!(
                "secret {name} was {how} since the plan: nothing was sent to stack {stack}, whose references to it could not be resolved; {remedy} and enqueue it again (`cascade enqueue --secret {name} --stack {stack}`), or take the references out",
                stack = plan.stack_name
            )));
        }
        Ok(None)
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

    /// `finish`: updates the stack back to its saved original template and parameters:
    /// after recreate's removal, byte for byte what was there, or, when the plan pins
    /// resources too, the original with those pins (the removal made them; the restore
    /// keeps them), or, when the original holds pins Secret Cascade wrote at an earlier
    /// change, the original with those pins moved to the new version (else the resources
    /// would come back pinned to the old one); before a degraded stack is retried, the
    /// original as it was. The change set may only add `plan`'s closure back (and modify
    /// what it pins).
    pub async fn finish(
        &self,
        manifest: &BatchManifest,
        plan: &StackPlan,
        state: &mut StackState,
    ) -> Result<(), StepError> {
        let batch_id = manifest.batch_id.as_str();
        let saved = self.saved_original(batch_id, &state.stack_name).await?;
        let original = saved_template(&saved)?;
        let pinned = if state.restore_before_retry {
            None
        } else {
            let parameters = saved
                .parameters
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                .collect();
            let restored = if plan.pinned_resources().is_empty() {
                Ok(with_own_pins_moved(manifest, plan, parameters, &original))
            } else {
                with_pins(manifest, plan, parameters, &original).map(Some)
            };
            match restored {
                Ok(pinned) => pinned,
                Err(why) => {
                    let reason = format!(
                        "the resources were removed and the template that restores them with the pins could not be made: {why}"
                    );
                    return self
                        .conclude(batch_id, state, Outcome::Degraded, reason)
                        .await;
                }
            }
        };
        let step = UpdateStep::Restore;
        let names = (
            client_request_token(batch_id, step, state.attempt),
            change_set_name(batch_id, &state.stack_name, step, state.attempt),
        );
        let issued_at = Timestamp::now();
        let intent = Intent::for_update(plan, step);
        let updated = self
            .put_back(batch_id, &saved, &original, pinned, names, intent)
            .await?;
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
        match self
            .put_back(
                batch_id,
                &saved,
                &saved_template(&saved)?,
                None,
                names,
                intent,
            )
            .await?
            .answer
        {
            UpdateAnswer::Rejected(message) => {
                return Err(StepError::RestoreRejected {
                    stack_name: stack_name.to_string(),
                    message,
                });
            }
            UpdateAnswer::Refused(problems) => {
                return Err(StepError::RestoreRejected {
                    stack_name: stack_name.to_string(),
                    message: cascade_core::change_set::refusal_reason(&problems),
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

    /// `restart`: starts a new deployment of each ECS service still to restart (its tasks
    /// start again and read the secret's current value), saving each as it starts.
    pub async fn restart(&self, batch_id: &str, state: &mut StackState) -> Result<(), StepError> {
        let services = self.stack_services(&state.stack_name).await?;
        let pending: Vec<String> = state
            .restarts
            .iter()
            .filter(|r| r.deployment_id.is_none())
            .map(|r| r.logical_id.clone())
            .collect();
        for logical_id in pending {
            let Some(service) = services.service(&logical_id) else {
                let reason = format!(
                    "ECS service {logical_id} has no physical id in the stack: it cannot be restarted"
                );
                return self
                    .conclude(batch_id, state, Outcome::Failed, reason)
                    .await;
            };
            let deployment = ecs::force_new_deployment(&self.clients, &service).await?;
            info!(stack = %state.stack_name, service = %logical_id, %deployment, "restarting");
            state.restart_started(
                &logical_id,
                (&service.cluster, &service.service),
                &deployment,
                Timestamp::now(),
            );
            self.save_state(batch_id, state).await?;
        }
        Ok(())
    }

    /// `poll-rollout`: one look at each restart's deployment (of the service the restart
    /// saved); applies what it shows and saves the state.
    pub async fn poll_rollouts(
        &self,
        batch_id: &str,
        state: &mut StackState,
    ) -> Result<Settled, StepError> {
        let rolling: Vec<(String, Option<ServiceRef>, String)> = state
            .restarts
            .iter()
            .filter(|r| !r.completed)
            .filter_map(|r| {
                let service = Some(ServiceRef {
                    cluster: r.cluster.clone()?,
                    service: r.service.clone()?,
                })
                .filter(|s| !s.service.is_empty());
                Some((r.logical_id.clone(), service, r.deployment_id.clone()?))
            })
            .collect();
        let mut settled = Settled::Waiting;
        for (logical_id, service, deployment) in rolling {
            let rollout = match service {
                Some(service) => ecs::rollout(&self.clients, &service, &deployment).await?,
                None => cascade_core::refresh::Rollout::Gone,
            };
            settled = state.rollout_observed(
                &logical_id,
                &rollout,
                Timestamp::now(),
                self.settings.poll.max_wait,
            );
            if settled != Settled::Waiting {
                break;
            }
        }
        self.save_state(batch_id, state).await?;
        Ok(settled)
    }

    /// The ECS services of a stack, as DescribeStackResources names them.
    async fn stack_services(&self, stack_name: &str) -> Result<StackServices, StepError> {
        let resources = self
            .clients
            .cloudformation
            .describe_stack_resources()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(|e| AwsError::call("cloudformation:DescribeStackResources", e))?;
        let mut services = StackServices::default();
        let mut clusters = Vec::new();
        for resource in resources.stack_resources() {
            let (Some(logical), Some(physical)) = (
                resource.logical_resource_id(),
                resource.physical_resource_id().filter(|id| !id.is_empty()),
            ) else {
                continue;
            };
            if resource.resource_type() == Some("AWS::ECS::Cluster") {
                clusters.push(physical.to_string());
            }
            services
                .physical
                .insert(logical.to_string(), physical.to_string());
        }
        // An ARN of the old form does not name its cluster: the stack's one cluster, or
        // the account's default.
        services.cluster = match clusters.as_slice() {
            [one] => one.clone(),
            _ => "default".into(),
        };
        Ok(services)
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

/// The saved original's template, read.
fn saved_template(saved: &SavedOriginal) -> Result<Value, StepError> {
    read_template(&saved.template_body).map_err(|e| StepError::TemplateUnreadable {
        stack_name: saved.stack_name.clone(),
        reason: e.to_string(),
    })
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

/// The physical ids of a stack's resources, for naming its ECS services.
#[derive(Debug, Default)]
struct StackServices {
    physical: std::collections::HashMap<String, String>,
    cluster: String,
}

impl StackServices {
    /// The service with this logical id, when the stack has it.
    fn service(&self, logical_id: &str) -> Option<ServiceRef> {
        let id = self.physical.get(logical_id)?;
        ServiceRef::from_physical_id(id, Some(&self.cluster))
    }
}

/// The template of the first update and which update it is: the original without the
/// closure, with the other resources' references pinned when the plan pins any
/// (`recreate`), or with the references pinned (`pin`); else why it cannot be made.
fn first_update(
    manifest: &BatchManifest,
    plan: &StackPlan,
    current: &Stack,
    template: &Value,
) -> Result<(Value, UpdateStep), String> {
    // Evaluated as the plan evaluated them.
    let parameters = parameter_values(current);
    match plan.strategy {
        Strategy::Restart => Err("a restart makes no template update".into()),
        Strategy::Recreate if plan.pinned_resources().is_empty() => {
            Ok((removal_template(template, plan), UpdateStep::Remove))
        }
        Strategy::Recreate => {
            let pinned = with_pins(manifest, plan, parameters, template)?;
            Ok((removal_template(&pinned, plan), UpdateStep::Remove))
        }
        Strategy::Pin => Ok((
            with_pins(manifest, plan, parameters, template)?,
            UpdateStep::Pin,
        )),
    }
}

/// `template` with the plan's references pinned to the batch's new versions, evaluated
/// with the stack's `parameters`; an error when nothing could be pinned.
fn with_pins(
    manifest: &BatchManifest,
    plan: &StackPlan,
    parameters: std::collections::BTreeMap<String, String>,
    template: &Value,
) -> Result<Value, String> {
    let stack = StackInfo {
        parameters,
        ..StackInfo::from_template(&plan.stack_name, &plan.stack_id, template.clone())
    };
    match pinned_template(&stack, plan, &manifest.secrets, &Default::default()) {
        Ok((pinned, pins)) if !pins.is_empty() => Ok(pinned),
        Ok(_) => Err("no reference could be pinned (ids built from values unknown here)".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `template` with only Secret Cascade's own earlier pins moved to the batch's new
/// versions (evaluated with the stack's `parameters`); `None` when it holds none to move,
/// or when they cannot be moved: the resources are still put back (with the old pins, as
/// the original has them), never left removed for that.
fn with_own_pins_moved(
    manifest: &BatchManifest,
    plan: &StackPlan,
    parameters: std::collections::BTreeMap<String, String>,
    template: &Value,
) -> Option<Value> {
    let stack = StackInfo {
        parameters,
        ..StackInfo::from_template(&plan.stack_name, &plan.stack_id, template.clone())
    };
    match repinned_template(&stack, plan, &manifest.secrets, &Default::default()) {
        Ok((pinned, pins)) => (!pins.is_empty()).then_some(pinned),
        Err(e) => {
            warn!(stack = %plan.stack_name, error = %e, "restoring the original with its old pins: they could not be moved to the new version");
            None
        }
    }
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

pub(crate) async fn sleep_unless_cancelled(delay: Duration, cancel: &Arc<AtomicBool>) {
    let until = Instant::now() + delay;
    while Instant::now() < until && !cancel.load(Ordering::SeqCst) {
        tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(100))).await;
    }
}
