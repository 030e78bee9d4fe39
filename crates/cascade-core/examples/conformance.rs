//! Conformance check of the template reader against a corpus converted by cfn-flip.
//!
//! For every `NAME.yaml` in DIR, reads it with `read_template` and compares the value with
//! `NAME.expected.json` (cfn-flip's JSON), as parsed JSON values. Prints
//! `conformance: N/M`, then each failure with its reason, then how long the reads took.
//! Exits 1 if any template fails or DIR holds none.
//!
//! ```text
//! cargo run -q -p cascade-core --example conformance -- [DIR]
//! ```
//! DIR defaults to `../shared/corpus/cfn-templates` beside the workspace.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cascade_core::template::read_template;
use serde_json::Value;

/// How many times the largest template is read to time it.
const TIMING_ROUNDS: u32 = 20;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(default_dir, PathBuf::from);
    let templates = match yaml_files(&dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("conformance: cannot list {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    if templates.is_empty() {
        eprintln!("conformance: no *.yaml templates in {}", dir.display());
        return ExitCode::FAILURE;
    }

    let mut failures = Vec::new();
    let mut total = Duration::ZERO;
    for path in &templates {
        let name = path.file_stem().unwrap_or_default().to_string_lossy();
        let started = Instant::now();
        let outcome = check(path);
        total += started.elapsed();
        if let Err(reason) = outcome {
            failures.push(format!("{name}: {reason}"));
        }
    }

    let passed = templates.len() - failures.len();
    println!("conformance: {passed}/{}", templates.len());
    for failure in &failures {
        println!("FAIL {failure}");
    }
    if let Some(timing) = time_largest(&templates) {
        println!("{timing}");
    }
    println!(
        "all {} templates read and compared in {total:.2?}",
        templates.len()
    );

    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/cfn-templates")
}

/// The `*.yaml` files of `dir`, sorted.
fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads one template and compares it with its expected JSON.
fn check(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let expected_path = path.with_extension("expected.json");
    let expected_text = std::fs::read_to_string(&expected_path)
        .map_err(|e| format!("cannot read {}: {e}", expected_path.display()))?;
    let expected: Value = serde_json::from_str(&expected_text)
        .map_err(|e| format!("{} is not JSON: {e}", expected_path.display()))?;
    let actual = read_template(&text).map_err(|e| format!("read error: {e}"))?;
    match first_difference("", &expected, &actual) {
        None => Ok(()),
        Some(difference) => Err(difference),
    }
}

/// Where two values first differ, as a JSON pointer and both sides.
fn first_difference(path: &str, expected: &Value, actual: &Value) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            if let Some(key) = e.keys().find(|k| !a.contains_key(*k)) {
                return Some(format!("{path}/{key}: missing"));
            }
            if let Some(key) = a.keys().find(|k| !e.contains_key(*k)) {
                return Some(format!("{path}/{key}: unexpected"));
            }
            e.iter()
                .find_map(|(key, value)| first_difference(&format!("{path}/{key}"), value, &a[key]))
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (e, a))| first_difference(&format!("{path}/{i}"), e, a)),
        _ if expected == actual => None,
        _ => Some(format!(
            "{}: expected {}, got {}",
            if path.is_empty() { "/" } else { path },
            abbreviate(expected),
            abbreviate(actual)
        )),
    }
}

fn abbreviate(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Times reading the largest template (by size), a few rounds.
fn time_largest(templates: &[PathBuf]) -> Option<String> {
    let largest = templates
        .iter()
        .max_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len()))?;
    let text = std::fs::read_to_string(largest).ok()?;
    let started = Instant::now();
    for _ in 0..TIMING_ROUNDS {
        let _ = std::hint::black_box(read_template(std::hint::black_box(&text)));
    }
    let mean = started.elapsed() / TIMING_ROUNDS;
    Some(format!(
        "largest template: {} ({} bytes, {} lines) read in {mean:.2?} (mean of {TIMING_ROUNDS})",
        largest.file_name()?.to_string_lossy(),
        text.len(),
        text.lines().count()
    ))
}
