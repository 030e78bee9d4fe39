//! The `cascade restore` command a report prints for a degraded stack. It is complete: run
//! as printed, where the report was produced (with that place's credentials), it finds the
//! batch's saved original and puts the stack back.

use std::borrow::Cow;

/// Where a batch's state is kept, as `cascade restore` must be told to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// An S3 bucket (the deployed application, or `--bucket`), in a region.
    Bucket {
        /// The bucket.
        bucket: String,
        /// Its region, when known.
        region: Option<String>,
    },
    /// A local directory other than the default one (an absolute path).
    Directory(String),
    /// The CLI's default local state directory: nothing to say.
    DefaultDirectory,
}

/// What the restore command of a batch needs besides the stack: where the state is, and the
/// CloudFormation service role the batch's updates used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreTarget {
    /// Where the batch's state is.
    pub location: StateLocation,
    /// The role the batch passed to CloudFormation (`--execution-role-arn`), if any.
    pub execution_role_arn: Option<String>,
}

impl RestoreTarget {
    /// A target in the default local state directory, with no service role.
    pub fn default_directory() -> Self {
        RestoreTarget {
            location: StateLocation::DefaultDirectory,
            execution_role_arn: None,
        }
    }

    /// The command that puts `stack_name` back as it was before batch `batch_id` touched
    /// it, every word quoted for a POSIX shell where it needs to be.
    pub fn command(&self, batch_id: &str, stack_name: &str) -> String {
        let mut words: Vec<Cow<'_, str>> = vec![
            "cascade".into(),
            "restore".into(),
            "--stack".into(),
            shell_word(stack_name),
            "--batch".into(),
            shell_word(batch_id),
        ];
        match &self.location {
            StateLocation::Bucket { bucket, region } => {
                words.extend(["--bucket".into(), shell_word(bucket)]);
                if let Some(region) = region {
                    words.extend(["--region".into(), shell_word(region)]);
                }
            }
            StateLocation::Directory(dir) => {
                words.extend(["--state-dir".into(), shell_word(dir)]);
            }
            StateLocation::DefaultDirectory => {}
        }
        if let Some(role) = &self.execution_role_arn {
            words.extend(["--execution-role-arn".into(), shell_word(role)]);
        }
        words.join(" ")
    }
}

/// `word` as one word for a POSIX shell: unchanged when it holds only characters no shell
/// treats specially, else in single quotes (a quote inside becomes `'\''`).
pub fn shell_word(word: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_names_where_the_state_is() {
        let bucket = RestoreTarget {
            location: StateLocation::Bucket {
                bucket: "secret-cascade-state-123".into(),
                region: Some("eu-west-1".into()),
            },
            execution_role_arn: Some("arn:aws:iam::123456789012:role/cfn".into()),
        };
        assert_eq!(
            bucket.command("20261202T010203Z-abc123", "orders"),
            "cascade restore --stack orders --batch 20261202T010203Z-abc123 \
             --bucket secret-cascade-state-123 --region eu-west-1 \
             --execution-role-arn arn:aws:iam::123456789012:role/cfn"
        );
        let dir = RestoreTarget {
            location: StateLocation::Directory("/home/ops/cascade state".into()),
            execution_role_arn: None,
        };
        assert_eq!(
            dir.command("b1", "api"),
            "cascade restore --stack api --batch b1 --state-dir '/home/ops/cascade state'"
        );
        assert_eq!(
            RestoreTarget::default_directory().command("b1", "api"),
            "cascade restore --stack api --batch b1"
        );
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("plain-name_1.2/x:y"), "plain-name_1.2/x:y");
        assert_eq!(shell_word("two words"), "'two words'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(shell_word(""), "''");
    }
}
