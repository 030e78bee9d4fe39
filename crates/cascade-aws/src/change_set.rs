//! The change set calls behind every update (issue 8, item 1): find one by name, create,
//! read every `ResourceChange` (paginated), execute, delete. What a change set's state
//! and changes mean is decided in `cascade_core::change_set`.

use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Tag};
use cascade_core::change_set::{
    Action, ChangeSetState, Replacement, ResourceChange, change_set_state,
};

use crate::clients::Clients;
use crate::error::{AwsError, ErrorKind};

/// A change set as DescribeChangeSet shows it, every page read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// Its id (ARN).
    pub id: String,
    /// Where it is.
    pub state: ChangeSetState,
    /// Every change it makes.
    pub changes: Vec<ResourceChange>,
}

/// Where a change set's template comes from.
#[derive(Debug, Clone)]
pub enum TemplateSource {
    /// Inline (`TemplateBody`).
    Body(String),
    /// Through S3 (`TemplateURL`).
    Url(String),
}

/// Everything CreateChangeSet sends: what UpdateStack sent before change sets.
#[derive(Debug, Clone)]
pub struct Creation<'a> {
    /// The stack.
    pub stack_name: &'a str,
    /// The change set's name (deterministic per batch, stack, step and attempt).
    pub name: &'a str,
    /// What it is for, shown in the console.
    pub description: String,
    /// The template.
    pub template: TemplateSource,
    /// Every parameter (`UsePreviousValue` or the saved value).
    pub parameters: Vec<Parameter>,
    /// The capabilities acknowledged.
    pub capabilities: Vec<Capability>,
    /// The execution role, when configured (else the stack keeps its own).
    pub role_arn: Option<String>,
    /// The stack's notification topics.
    pub notification_arns: Vec<String>,
    /// The stack's tags, unchanged.
    pub tags: Vec<(String, String)>,
    /// The request token (`ClientToken`).
    pub token: &'a str,
}

/// What CreateChangeSet answered.
#[derive(Debug)]
pub enum Created {
    /// The change set is being created: its id.
    Id(String),
    /// "No updates are to be performed": nothing to do.
    NoUpdates,
    /// Refused (validation, status, ...): what CloudFormation said.
    Rejected(AwsError),
}

/// The change set `name_or_id` of `stack_name`, every page of its changes read; `None`
/// when there is none.
pub async fn describe(
    clients: &Clients,
    stack_name: &str,
    name_or_id: &str,
) -> Result<Option<Described>, AwsError> {
    let mut next_token: Option<String> = None;
    let mut described: Option<Described> = None;
    loop {
        let page = match clients
            .cloudformation
            .describe_change_set()
            .stack_name(stack_name)
            .change_set_name(name_or_id)
            .set_next_token(next_token.take())
            .send()
            .await
        {
            Ok(page) => page,
            Err(err) => match AwsError::call("cloudformation:DescribeChangeSet", err) {
                e if e.kind() == ErrorKind::NotFound => return Ok(None),
                e => return Err(e),
            },
        };
        let changes = page
            .changes()
            .iter()
            .filter_map(|c| c.resource_change())
            .map(|r| ResourceChange {
                logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: r.resource_type().map(str::to_string),
                action: Action::parse(r.action().map(|a| a.as_str()).unwrap_or_default()),
                replacement: r.replacement().map(|x| Replacement::parse(x.as_str())),
                scope: r.scope().iter().map(|s| s.as_str().to_string()).collect(),
            });
        match described.as_mut() {
            Some(d) => d.changes.extend(changes),
            None => {
                described = Some(Described {
                    id: page.change_set_id().unwrap_or(name_or_id).to_string(),
                    state: change_set_state(
                        page.status().map(|s| s.as_str()).unwrap_or_default(),
                        page.execution_status()
                            .map(|s| s.as_str())
                            .unwrap_or_default(),
                        page.status_reason(),
                    ),
                    changes: changes.collect(),
                })
            }
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
            _ => return Ok(described),
        }
    }
}

/// CreateChangeSet of type UPDATE (always said: moto's default is CREATE).
pub async fn create(clients: &Clients, creation: Creation<'_>) -> Result<Created, AwsError> {
    let tags = creation
        .tags
        .iter()
        // `aws:` tags are CloudFormation's own: they cannot be sent, and stay anyway.
        .filter(|(key, _)| !key.starts_with("aws:"))
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect();
    let mut call = clients
        .cloudformation
        .create_change_set()
        .stack_name(creation.stack_name)
        .change_set_name(creation.name)
        .change_set_type(ChangeSetType::Update)
        .description(creation.description)
        .set_parameters(Some(creation.parameters))
        .set_capabilities(Some(creation.capabilities))
        .set_role_arn(creation.role_arn)
        .set_notification_arns(Some(creation.notification_arns))
        .set_tags(Some(tags))
        .client_token(creation.token);
    call = match creation.template {
        TemplateSource::Body(body) => call.template_body(body),
        TemplateSource::Url(url) => call.template_url(url),
    };
    match call.send().await {
        Ok(out) => Ok(Created::Id(out.id().unwrap_or(creation.name).to_string())),
        Err(err) => match AwsError::call("cloudformation:CreateChangeSet", err) {
            e if e.kind() == ErrorKind::NoUpdates => Ok(Created::NoUpdates),
            e if e.kind().is_retryable() => Err(e),
            e => Ok(Created::Rejected(e)),
        },
    }
}

/// ExecuteChangeSet with the step's request token (a retried call is not a second update).
pub async fn execute(
    clients: &Clients,
    stack_name: &str,
    id: &str,
    token: &str,
) -> Result<(), AwsError> {
    clients
        .cloudformation
        .execute_change_set()
        .stack_name(stack_name)
        .change_set_name(id)
        .client_request_token(token)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::call("cloudformation:ExecuteChangeSet", e))
}

/// DeleteChangeSet; one already gone is fine.
pub async fn delete(clients: &Clients, stack_name: &str, id: &str) -> Result<(), AwsError> {
    match clients
        .cloudformation
        .delete_change_set()
        .stack_name(stack_name)
        .change_set_name(id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) => match AwsError::call("cloudformation:DeleteChangeSet", err) {
            e if e.kind() == ErrorKind::NotFound => Ok(()),
            e => Err(e),
        },
    }
}
