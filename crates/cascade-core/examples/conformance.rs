//! Conformance check of the template reader against a corpus converted by cfn-flip.
//!
//! For every template in DIR (`NAME.yaml`, `NAME.yml` or `NAME.json`), reads it with
//! `read_template` and compares the value with `NAME.expected.json` (cfn-flip's JSON), as
//! parsed JSON values. A template with `NAME.rejected.txt` instead (cfn-flip's error) is one
//! that cfn-flip rejects: the reader should reject it too, and its error is shown.
//!
//! Prints `LABEL: N/M` (LABEL is `conformance` unless `--label` says otherwise), then each
//! failure with its reason, then, if there are rejected templates, `rejected too: K/L` and
//! the reader's error for each, then how long the reads took. Exits 1 if any template with
//! an expected JSON fails or DIR holds none; a rejected template that the reader accepts is
//! listed (`ACCEPTED`) but is not a failure (the reader may be more lenient than cfn-flip,
//! e.g. on merge keys).
//!
//! ```text
//! cargo run -q -p cascade-core --example conformance -- [--label LABEL] [DIR]
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
    let mut args = std::env::args_os().skip(1);
    let mut label = "conformance".to_owned();
    let mut dir = None;
    while let Some(arg) = args.next() {
        if arg == "--label" {
            let Some(value) = args.next() else {
                eprintln!("conformance: --label needs a value");
                return ExitCode::FAILURE;
            };
            label = value.to_string_lossy().into_owned();
        } else {
            dir = Some(PathBuf::from(arg));
        }
    }
    let dir = dir.unwrap_or_else(default_dir);
    let all = match template_files(&dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("conformance: cannot list {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let (rejected, templates): (Vec<PathBuf>, Vec<PathBuf>) = all
        .into_iter()
        .partition(|path| rejected_path(path).exists() && !expected_path(path).exists());
    if templates.is_empty() {
        eprintln!("{label}: no templates in {}", dir.display());
        return ExitCode::FAILURE;
    }

    let mut failures = Vec::new();
    let mut total = Duration::ZERO;
    for path in &templates {
        let started = Instant::now();
        let outcome = check(path);
        total += started.elapsed();
        if let Err(reason) = outcome {
            failures.push(format!("{}: {reason}", name_of(path)));
        }
    }

    let passed = templates.len() - failures.len();
    println!("{label}: {passed}/{}", templates.len());
    for failure in &failures {
        println!("FAIL {failure}");
    }
    if !rejected.is_empty() {
        report_rejected(&rejected);
    }
    if let Some(timing) = time_largest(&templates) {
        println!("{timing}");
    }
    println!(
        "all {} templates read and compared in {total:.2?}",
        templates.len() + rejected.len()
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

/// The templates of `dir` (`*.yaml`, `*.yml`, `*.json` but not `*.expected.json`), sorted.
fn template_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let is_template = [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| name.ends_with(ext))
            && !name.ends_with(".expected.json");
        if is_template {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn name_of(path: &Path) -> String {
    path.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn expected_path(path: &Path) -> PathBuf {
    path.with_extension("expected.json")
}

fn rejected_path(path: &Path) -> PathBuf {
    path.with_extension("rejected.txt")
}

/// Reads the templates that cfn-flip rejects: prints how many the reader rejects too,
/// each reader error, and each template the reader accepts anyway.
fn report_rejected(rejected: &[PathBuf]) {
    let mut lines = Vec::new();
    let mut rejected_too = 0;
    for path in rejected {
        let name = name_of(path);
        let why = std::fs::read_to_string(rejected_path(path)).unwrap_or_default();
        let why = abbreviate_text(why.trim(), 160);
        match std::fs::read_to_string(path) {
            Err(e) => lines.push(format!("REJECTED {name}: cannot read: {e}")),
            Ok(text) => match read_template(&text) {
                Err(e) => {
                    rejected_too += 1;
                    lines.push(format!("REJECTED {name}: {e}"));
                }
                Ok(_) => lines.push(format!("ACCEPTED {name}: cfn-flip rejects it: {why}")),
            },
        }
    }
    println!(
        "rejected too: {rejected_too}/{} (cfn-flip rejects them)",
        rejected.len()
    );
    for line in lines {
        println!("{line}");
    }
}

/// Reads one template and compares it with its expected JSON.
fn check(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let expected_path = expected_path(path);
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
    abbreviate_text(&value.to_string(), 80)
}

fn abbreviate_text(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
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
