//! What the bench commands share: the length of their stacks' names and the names.

/// `--name-length`: how long every seeded stack name is (CloudFormation allows 128).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct NameLength {
    /// Characters in each stack name, 8 to 128.
    #[arg(long = "name-length", default_value_t = 40, value_parser = clap::value_parser!(u8).range(8..=128))]
    pub chars: u8,
}

impl NameLength {
    /// The length, in characters.
    pub fn get(self) -> usize {
        usize::from(self.chars)
    }
}

/// A stack name of exactly `length` characters (at least 8), unique by `prefix` and `i`.
pub fn stack_name(prefix: &str, i: usize, length: usize) -> String {
    const STEM: &str = "-payments-api-service-eu-west-1-blue-green-canary-stack-";
    let digits = format!("{i:05}");
    let mut name: String = prefix
        .chars()
        .chain(STEM.chars().cycle())
        .take(length.saturating_sub(digits.len()))
        .collect();
    name.push_str(&digits);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_the_length_asked_and_differ_by_index() {
        let a = stack_name("prod", 7, 128);
        assert_eq!(a.len(), 128);
        assert!(
            a.starts_with("prod-payments-") && a.ends_with("00007"),
            "{a}"
        );
        assert_ne!(stack_name("prod", 8, 40), stack_name("prod", 9, 40));
        assert_eq!(stack_name("smp", 1, 8), "smp00001");
    }
}
