//! The refresh steps of one stack (DESIGN.md §2), each callable on its own and each saving
//! the stack's state: `begin` (save the original, first update), `poll` (read the status),
//! `finish` (recreate: update back to the original) and `restore` (put back the saved
//! original at any time). The CLI calls them in a loop; the state machine calls them one by
//! one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudformation::types::{Capability, Parameter, TemplateStage};
use aws_smithy_types::date_time::Format;
use cascade_core::batch::{BatchManifest, STATE_SCHEMA_VERSION, SavedOriginal, StackState, keys};
use cascade_core::plan::{StackPlan, Strategy, template_digest};
use cascade_core::refresh::{
    MAX_TEMPLATE_BODY_BYTES, Progress, classify_status, client_request_token,
    is_no_updates_message, pinned_template, removal_template,
};
use cascade_core::report::{FailedResource, Outcome, Phase};
use cascade_core::stack::StackInfo;
use cascade_core::template::read_template;
use tracing::{info, warn};

use crate::clients::Clients;
use crate::error::AwsError;
use crate::store::{Store, StoreError};

/// How to wait for an update.
#[derive(Debug, Clone)]
pub struct PollPolicy {
    /// First wait between two looks.
    pub initial: Duration,
    /// Longest wait between two looks (the wait grows by half each time).
    pub max: Duration,
    /// Longest wait for one update before giving up on it.
    pub max_wait: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(30),
            max_wait: Duration::from_secs(60 * 60),
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

/// What one look at a stack found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    /// How the status reads.
    pub progress: Progress,
    /// The status itself.
    pub status: String,
    /// CloudFormation's status reason.
    pub reason: Option<String>,
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
    /// Something the step needs is missing.
    #[error("{0}")]
    Missing(String),
}

/// Now, as RFC 3339.
pub fn now() -> String {
    aws_smithy_types::DateTime::from(SystemTime::now())
        .fmt(Format::DateTime)
        .unwrap_or_default()
}

const ALL_CAPABILITIES: [Capability; 3] = [
    Capability::CapabilityIam,
    Capability::CapabilityNamedIam,
    Capability::CapabilityAutoExpand,
];

impl Refresher {
    /// Saves a stack's state.
    pub async fn save_state(&self, batch_id: &str, state: &StackState) -> Result<(), StoreError> {
        self.store
            .put_json(&keys::state(batch_id, &state.stack_name), state)
            .await
    }

    async fn conclude(
        &self,
        batch_id: &str,
        state: &mut StackState,
        outcome: Outcome,
        reason: Option<String>,
    ) -> Result<(), StepError> {
        match outcome {
            Outcome::Refreshed => info!(stack = %state.stack_name, "refreshed"),
            _ => {
                warn!(stack = %state.stack_name, ?outcome, reason = reason.as_deref().unwrap_or(""), "stack not refreshed")
            }
        }
        state.conclude(outcome, reason, &now());
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
        state.started_at.get_or_insert_with(now);
        state.phase = Phase::Begin;
        self.save_state(batch, state).await?;

        let Some(current) = self.describe(&plan.stack_name).await? else {
            let reason = format!("stack {} was deleted since the plan", plan.stack_name);
            return self
                .conclude(batch, state, Outcome::Skipped, Some(reason))
                .await;
        };
        if current.stack_id().unwrap_or_default() != plan.stack_id {
            let reason = format!(
                "stack {} was replaced since the plan (its id changed)",
                plan.stack_name
            );
            return self
                .conclude(batch, state, Outcome::Skipped, Some(reason))
                .await;
        }
        let status = current
            .stack_status()
            .map(|s| s.as_str())
            .unwrap_or_default()
            .to_string();
        // The original this batch saved, if it already began this stack (a resumed or
        // retried begin), and the stack's template now.
        let original_key = keys::original(batch, &plan.stack_name);
        let saved: Option<SavedOriginal> = self.store.get_json(&original_key).await?;
        let current_body = self.original_template(&plan.stack_name).await?;
        let digest_of = |body: &str| read_template(body).ok().map(|t| template_digest(&t));
        let current_digest = digest_of(&current_body);
        let saved_is_planned = saved
            .as_ref()
            .is_some_and(|s| digest_of(&s.template_body).as_ref() == Some(&plan.template_digest));
        let body = if saved_is_planned {
            saved
                .as_ref()
                .map(|s| s.template_body.clone())
                .unwrap_or_default()
        } else if current_digest.as_ref() == Some(&plan.template_digest) {
            current_body.clone()
        } else {
            let reason = match current_digest {
                Some(_) => "its template changed since the plan: plan again".to_string(),
                None => "its template can no longer be read".to_string(),
            };
            return self
                .conclude(batch, state, Outcome::Skipped, Some(reason))
                .await;
        };
        let template = read_template(&body).map_err(|e| StepError::Missing(e.to_string()))?;
        let no_echo = no_echo_parameters(&template);

        let (first, step) = match plan.strategy {
            Strategy::Recreate => (removal_template(&template, plan), "remove"),
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
                    ..StackInfo::from_template(&plan.stack_name, &plan.stack_id, template)
                };
                match pinned_template(&stack, plan, &manifest.secrets, &Default::default()) {
                    Ok((t, pins)) if !pins.is_empty() => (t, "pin"),
                    Ok(_) => {
                        let reason =
                            "no reference could be pinned (ids built from values unknown here)"
                                .to_string();
                        return self
                            .conclude(batch, state, Outcome::Failed, Some(reason))
                            .await;
                    }
                    Err(e) => {
                        return self
                            .conclude(batch, state, Outcome::Failed, Some(e.to_string()))
                            .await;
                    }
                }
            }
        };
        let next_phase = match plan.strategy {
            Strategy::Recreate => Phase::Remove,
            Strategy::Pin => Phase::Pin,
        };
        // Already issued by an earlier run of this step that died before saving its
        // state: the stack is updating, or already has our first template.
        if saved_is_planned
            && (status.ends_with("_IN_PROGRESS") || current_digest == Some(template_digest(&first)))
        {
            info!(stack = %plan.stack_name, "the first update was already issued: waiting for it");
            state.phase = next_phase;
            state.update_issued_at = Some(now());
            self.save_state(batch, state).await?;
            return Ok(());
        }
        if !cascade_core::stack::UPDATABLE_STATUSES.contains(&status.as_str()) {
            let reason = format!("stack status {status} does not allow an update");
            return self
                .conclude(batch, state, Outcome::Skipped, Some(reason))
                .await;
        }
        if !saved_is_planned {
            let saved = saved_original(&current, current_body, &no_echo, &now());
            self.store.put_json(&original_key, &saved).await?;
        }

        let body = first.to_string();
        let token = client_request_token(batch, step, state.attempt);
        let parameters = current
            .parameters()
            .iter()
            .filter_map(|p| p.parameter_key())
            .map(|k| {
                Parameter::builder()
                    .parameter_key(k)
                    .use_previous_value(true)
                    .build()
            })
            .collect();
        // The configured execution role, or none: CloudFormation then keeps using the
        // stack's own role (passing that one explicitly would need iam:PassRole on it).
        let role = self.settings.execution_role_arn.clone();
        let issued_at = now();
        match self
            .update(
                batch,
                &plan.stack_name,
                step,
                body,
                parameters,
                role,
                current.notification_arns().to_vec(),
                token,
            )
            .await?
        {
            UpdateResult::Started => {
                state.phase = next_phase;
                state.update_issued_at = Some(issued_at);
                self.save_state(batch, state).await?;
                Ok(())
            }
            UpdateResult::NoChange if plan.strategy == Strategy::Pin => {
                let reason = Some("already pinned to the current version".to_string());
                self.conclude(batch, state, Outcome::Refreshed, reason)
                    .await
            }
            UpdateResult::NoChange => {
                let reason = Some(
                    "removing the resources changed nothing: CloudFormation reported no updates"
                        .into(),
                );
                self.conclude(batch, state, Outcome::Failed, reason).await
            }
            UpdateResult::Rejected(message) => {
                let reason =
                    format!("CloudFormation rejected the first update, nothing changed: {message}");
                self.conclude(batch, state, Outcome::Failed, Some(reason))
                    .await
            }
        }
    }

    /// `poll`: one look at the stack's status.
    pub async fn poll(&self, stack_name: &str) -> Result<Look, StepError> {
        Ok(match self.describe(stack_name).await? {
            None => Look {
                progress: Progress::Gone,
                status: "DELETE_COMPLETE".into(),
                reason: None,
            },
            Some(stack) => {
                let status = stack
                    .stack_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default();
                Look {
                    progress: classify_status(&status),
                    reason: stack.stack_status_reason().map(str::to_string),
                    status,
                }
            }
        })
    }

    /// Looks until the update is no longer in progress (backing off), the policy's
    /// maximum wait is over (`None`), or `cancel` is set (`None`).
    pub async fn wait(
        &self,
        stack_name: &str,
        cancel: &Arc<AtomicBool>,
    ) -> Result<Option<Look>, StepError> {
        let started = Instant::now();
        let mut delay = self.settings.poll.initial;
        loop {
            let look = self.poll(stack_name).await?;
            if look.progress != Progress::InProgress {
                return Ok(Some(look));
            }
            if started.elapsed() + delay > self.settings.poll.max_wait
                || cancel.load(Ordering::SeqCst)
            {
                return Ok(None);
            }
            sleep_unless_cancelled(delay, cancel).await;
            delay = (delay + delay / 2).min(self.settings.poll.max);
        }
    }

    /// Decides what an update's end means for the stack, in the phase it is in. Returns
    /// `true` when the stack goes on to `finish` (recreate after a successful removal).
    pub async fn settle(
        &self,
        batch_id: &str,
        state: &mut StackState,
        look: Option<Look>,
    ) -> Result<bool, StepError> {
        let Some(look) = look else {
            let reason = format!(
                "gave up waiting after {} s in phase {:?}; the stack may still be updating: check it, then `cascade run --retry-failed {batch_id}`",
                self.settings.poll.max_wait.as_secs(),
                state.phase
            );
            let outcome = if state.phase == Phase::Pin {
                Outcome::Failed
            } else {
                Outcome::Degraded
            };
            self.conclude(batch_id, state, outcome, Some(reason))
                .await?;
            return Ok(false);
        };
        let failure = |what: &str| {
            format!(
                "{what} ({}{})",
                look.status,
                look.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )
        };
        let (outcome, reason) = match (state.phase, look.progress) {
            (_, Progress::InProgress) => return Ok(false),
            (Phase::Remove, Progress::Complete) => return Ok(true),
            (Phase::Pin | Phase::Restore, Progress::Complete) => (Outcome::Refreshed, None),
            (Phase::Remove, Progress::RolledBack) => (
                Outcome::Failed,
                Some(failure(
                    "the removal update failed and was rolled back; the stack is intact with the old value",
                )),
            ),
            (Phase::Pin, Progress::RolledBack) => (
                Outcome::Failed,
                Some(failure(
                    "the pin update failed and was rolled back; the stack is intact with the old value",
                )),
            ),
            (Phase::Pin, Progress::Broken) => (
                Outcome::Failed,
                Some(failure("the pin update failed and so did its rollback")),
            ),
            (Phase::Restore, Progress::RolledBack | Progress::Broken) => (
                Outcome::Degraded,
                Some(failure(
                    "the resources were removed but restoring them failed",
                )),
            ),
            (Phase::Remove, Progress::Broken) => (
                Outcome::Degraded,
                Some(failure("the removal update failed and so did its rollback")),
            ),
            (_, Progress::Gone) => (
                Outcome::Failed,
                Some(failure("the stack was deleted during the refresh")),
            ),
            (phase, progress) => (
                Outcome::Failed,
                Some(format!("unexpected {progress:?} in phase {phase:?}")),
            ),
        };
        if matches!(outcome, Outcome::Failed | Outcome::Degraded) {
            state.failed_resources = self
                .failed_resources(&state.stack_name)
                .await
                .unwrap_or_default();
        }
        self.conclude(batch_id, state, outcome, reason).await?;
        Ok(false)
    }

    /// `finish` (recreate): updates the stack back to its saved original template and
    /// parameters, byte for byte what was there.
    pub async fn finish(&self, batch_id: &str, state: &mut StackState) -> Result<(), StepError> {
        let saved: SavedOriginal = self
            .store
            .get_json(&keys::original(batch_id, &state.stack_name))
            .await?
            .ok_or_else(|| {
                StepError::Missing(format!(
                    "no saved original of {} in batch {batch_id}",
                    state.stack_name
                ))
            })?;
        state.phase = Phase::Restore;
        let issued_at = now();
        match self
            .put_back(
                batch_id,
                &saved,
                client_request_token(batch_id, "restore", state.attempt),
            )
            .await?
        {
            UpdateResult::Started | UpdateResult::NoChange => {
                state.update_issued_at = Some(issued_at);
                self.save_state(batch_id, state).await?;
                Ok(())
            }
            UpdateResult::Rejected(message) => {
                let reason = format!(
                    "the resources were removed and CloudFormation rejected the update that restores them: {message}"
                );
                self.conclude(batch_id, state, Outcome::Degraded, Some(reason))
                    .await
            }
        }
    }

    /// `restore`: puts back the saved original of a stack in a batch and waits for it.
    /// Returns the final status.
    pub async fn restore(
        &self,
        batch_id: &str,
        stack_name: &str,
        cancel: &Arc<AtomicBool>,
    ) -> Result<Look, StepError> {
        let saved: SavedOriginal = self
            .store
            .get_json(&keys::original(batch_id, stack_name))
            .await?
            .ok_or_else(|| {
                StepError::Missing(format!(
                    "batch {batch_id} has no saved original of stack {stack_name} (it was never changed by that batch)"
                ))
            })?;
        let token = client_request_token(
            batch_id,
            &format!("manual-restore-{}", now().replace([':', '.'], "")),
            1,
        );
        if let UpdateResult::Rejected(message) = self.put_back(batch_id, &saved, token).await? {
            return Err(StepError::Missing(format!(
                "CloudFormation rejected the restore of {stack_name}: {message}"
            )));
        }
        self.wait(stack_name, cancel).await?.ok_or_else(|| {
            StepError::Missing(format!(
                "gave up waiting for {stack_name} to finish restoring"
            ))
        })
    }

    async fn put_back(
        &self,
        batch_id: &str,
        saved: &SavedOriginal,
        token: String,
    ) -> Result<UpdateResult, StepError> {
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
        // As in `begin`: the configured role, or the stack keeps its own.
        let role = self.settings.execution_role_arn.clone();
        self.update(
            batch_id,
            &saved.stack_name,
            "original",
            saved.template_body.clone(),
            parameters,
            role,
            saved.notification_arns.clone(),
            token,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn update(
        &self,
        batch_id: &str,
        stack_name: &str,
        step: &str,
        body: String,
        parameters: Vec<Parameter>,
        role_arn: Option<String>,
        notification_arns: Vec<String>,
        token: String,
    ) -> Result<UpdateResult, StepError> {
        let mut request = self
            .clients
            .cloudformation
            .update_stack()
            .stack_name(stack_name)
            .set_parameters(Some(parameters))
            .set_capabilities(Some(ALL_CAPABILITIES.to_vec()))
            .set_role_arn(role_arn)
            .set_notification_arns(Some(notification_arns))
            .client_request_token(token);
        if body.len() > MAX_TEMPLATE_BODY_BYTES {
            let key = keys::template(batch_id, stack_name, step);
            let region = self.clients.region().unwrap_or_else(|| "us-east-1".into());
            let Some(url) = self.store.template_url(&key, &region) else {
                return Ok(UpdateResult::Rejected(format!(
                    "the template is {} bytes, over CloudFormation's {MAX_TEMPLATE_BODY_BYTES}-byte inline limit: configure a bucket (--bucket) so it can go through S3",
                    body.len()
                )));
            };
            self.store
                .put(&key, body.into_bytes(), "application/json")
                .await?;
            request = request.template_url(url);
        } else {
            request = request.template_body(body);
        }
        match request.send().await {
            Ok(_) => Ok(UpdateResult::Started),
            Err(err) => {
                let message = AwsError::call("cloudformation:UpdateStack", err).to_string();
                if is_no_updates_message(&message) {
                    Ok(UpdateResult::NoChange)
                } else if message.contains("Throttling")
                    || message.contains("dispatch failure")
                    || message.contains("timeout")
                {
                    Err(StepError::Aws(AwsError::Call {
                        operation: "cloudformation:UpdateStack",
                        message,
                    }))
                } else {
                    Ok(UpdateResult::Rejected(message))
                }
            }
        }
    }

    async fn describe(
        &self,
        stack_name: &str,
    ) -> Result<Option<aws_sdk_cloudformation::types::Stack>, StepError> {
        match self
            .clients
            .cloudformation
            .describe_stacks()
            .stack_name(stack_name)
            .send()
            .await
        {
            Ok(out) => Ok(out.stacks().first().cloned()),
            Err(err) => {
                let message = AwsError::call("cloudformation:DescribeStacks", err);
                if message.to_string().contains("does not exist") {
                    Ok(None)
                } else {
                    Err(message.into())
                }
            }
        }
    }

    async fn original_template(&self, stack_name: &str) -> Result<String, StepError> {
        let out = self
            .clients
            .cloudformation
            .get_template()
            .stack_name(stack_name)
            .template_stage(TemplateStage::Original)
            .send()
            .await
            .map_err(|e| AwsError::call("cloudformation:GetTemplate", e))?;
        out.template_body().map(str::to_string).ok_or_else(|| {
            StepError::Missing(format!("GetTemplate returned no body for {stack_name}"))
        })
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

/// What an UpdateStack call did.
enum UpdateResult {
    /// The update started.
    Started,
    /// "No updates are to be performed": the stack already says this.
    NoChange,
    /// CloudFormation refused it (validation, status, ...): nothing changed.
    Rejected(String),
}

/// The parameters a template declares `NoEcho`: their values are never saved.
fn no_echo_parameters(template: &serde_json::Value) -> std::collections::BTreeSet<String> {
    template
        .get("Parameters")
        .and_then(serde_json::Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, decl)| match decl.get("NoEcho") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// What to save of a stack before changing it. NoEcho parameters are saved without a
/// value (restored with UsePreviousValue), whatever DescribeStacks showed.
fn saved_original(
    stack: &aws_sdk_cloudformation::types::Stack,
    template_body: String,
    no_echo: &std::collections::BTreeSet<String>,
    at: &str,
) -> SavedOriginal {
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
                    .filter(|v| *v != cascade_core::stack::MASKED_VALUE && !no_echo.contains(key));
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
        tags: stack
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect(),
        saved_at: at.to_string(),
    }
}

async fn sleep_unless_cancelled(delay: Duration, cancel: &Arc<AtomicBool>) {
    let until = Instant::now() + delay;
    while Instant::now() < until && !cancel.load(Ordering::SeqCst) {
        tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(100))).await;
    }
}
