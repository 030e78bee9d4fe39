//! Reading one stack: DescribeStacks of one stack and its Original-stage template, written
//! once for discovery and the refresh steps.

use std::collections::BTreeMap;

use aws_sdk_cloudformation::types::{Stack, TemplateStage};

use crate::clients::Clients;
use crate::error::{AwsError, ErrorKind};

/// The stack named `stack_name` (a name or an id), or `None` when it does not exist.
pub async fn describe_stack(
    clients: &Clients,
    stack_name: &str,
) -> Result<Option<Stack>, AwsError> {
    match clients
        .cloudformation
        .describe_stacks()
        .stack_name(stack_name)
        .send()
        .await
    {
        Ok(out) => Ok(out.stacks().first().cloned()),
        Err(err) => match AwsError::call("cloudformation:DescribeStacks", err) {
            e if e.kind() == ErrorKind::NotFound => Ok(None),
            e => Err(e),
        },
    }
}

/// The stack's parameter values as the planner evaluates them: an SSM-typed parameter's
/// resolved value, not its SSM key.
pub fn parameter_values(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .parameters()
        .iter()
        .filter_map(|p| {
            let value = p
                .resolved_value()
                .or(p.parameter_value())
                .unwrap_or_default();
            Some((p.parameter_key()?.to_string(), value.to_string()))
        })
        .collect()
}

/// The stack's template as it was submitted (the Original stage), exactly as GetTemplate
/// returns it.
pub async fn original_template(clients: &Clients, stack_name: &str) -> Result<String, AwsError> {
    let out = clients
        .cloudformation
        .get_template()
        .stack_name(stack_name)
        .template_stage(TemplateStage::Original)
        .send()
        .await
        .map_err(|e| AwsError::call("cloudformation:GetTemplate", e))?;
    out.template_body().map(str::to_string).ok_or_else(|| {
        AwsError::other(
            "cloudformation:GetTemplate",
            ErrorKind::Other,
            format!("GetTemplate returned no template body for {stack_name}"),
        )
    })
}
