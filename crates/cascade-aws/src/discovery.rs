//! Discovery across an account: every stack with its parameters, tags, status and
//! Original-stage template, the account's exports, and then the plan.
//!
//! Templates are read with bounded concurrency, and kept in the clients' template cache
//! (if they have one: [`crate::template_cache`]) by stack id and last-updated time, so a
//! second discovery reads only what changed; throttling is retried by the SDK's adaptive
//! retry (see [`crate::clients::load_config`]). Stack policies and imports are
//! read only for the stacks that turn out to depend on a changed secret.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_cloudformation::types::{Stack, StackStatus};
use cascade_core::plan::{Plan, PlanOptions, StackOutcome, Strategy, StrategyChoice, plan_account};
use cascade_core::secret::Secret;
use cascade_core::stack::StackInfo;
use cascade_core::template::read_template;
use futures::stream::{self, StreamExt};
use tracing::{debug, warn};

use crate::clients::Clients;
use crate::error::{AwsError, ErrorKind};
use crate::stacks::{describe_stack, original_template};

/// Default number of templates read at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Everything discovery read from the account.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Every stack not deleted, with its template (or why it could not be read).
    pub stacks: Vec<StackInfo>,
    /// The account's exports: name → value.
    pub exports: HashMap<String, String>,
    /// Exports by exporting stack id.
    pub exports_by_stack: HashMap<String, Vec<String>>,
}

/// Reads every stack of the account (DescribeStacks, paginated) and its template.
pub async fn discover(clients: &Clients, concurrency: usize) -> Result<Discovery, AwsError> {
    let described: Vec<Stack> = clients
        .cloudformation
        .describe_stacks()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("cloudformation:DescribeStacks", e))?;
    let stacks: Vec<StackInfo> = stream::iter(
        described
            .into_iter()
            .filter(|s| s.stack_status() != Some(&StackStatus::DeleteComplete)),
    )
    .map(|stack| async move {
        let mut info = stack_info(&stack);
        info.template = read_cached_template(clients, &stack).await;
        info
    })
    .buffer_unordered(concurrency.max(1))
    .collect()
    .await;

    let mut discovery = Discovery {
        stacks,
        ..Discovery::default()
    };
    let exports = read_exports(clients).await?;
    discovery.exports = exports.values;
    discovery.exports_by_stack = exports.by_stack;
    discovery.stacks.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(discovery)
}

/// Discovers the account and plans the batch of `secrets`.
pub async fn plan_secrets(
    clients: &Clients,
    secrets: &[Secret],
    strategy: StrategyChoice,
    concurrency: usize,
) -> Result<Plan, AwsError> {
    let mut discovery = discover(clients, concurrency).await?;
    let mut options = PlanOptions {
        strategy,
        exports: discovery.exports.clone(),
        importers: BTreeMap::new(),
    };
    let first = plan_account(&discovery.stacks, secrets, &options);
    if first.stacks.is_empty() {
        return Ok(crate::pins::with_attention(clients, first).await);
    }
    // Second pass for the dependents only: their stack policies and who imports their exports.
    let dependents: BTreeSet<&str> = first.stacks.iter().map(|p| p.stack_name.as_str()).collect();
    let recreating: BTreeSet<&str> = first
        .stacks
        .iter()
        .filter(|p| p.strategy == Strategy::Recreate)
        .map(|p| p.stack_id.as_str())
        .collect();
    for stack in discovery
        .stacks
        .iter_mut()
        .filter(|s| dependents.contains(s.name.as_str()))
    {
        stack.stack_policy = read_stack_policy(clients, &stack.name).await?;
        if recreating.contains(stack.id.as_str()) {
            for export in discovery
                .exports_by_stack
                .get(&stack.id)
                .into_iter()
                .flatten()
            {
                if let Some(importers) = list_imports(clients, export).await {
                    options
                        .importers
                        .entry(export.clone())
                        .or_default()
                        .extend(importers);
                }
            }
        }
    }
    let plan = plan_account(&discovery.stacks, secrets, &options);
    Ok(crate::pins::with_attention(clients, plan).await)
}

/// Plans one stack again from its current state (a retry after its cause was fixed).
/// `None` when the stack no longer depends on the secrets.
pub async fn plan_one_stack(
    clients: &Clients,
    stack_name: &str,
    secrets: &[Secret],
    strategy: StrategyChoice,
) -> Result<Option<StackOutcome>, AwsError> {
    let stack = describe_stack(clients, stack_name).await?.ok_or_else(|| {
        AwsError::other(
            "cloudformation:DescribeStacks",
            ErrorKind::NotFound,
            format!("stack {stack_name} does not exist"),
        )
    })?;
    let mut info = stack_info(&stack);
    info.template = read_original_template(clients, stack_name).await;
    info.stack_policy = read_stack_policy(clients, stack_name).await?;
    let mut options = PlanOptions {
        strategy,
        ..PlanOptions::default()
    };
    let exports = read_exports(clients).await?;
    options.exports = exports.values;
    let own_exports = exports.by_stack.get(&info.id).cloned().unwrap_or_default();
    for export in own_exports {
        if let Some(importers) = list_imports(clients, &export).await {
            options
                .importers
                .insert(export, importers.into_iter().collect());
        }
    }
    let plan = plan_account(std::slice::from_ref(&info), secrets, &options);
    Ok(plan
        .stacks
        .into_iter()
        .map(StackOutcome::Refresh)
        .chain(plan.skipped.into_iter().map(StackOutcome::Skip))
        .next())
}

/// The account's exports.
struct Exports {
    /// Name → value.
    values: HashMap<String, String>,
    /// Exporting stack id → export names.
    by_stack: HashMap<String, Vec<String>>,
}

/// Reads every export of the account (ListExports, paginated).
async fn read_exports(clients: &Clients) -> Result<Exports, AwsError> {
    let mut exports = Exports {
        values: HashMap::new(),
        by_stack: HashMap::new(),
    };
    let mut pages = clients
        .cloudformation
        .list_exports()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::call("cloudformation:ListExports", e))?;
        for export in page.exports() {
            if let (Some(name), Some(value)) = (export.name(), export.value()) {
                exports.values.insert(name.to_string(), value.to_string());
                if let Some(stack_id) = export.exporting_stack_id() {
                    exports
                        .by_stack
                        .entry(stack_id.to_string())
                        .or_default()
                        .push(name.to_string());
                }
            }
        }
    }
    Ok(exports)
}

fn stack_info(stack: &Stack) -> StackInfo {
    StackInfo {
        name: stack.stack_name().unwrap_or_default().to_string(),
        id: stack.stack_id().unwrap_or_default().to_string(),
        status: stack
            .stack_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        parameters: crate::stacks::parameter_values(stack),
        tags: stack
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect(),
        parent_id: stack.parent_id().map(str::to_string),
        root_id: stack.root_id().map(str::to_string),
        stack_policy: None,
        template: Err("not read yet".into()),
        physical_ids: Default::default(),
    }
}

/// The Original-stage template of a described stack, from the template cache when it has
/// this stack as last updated (then no GetTemplate call), or from CloudFormation (then kept
/// in the cache), or why it could not be read (the stack is then skipped).
async fn read_cached_template(
    clients: &Clients,
    stack: &Stack,
) -> Result<serde_json::Value, String> {
    let name = stack.stack_name().unwrap_or_default();
    let cached = match (&clients.templates, stack.stack_id(), last_updated(stack)) {
        (Some(cache), Some(id), Some(updated)) => Some((cache, id, updated)),
        _ => None,
    };
    let Some((cache, id, updated)) = cached else {
        return read_original_template(clients, name).await;
    };
    let body = match cache.get(id, &updated).await {
        Some(body) => body,
        None => {
            let body = original_template(clients, name)
                .await
                .map_err(|e| e.to_string())?;
            cache.put(id, &updated, &body).await;
            body
        }
    };
    read_template(&body).map_err(|e| format!("the template is not valid: {e}"))
}

/// When the stack's template last changed: its last update, else its creation.
fn last_updated(stack: &Stack) -> Option<String> {
    stack
        .last_updated_time()
        .or(stack.creation_time())
        .map(|t| format!("{}.{:09}", t.secs(), t.subsec_nanos()))
}

/// The Original-stage template, or why it could not be read (the stack is then skipped).
async fn read_original_template(
    clients: &Clients,
    stack_name: &str,
) -> Result<serde_json::Value, String> {
    let body = original_template(clients, stack_name)
        .await
        .map_err(|e| e.to_string())?;
    read_template(&body).map_err(|e| format!("the template is not valid: {e}"))
}

async fn read_stack_policy(
    clients: &Clients,
    stack_name: &str,
) -> Result<Option<String>, AwsError> {
    let out = clients
        .cloudformation
        .get_stack_policy()
        .stack_name(stack_name)
        .send()
        .await
        .map_err(|e| AwsError::call("cloudformation:GetStackPolicy", e))?;
    Ok(out.stack_policy_body().map(str::to_string))
}

/// The stacks importing `export`, or `None` when ListImports fails (the imports found in
/// the account's templates still count).
async fn list_imports(clients: &Clients, export: &str) -> Option<Vec<String>> {
    let mut importers = Vec::new();
    let mut next_token = None;
    loop {
        let page = clients
            .cloudformation
            .list_imports()
            .export_name(export)
            .set_next_token(next_token)
            // An optimisation only (imports are also found in the templates): a failing
            // ListImports must not hold discovery up with retries.
            .customize()
            .config_override(
                aws_sdk_cloudformation::config::Config::builder()
                    .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2)),
            )
            .send()
            .await;
        match page {
            Ok(page) => {
                importers.extend(page.imports().iter().cloned());
                next_token = page.next_token().map(str::to_string);
                if next_token.is_none() {
                    break;
                }
            }
            Err(e) => {
                let e = AwsError::call("cloudformation:ListImports", e);
                if e.kind() == ErrorKind::NotFound {
                    return Some(Vec::new());
                }
                warn!(export, error = %e, "ListImports failed; relying on the imports found in templates");
                return None;
            }
        }
    }
    debug!(export, importers = importers.len(), "ListImports");
    Some(importers)
}
