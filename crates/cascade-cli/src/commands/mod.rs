//! One module per subcommand, and what they share: AWS options and the state store.

pub mod dlq;
pub mod enqueue;
pub mod plan;
pub mod report;
pub mod restore;
pub mod run;
pub mod status;
pub mod template;

use std::path::PathBuf;

use cascade_aws::refresh::{RefreshSettings, Refresher};
use cascade_aws::store::Store;
use cascade_aws::template_cache::TemplateCache;
use cascade_aws::{AwsOptions, Clients};

use crate::cli::{AwsArgs, StateArgs, TemplateCacheArgs};
use crate::failure::NoRegion;

impl From<&AwsArgs> for AwsOptions {
    fn from(args: &AwsArgs) -> Self {
        AwsOptions {
            region: args.region.clone(),
            endpoint_url: args.endpoint_url.clone(),
            profile: args.profile.clone(),
            // The standard variable; unset or unreadable: the default (8).
            max_attempts: std::env::var("AWS_MAX_ATTEMPTS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|n| *n > 0),
        }
    }
}

/// The local state directory: `--state-dir`, else the default one
/// ([`cascade_aws::store::default_state_dir`]).
pub fn state_dir(args: &StateArgs) -> PathBuf {
    args.state_dir
        .clone()
        .unwrap_or_else(cascade_aws::store::default_state_dir)
}

/// The state store the arguments name.
pub fn store(clients: &Clients, args: &StateArgs) -> Store {
    match &args.bucket {
        Some(bucket) => Store::s3(clients.s3.clone(), bucket.clone()),
        None => Store::Local(state_dir(args)),
    }
}

/// The AWS clients the arguments describe; an error when no region is configured, before
/// any call is made.
pub async fn clients(aws: &AwsArgs) -> anyhow::Result<Clients> {
    let clients = Clients::load(&AwsOptions::from(aws)).await;
    if clients.region().is_none() {
        return Err(NoRegion.into());
    }
    Ok(clients)
}

/// The clients keeping the templates planning reads in the CLI's template cache, unless
/// `--no-template-cache` (or the cache directory cannot be made: then a warning).
pub fn with_template_cache(clients: Clients, args: &TemplateCacheArgs) -> Clients {
    if args.no_template_cache {
        return clients;
    }
    let dir = TemplateCache::default_dir();
    match TemplateCache::in_directory(dir.clone()) {
        Ok(cache) => clients.with_template_cache(cache),
        Err(e) => {
            tracing::warn!(
                "template cache {} not usable ({e}): every template is read from CloudFormation",
                dir.display()
            );
            clients
        }
    }
}

/// Clients, store and settings for the refresh steps.
pub async fn refresher(
    aws: &AwsArgs,
    state: &StateArgs,
    settings: RefreshSettings,
) -> anyhow::Result<Refresher> {
    let clients = clients(aws).await?;
    Ok(Refresher {
        store: store(&clients, state),
        clients,
        settings,
    })
}
