//! Why a queue message is not a ticket. The text names the problem, never the message's
//! content (which could hold anything, a secret value included).

/// Why a message is not a ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The body is not JSON.
    #[error("the message is not valid JSON ({reason} at line {line}, column {column})")]
    Malformed {
        /// The kind of syntax error.
        reason: &'static str,
        /// Where it was found.
        line: usize,
        /// Where it was found.
        column: usize,
    },
    /// The body is JSON but neither an EventBridge event nor a manual ticket.
    #[error(
        "the message is neither an EventBridge event nor a manual ticket ({0}); \
         expected `detail-type` and `source`, or `\"kind\": \"manual\"`"
    )]
    UnknownShape(&'static str),
    /// A field the shape requires is missing.
    #[error("the {shape} has no `{field}`")]
    MissingField {
        /// What the message was taken for, e.g. `manual ticket`.
        shape: &'static str,
        /// The missing field, as a path.
        field: &'static str,
    },
    /// A field is there but unusable.
    #[error("the {shape} has an invalid `{field}`: {reason}")]
    InvalidField {
        /// What the message was taken for, e.g. `manual ticket`.
        shape: &'static str,
        /// The field, as a path.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl TicketError {
    /// A body that is not JSON: where and a few words on why, without quoting the input.
    pub(super) fn malformed(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let reason = match error.classify() {
            Category::Eof => "unexpected end of input",
            Category::Syntax => "syntax error",
            Category::Data => "unsupported value",
            Category::Io => "read error",
        };
        TicketError::Malformed {
            reason,
            line: error.line(),
            column: error.column(),
        }
    }
}

/// A field that is there but unusable.
pub(super) fn invalid(
    shape: &'static str,
    field: &'static str,
    reason: &'static str,
) -> TicketError {
    TicketError::InvalidField {
        shape,
        field,
        reason,
    }
}
