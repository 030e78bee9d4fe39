//! One module per subcommand, and what they share: AWS options and the state store.

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
use cascade_aws::{AwsOptions, Clients};

use crate::cli::{AwsArgs, StateArgs};

impl From<&AwsArgs> for AwsOptions {
    fn from(args: &AwsArgs) -> Self {
        AwsOptions {
            region: args.region.clone(),
            endpoint_url: args.endpoint_url.clone(),
            profile: args.profile.clone(),
            max_attempts: None,
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

/// Clients, store and settings for the refresh steps.
pub async fn refresher(aws: &AwsArgs, state: &StateArgs, settings: RefreshSettings) -> Refresher {
    let clients = Clients::load(&AwsOptions::from(aws)).await;
    Refresher {
        store: store(&clients, state),
        clients,
        settings,
    }
}
