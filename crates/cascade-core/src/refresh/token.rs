//! The updates a refresh makes, and the `ClientRequestToken`s that make a retried call
//! harmless.

use std::fmt;

/// The updates a refresh makes to a stack, by what they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateStep {
    /// `recreate`: the template without the affected resources.
    Remove,
    /// `pin`: the template with the references pinned to the new version.
    Pin,
    /// Back to the saved original template and parameters.
    Restore,
}

impl UpdateStep {
    /// The step's name in request tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateStep::Remove => "remove",
            UpdateStep::Pin => "pin",
            UpdateStep::Restore => "restore",
        }
    }

    /// The name of the template it sends, in the keys of templates sent through S3.
    pub fn template_name(self) -> &'static str {
        match self {
            UpdateStep::Remove => "remove",
            UpdateStep::Pin => "pin",
            UpdateStep::Restore => "original",
        }
    }
}

impl fmt::Display for UpdateStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `ClientRequestToken` for one update of a batch: the same step retried gets the same
/// token (CloudFormation then knows it is not a second update); `attempt` tells a
/// deliberate new attempt (`--retry-failed`) from a retried call.
pub fn client_request_token(batch_id: &str, step: UpdateStep, attempt: u32) -> String {
    token(&format!("cascade-{batch_id}-{step}-{attempt}"))
}

/// The token of a restore asked for by hand (`cascade restore`) at `at`: each is its own
/// update.
pub fn manual_restore_token(batch_id: &str, at: jiff::Timestamp) -> String {
    token(&format!(
        "cascade-{batch_id}-manual-restore-{}-1",
        at.as_millisecond()
    ))
}

/// The longest change set name CloudFormation takes.
pub const MAX_CHANGE_SET_NAME: usize = 128;

/// The name of the change set of one update of a batch: the same step retried (or
/// resumed) gets the same name, so it finds the change set an earlier try created instead
/// of creating a second one; `attempt` tells a deliberate new attempt apart. The stack is
/// part of the name (names are per stack in AWS, but one name per stack keeps them apart
/// wherever they are listed together); a name over 128 characters is cut and ends with a
/// digest of the whole, so it stays distinct.
pub fn change_set_name(batch_id: &str, stack_name: &str, step: UpdateStep, attempt: u32) -> String {
    change_set(&format!("cascade-{batch_id}-{step}-{attempt}-{stack_name}"))
}

/// The change set name of a restore asked for by hand (`cascade restore`) at `at`.
pub fn manual_restore_change_set_name(
    batch_id: &str,
    stack_name: &str,
    at: jiff::Timestamp,
) -> String {
    change_set(&format!(
        "cascade-{batch_id}-manual-restore-{}-{stack_name}",
        at.as_millisecond()
    ))
}

/// `raw` as a valid change set name: letters, digits and hyphens, starting with a letter
/// (`raw` starts with `cascade-`), at most [`MAX_CHANGE_SET_NAME`] long.
fn change_set(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if clean.len() <= MAX_CHANGE_SET_NAME {
        return clean;
    }
    let digest: String = {
        use sha2::{Digest, Sha256};
        Sha256::digest(raw.as_bytes())[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let keep = MAX_CHANGE_SET_NAME - digest.len() - 1;
    format!("{}-{digest}", &clean[..keep])
}

/// `raw` with every character a token may not hold replaced, at most 128 long.
fn token(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        name.len() <= MAX_CHANGE_SET_NAME
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    }

    #[test]
    fn change_set_names_are_valid_deterministic_and_distinct() {
        let name = change_set_name("b_1.x", "app", UpdateStep::Remove, 1);
        assert_eq!(name, "cascade-b-1-x-remove-1-app");
        assert_eq!(name, change_set_name("b_1.x", "app", UpdateStep::Remove, 1));
        assert_ne!(
            name,
            change_set_name("b_1.x", "app", UpdateStep::Restore, 1)
        );
        assert_ne!(name, change_set_name("b_1.x", "app", UpdateStep::Remove, 2));
        assert_ne!(
            name,
            change_set_name("b_1.x", "other", UpdateStep::Remove, 1)
        );
        let long = "s".repeat(128);
        let a = change_set_name("b", &long, UpdateStep::Pin, 1);
        let b = change_set_name("b", &format!("{long}x"), UpdateStep::Pin, 1);
        assert!(valid(&a) && valid(&b) && valid(&name), "{a} {b}");
        assert_eq!(a.len(), MAX_CHANGE_SET_NAME);
        assert_ne!(a, b, "cut names stay distinct");
        let at: jiff::Timestamp = "2026-11-26T00:00:00Z".parse().unwrap();
        let manual = manual_restore_change_set_name("b", "app", at);
        assert!(valid(&manual), "{manual}");
        assert_ne!(manual, change_set_name("b", "app", UpdateStep::Restore, 1));
    }
}
