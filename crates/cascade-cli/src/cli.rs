//! The command line: `cascade plan`, `cascade template to-json`.

use std::path::PathBuf;

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
    /// Work with template files.
    #[command(subcommand)]
    Template(TemplateCommand),
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
    /// Plan one template file offline, making no AWS call.
    #[arg(long, value_name = "FILE", requires = "secret_arns")]
    pub template: Option<PathBuf>,
    /// With --template: the full ARN of a changed secret (repeatable).
    #[arg(long = "secret-arn", value_name = "ARN", requires = "template")]
    pub secret_arns: Vec<String>,
    /// With --template: a parameter value, KEY=VALUE (repeatable); others take their Default.
    #[arg(long = "parameter", value_name = "KEY=VALUE", requires = "template", value_parser = parse_key_value)]
    pub parameters: Vec<(String, String)>,
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
    pub aws: AwsArgs,
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
    fn plan_needs_secrets_or_a_template_with_secret_arns() {
        assert!(Cli::try_parse_from(["cascade", "plan"]).is_err());
        assert!(Cli::try_parse_from(["cascade", "plan", "--template", "t.yaml"]).is_err());
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
