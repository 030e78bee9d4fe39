//! One module per subcommand.

pub mod plan;
pub mod template;

use cascade_aws::AwsOptions;

use crate::cli::AwsArgs;

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
