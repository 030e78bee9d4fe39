//! Resolves the secrets of a batch through Secrets Manager: name, ARN, current version, and
//! the CloudFormation resource that owns it; lists a secret's versions and their staging
//! labels. Never reads a secret's value.

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use cascade_core::pins::SecretVersions;
use cascade_core::secret::{AWSCURRENT, Secret, SecretOwner};

use crate::clients::Clients;
use crate::error::AwsError;

/// Describes `id` (a name, full ARN or partial ARN) with DescribeSecret.
pub async fn resolve_secret(clients: &Clients, id: &str) -> Result<Secret, AwsError> {
    let out = match clients.secrets.describe_secret().secret_id(id).send().await {
        Ok(out) => out,
        Err(err) => {
            if matches!(
                err.as_service_error(),
                Some(DescribeSecretError::ResourceNotFoundException(_))
            ) {
                return Err(AwsError::SecretNotFound(id.to_string()));
            }
            return Err(AwsError::call("secretsmanager:DescribeSecret", err));
        }
    };
    if out.deleted_date().is_some() {
        return Err(AwsError::SecretDeleted(id.to_string()));
    }
    let version_id = out.version_ids_to_stages().and_then(|versions| {
        versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == AWSCURRENT))
            .map(|(version, _)| version.clone())
    });
    let tag = |key: &str| {
        out.tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    let owner = match (
        tag("aws:cloudformation:stack-id"),
        tag("aws:cloudformation:logical-id"),
    ) {
        (Some(stack_id), Some(logical_id)) => Some(SecretOwner {
            stack_id,
            logical_id,
        }),
        _ => None,
    };
    Ok(Secret {
        name: out.name().unwrap_or(id).to_string(),
        arn: out.arn().unwrap_or(id).to_string(),
        version_id,
        owner,
    })
}

/// Resolves every id, in order; the first missing secret is an error naming it.
pub async fn resolve_secrets(clients: &Clients, ids: &[String]) -> Result<Vec<Secret>, AwsError> {
    let mut secrets: Vec<Secret> = Vec::with_capacity(ids.len());
    for id in ids {
        let secret = resolve_secret(clients, id).await?;
        if !secrets.iter().any(|s| s.arn == secret.arn) {
            secrets.push(secret);
        }
    }
    Ok(secrets)
}

/// Every version of `id` (a name, full ARN or partial ARN) with its staging labels, from
/// ListSecretVersionIds with `IncludeDeprecated` (every page): a version without a label is
/// deprecated (Secrets Manager deletes those once a secret has many versions), a version
/// missing from the answer no longer exists. Only ids and labels: never a value.
///
/// moto (the local stack) ignores `IncludeDeprecated` and always lists every version,
/// unlabelled ones included, in one page (`NextToken` empty): what AWS answers with the
/// flag, so the same code serves both.
pub async fn secret_versions(clients: &Clients, id: &str) -> Result<SecretVersions, AwsError> {
    let mut versions = SecretVersions::new();
    let mut pages = clients
        .secrets
        .list_secret_version_ids()
        .secret_id(id)
        .include_deprecated(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::call("secretsmanager:ListSecretVersionIds", e))?;
        for version in page.versions() {
            if let Some(version_id) = version.version_id() {
                versions.insert(version_id.to_string(), version.version_stages().to_vec());
            }
        }
    }
    Ok(versions)
}
