//! Default timings of a refresh, shared by the CLI's flags, the Lambda functions'
//! configuration and the refresh steps.

/// Seconds before the first look at an updating stack (the CLI then doubles the wait).
pub const POLL_SECONDS: u64 = 5;

/// Longest wait, in seconds, between two looks at an updating stack; the serverless path
/// waits this long between looks unless configured otherwise.
pub const MAX_POLL_SECONDS: u64 = 30;

/// Longest wait, in seconds, for one update before giving up on it.
pub const MAX_WAIT_SECONDS: u64 = 60 * 60;
