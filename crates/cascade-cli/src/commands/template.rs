//! `cascade template to-json FILE`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cascade_core::template::{read_template, to_json_pretty};

/// Prints the template as long-form JSON; a malformed one is an error with file, line and
/// reason.
pub async fn to_json(file: &Path) -> anyhow::Result<ExitCode> {
    let text = tokio::fs::read_to_string(file)
        .await
        .with_context(|| format!("cannot read {}", file.display()))?;
    match read_template(&text) {
        Ok(value) => {
            print!("{}", to_json_pretty(&value));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => bail!("{}: {e}", file.display()),
    }
}
