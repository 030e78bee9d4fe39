//! The one path every update takes: a change set made with exactly what UpdateStack
//! would send, found again by its name when a step is retried, waited for, read in full,
//! judged against what the plan means the update to do (`cascade_core::change_set`), then
//! executed, or deleted and refused.

use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{Capability, Parameter, Stack};
use cascade_core::batch::SavedOriginal;
use cascade_core::change_set::{ChangeSetState, Intent, Verdict, verdict};
use cascade_core::refresh::{
    MAX_TEMPLATE_BODY_BYTES, StackState, UpdateAnswer, UpdateStep, check_template_size,
};
use jiff::Timestamp;
use serde_json::Value;
use tracing::{info, warn};

use super::{Refresher, StepError};
use crate::change_set::{self, Created, Creation, Described, TemplateSource};
use crate::error::ErrorKind;

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
pub(super) struct UpdateRequest<'a> {
    pub(super) batch_id: &'a str,
    pub(super) stack_name: &'a str,
    pub(super) step: UpdateStep,
    pub(super) body: String,
    pub(super) parameters: Vec<Parameter>,
    pub(super) notification_arns: Vec<String>,
    pub(super) tags: Vec<(String, String)>,
    pub(super) token: String,
    pub(super) change_set_name: String,
    /// What the plan means the update to do: the change set may do nothing else.
    pub(super) intent: Intent,
    /// The stack's template, for the types and DeletionPolicy of its resources.
    pub(super) template: &'a Value,
}

/// What an update request came to, and the change set executed for it, if one was.
pub(super) struct Updated {
    pub(super) answer: UpdateAnswer,
    pub(super) change_set: Option<String>,
}

impl Updated {
    pub(super) fn not_executed(answer: UpdateAnswer) -> Self {
        Updated {
            answer,
            change_set: None,
        }
    }

    /// Records the change set executed, then the answer, in `state`.
    pub(super) fn apply(self, state: &mut StackState, step: UpdateStep, at: Timestamp) {
        if let Some(id) = &self.change_set {
            state.change_set_executed(id);
        }
        state.update_answered(step, self.answer, at);
    }
}

impl Refresher {
    /// Sends the saved original back, with its template body, or `pinned` (the original
    /// with the plan's pins) when given; `template` is the original, read; `names` are the
    /// request token and the change set name.
    pub(super) async fn put_back(
        &self,
        batch_id: &str,
        saved: &SavedOriginal,
        template: &Value,
        pinned: Option<Value>,
        (token, change_set_name): (String, String),
        intent: Intent,
    ) -> Result<Updated, StepError> {
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
            body: pinned.map_or_else(|| saved.template_body.clone(), |t| t.to_string()),
            parameters,
            notification_arns: saved.notification_arns.clone(),
            tags: saved.tags.clone(),
            token,
            change_set_name,
            intent,
            template,
        })
        .await
    }

    /// Sends one update as a change set, with every capability and the configured
    /// execution role (or none: CloudFormation then keeps the stack's own role; passing
    /// that one explicitly would need iam:PassRole on it); a template over the inline
    /// limit goes through S3. The change set is found by its name first (a retried or
    /// resumed step reuses its own, or finds it executed), else created; once created,
    /// every change is read and [`verdict`] decides: executed, or deleted and refused.
    pub(super) async fn update(&self, request: UpdateRequest<'_>) -> Result<Updated, StepError> {
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
                    Verdict::Refuse(problems) => {
                        let reason = cascade_core::change_set::refusal_reason(&problems);
                        warn!(stack, change_set = %id, %reason, "change set refused");
                        UpdateAnswer::Refused(problems)
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
            // The role this runs with lacks the action: say so first, the role and the
            // action are in the service's message.
            Created::Rejected(e) if e.kind() == ErrorKind::AccessDenied => {
                Err(UpdateAnswer::Rejected(format!(
                    "access denied (grant the action to the role it names): {e}"
                )))
            }
            Created::Rejected(e) => Err(UpdateAnswer::Rejected(e.to_string())),
        })
    }

    /// The template of an update: inline, or uploaded to the store and sent by URL when
    /// over the inline limit; `Err` with why it cannot be sent.
    async fn template_source(
        &self,
        request: &UpdateRequest<'_>,
    ) -> Result<Result<TemplateSource, String>, StepError> {
        if let Err(too_large) = check_template_size(&request.body) {
            return Ok(Err(too_large.to_string()));
        }
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
}

/// The stack's tags, as they are.
pub(super) fn stack_tags(stack: &Stack) -> Vec<(String, String)> {
    stack
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// Every parameter of the stack, kept with `UsePreviousValue`.
pub(super) fn previous_parameters(stack: &Stack) -> Vec<Parameter> {
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
