//! Glob matching: one wildcard for any run of characters and, optionally, one for any
//! single character. Stack policies use `*` and `?`; secret patterns use
//! [`crate::eval::HOLE`] for the parts that could not be evaluated.

/// The wildcard characters of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wildcards {
    /// Stands for any run of characters, the empty one included.
    pub any_run: char,
    /// Stands for any one character, when the patterns have such a wildcard.
    pub any_one: Option<char>,
}

impl Wildcards {
    /// `*` for any run of characters and `?` for any one, as in IAM and stack policies.
    pub const STAR_QUESTION: Wildcards = Wildcards {
        any_run: '*',
        any_one: Some('?'),
    };

    /// Only `any_run` is a wildcard; every other character stands for itself.
    pub const fn any_run(any_run: char) -> Wildcards {
        Wildcards {
            any_run,
            any_one: None,
        }
    }
}

/// Whether all of `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str, wildcards: Wildcards) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let fits = |p: char, t: char| p == t || wildcards.any_one == Some(p);
    let (mut p, mut t) = (0, 0);
    // The last `any_run` seen and the text position it is tried from.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == wildcards.any_run {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && fits(pattern[p], text[t]) {
            p += 1;
            t += 1;
        } else if let Some((bp, bt)) = backtrack {
            p = bp + 1;
            t = bt + 1;
            backtrack = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == wildcards.any_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_backtracks() {
        let star = Wildcards::any_run('*');
        assert!(matches("a*b*c", "aXbYbZc", star));
        assert!(!matches("a*b*c", "aXbYbZ", star));
        assert!(matches("**", "", star));
    }

    #[test]
    fn question_marks_are_wildcards_only_when_named() {
        let policy = Wildcards::STAR_QUESTION;
        assert!(matches(
            "AWS::RDS::DB?nstance",
            "AWS::RDS::DBInstance",
            policy
        ));
        assert!(matches(
            "AWS::*::DBInstance",
            "AWS::RDS::DBInstance",
            policy
        ));
        assert!(!matches("AWS::EC2::*", "AWS::RDS::DBInstance", policy));
        assert!(!matches("a?", "a", policy));
        assert!(!matches("a?", "ab", Wildcards::any_run('*')));
        assert!(matches("a?", "a?", Wildcards::any_run('*')));
        assert!(matches("é*", "école", policy), "characters, not bytes");
    }
}
