//! The command line: every subcommand's arguments and their defaults.

use std::path::PathBuf;

use cascade_core::defaults;
use cascade_core::plan::StrategyChoice;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Secret Cascade: refresh every CloudFormation stack that depends on a changed secret.
#[derive(Debug, Parser)]
#[command(name = "cascade", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show which stacks depend on the given secrets, what would be refreshed, and why.
    Plan(PlanArgs),
    /// Refresh every stack that depends on the given secrets, one at a time.
    Run(RunArgs),
    /// Put a stack back as it was before a batch changed it (the saved original).
    Restore(RestoreArgs),
    /// Queue a manual ticket for the deployed application (as if the secret had changed).
    Enqueue(EnqueueArgs),
    /// Show the deployed application: the running batch (stack i of n, its phase), the last
    /// batches, tickets waiting and the dead-letter queue.
    Status(StatusArgs),
    /// The deployed application's dead-letter queue: list, redrive.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Show a batch's report.
    Report(ReportArgs),
    /// Work with template files.
    #[command(subcommand)]
    Template(TemplateCommand),
}

/// Where batches keep their state: an S3 bucket, or a local directory.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// Keep state, large templates and reports in this S3 bucket (needed for templates over
    /// 51,200 bytes).
    #[arg(long, env = "CASCADE_BUCKET", global = true)]
    pub bucket: Option<String>,
    /// Local state directory when no bucket is given [default: $XDG_STATE_HOME/secret-cascade
    /// or ~/.local/state/secret-cascade].
    #[arg(long, env = "CASCADE_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A changed secret: name, ARN or partial ARN (repeatable).
    #[arg(long = "secret", value_name = "ID", required_unless_present_any = ["resume", "retry_failed"])]
    pub secrets: Vec<String>,
    /// Refresh strategy; a stack's `cascade:strategy` tag overrides it.
    #[arg(long, value_enum, default_value_t = StrategyArg::Auto)]
    pub strategy: StrategyArg,
    /// Only these stacks (repeatable); each must depend on the secrets.
    #[arg(long = "stack", value_name = "NAME")]
    pub stacks: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Continue an interrupted batch from its saved state.
    #[arg(long, value_name = "BATCH", conflicts_with_all = ["secrets", "retry_failed", "stacks"])]
    pub resume: Option<String>,
    /// Refresh again only the stacks that ended failed or degraded in a batch.
    #[arg(long, value_name = "BATCH", conflicts_with_all = ["secrets", "resume", "stacks"])]
    pub retry_failed: Option<String>,
    /// Also write report.json and report.md into this directory.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Post the outcome to Slack: the Secrets Manager secret holding the incoming-webhook
    /// URL (plain, or JSON {"webhook_url": ...}).
    #[arg(long, value_name = "ID", env = "CASCADE_SLACK_WEBHOOK_SECRET")]
    pub slack_webhook_secret: Option<String>,
    /// Role CloudFormation uses for the updates [default: each stack's own role].
    #[arg(long, value_name = "ARN")]
    pub execution_role_arn: Option<String>,
    /// Seconds between the first two looks at an updating stack (then growing by half).
    #[arg(long, default_value_t = defaults::POLL_SECONDS as f64)]
    pub poll_seconds: f64,
    /// Longest wait, in seconds, between two looks.
    #[arg(long, default_value_t = defaults::MAX_POLL_SECONDS as f64)]
    pub max_poll_seconds: f64,
    /// Longest wait, in seconds, for one update before giving up on it.
    #[arg(long, default_value_t = defaults::MAX_WAIT_SECONDS as f64)]
    pub max_wait_seconds: f64,
    /// Templates read at once while planning.
    #[arg(long, default_value_t = cascade_aws::discovery::DEFAULT_CONCURRENCY as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    #[command(flatten)]
    pub cache: TemplateCacheArgs,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The stack.
    #[arg(long)]
    pub stack: String,
    /// The batch whose saved original to put back.
    #[arg(long)]
    pub batch: String,
    /// Role CloudFormation uses for the update [default: the stack's own role].
    #[arg(long, value_name = "ARN")]
    pub execution_role_arn: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// A secret to refresh the stacks of: name, ARN or partial ARN (repeatable).
    #[arg(long = "secret", value_name = "ID", required = true)]
    pub secrets: Vec<String>,
    /// Only these stacks (repeatable).
    #[arg(long = "stack", value_name = "NAME")]
    pub stacks: Vec<String>,
    /// Who asks (default: $USER).
    #[arg(long)]
    pub requested_by: Option<String>,
    /// The ticket queue [default: the output TicketQueueUrl of --stack-name].
    #[arg(long, env = "CASCADE_QUEUE_URL")]
    pub queue_url: Option<String>,
    #[command(flatten)]
    pub deployed: DeployedArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Which deployed application: its CloudFormation stack.
#[derive(Debug, Clone, Args)]
pub struct DeployedArgs {
    /// The application's stack (samconfig.toml's stack_name); its outputs name the queues,
    /// the state machine and the bucket.
    #[arg(long, env = "CASCADE_STACK_NAME", default_value = "secret-cascade")]
    pub stack_name: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub deployed: DeployedArgs,
    /// How many recent executions to show.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=100))]
    pub last: i32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// The dead letters (at most 10, oldest first): when, how often received, and what
    /// reading each as a ticket says now. Bodies are not printed.
    List {
        #[command(flatten)]
        deployed: DeployedArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Move every dead letter back to the ticket queue (after fixing what made it fail).
    Redrive {
        #[command(flatten)]
        deployed: DeployedArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown.
    Md,
    /// JSON (the report contract).
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The batch id, or `latest`.
    #[arg(default_value = "latest")]
    pub batch: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Print a template (JSON, or YAML with short-form tags) as long-form JSON.
    ToJson {
        /// The template file.
        file: PathBuf,
    },
}

/// Where to reach AWS. Unset options fall back to the usual chain (AWS_PROFILE,
/// AWS_REGION, AWS_ENDPOINT_URL, config files).
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Endpoint override, e.g. the local stack at http://127.0.0.1:4566 (default: AWS_ENDPOINT_URL).
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// Named profile (default: AWS_PROFILE).
    #[arg(long, global = true)]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people.
    Table,
    /// One JSON object (see README, "Plan JSON").
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    Auto,
    Recreate,
    Pin,
}

impl From<StrategyArg> for StrategyChoice {
    fn from(s: StrategyArg) -> Self {
        match s {
            StrategyArg::Auto => StrategyChoice::Auto,
            StrategyArg::Recreate => StrategyChoice::Recreate,
            StrategyArg::Pin => StrategyChoice::Pin,
        }
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A changed secret: name, ARN or partial ARN (repeatable). Reads the account.
    #[arg(
        long = "secret",
        value_name = "ID",
        required_unless_present = "template",
        conflicts_with = "template"
    )]
    pub secrets: Vec<String>,
    /// Plan one template file offline, making no AWS call; without --secret-arn, list every
    /// Secrets Manager reference in it (the inventory).
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// With --template: the full ARN of a changed secret (repeatable).
    #[arg(long = "secret-arn", value_name = "ARN", requires = "template")]
    pub secret_arns: Vec<String>,
    /// With --template: a parameter value, KEY=VALUE (repeatable); others take their Default.
    #[arg(long = "parameter", value_name = "KEY=VALUE", requires = "template", value_parser = parse_key_value)]
    pub parameters: Vec<(String, String)>,
    /// With --template: an export's value, NAME=VALUE, as ListExports gives it (repeatable).
    #[arg(long = "export", value_name = "NAME=VALUE", requires = "template", value_parser = parse_key_value)]
    pub exports: Vec<(String, String)>,
    /// With --template: the physical id of one of the stack's resources,
    /// LOGICAL_ID=PHYSICAL_ID, e.g. the ARN of a secret the stack creates (repeatable).
    #[arg(long = "resource", value_name = "LOGICAL_ID=PHYSICAL_ID", requires = "template", value_parser = parse_key_value)]
    pub resources: Vec<(String, String)>,
    /// With --template: the stack's name (AWS::StackName; default: the file's name).
    #[arg(long, value_name = "NAME", requires = "template")]
    pub stack_name: Option<String>,
    /// With --template: the account id for AWS::AccountId (default: the first secret's).
    /// The region is --region (default: the first secret's).
    #[arg(long, value_name = "ID", requires = "template")]
    pub account: Option<String>,
    /// Refresh strategy; a stack's `cascade:strategy` tag overrides it.
    #[arg(long, value_enum, default_value_t = StrategyArg::Auto)]
    pub strategy: StrategyArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Templates read at once.
    #[arg(long, default_value_t = cascade_aws::discovery::DEFAULT_CONCURRENCY as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    #[command(flatten)]
    pub cache: TemplateCacheArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Where planning keeps the templates it read from the account.
#[derive(Debug, Clone, Args)]
pub struct TemplateCacheArgs {
    /// Read every template from CloudFormation, and keep none. By default templates are
    /// kept by stack id and last-updated time in `$XDG_CACHE_HOME/secret-cascade/templates`
    /// (`~/.cache/...`), so the next plan reads only the stacks updated since.
    #[arg(long)]
    pub no_template_cache: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("A=b=c").unwrap(),
            ("A".into(), "b=c".into())
        );
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("nothing").is_err());
    }

    #[test]
    fn plan_needs_secrets_or_a_template() {
        assert!(Cli::try_parse_from(["cascade", "plan"]).is_err());
        // A template alone: the inventory.
        assert!(Cli::try_parse_from(["cascade", "plan", "--template", "t.yaml"]).is_ok());
        assert!(
            Cli::try_parse_from([
                "cascade",
                "plan",
                "--template",
                "t.yaml",
                "--export",
                "shared-Arn=arn:x",
                "--resource",
                "DbSecret=arn:y",
                "--stack-name",
                "orders",
                "--account",
                "123456789012",
                "--region",
                "eu-west-1"
            ])
            .is_ok()
        );
        assert!(
            Cli::try_parse_from([
                "cascade",
                "plan",
                "--secret",
                "db",
                "--template",
                "t.yaml",
                "--secret-arn",
                "a"
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from(["cascade", "plan", "--secret", "db", "--format", "json"]).is_ok()
        );
        assert!(
            Cli::try_parse_from([
                "cascade",
                "plan",
                "--template",
                "t.yaml",
                "--secret-arn",
                "a",
                "--parameter",
                "K=V"
            ])
            .is_ok()
        );
    }
}
