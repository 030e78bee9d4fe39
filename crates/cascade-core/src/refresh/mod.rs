//! The refresh of one stack (DESIGN.md §2), decided without I/O:
//!
//! - [`state`]: the stack's saved state and its transitions, the one owner of what a
//!   refresh does next and what an observation makes of it;
//! - [`template`]: the templates the updates send (`recreate`'s removal, `pin`'s pins);
//! - [`status`]: how a stack status reads for an update being waited on;
//! - [`token`]: the updates by what they do, and their request tokens;
//! - [`rollout`]: how an ECS service's new deployment reads (the `restart` action).

pub mod rollout;
pub mod state;
pub mod status;
pub mod template;
pub mod token;

pub use rollout::{DeploymentView, Rollout, rollout_of};
pub use state::{Observation, Settled, StackState, Step, UpdateAnswer, update_timed_out};
pub use status::{Look, UpdateProgress};
pub use template::{
    MAX_TEMPLATE_BODY_BYTES, MAX_TEMPLATE_BYTES, PLACEHOLDER_ID, Pin, RefreshError,
    check_template_size, pinned_template, removal_template, repinned_template,
};
pub use token::{
    UpdateStep, change_set_name, client_request_token, manual_restore_change_set_name,
    manual_restore_token,
};

#[cfg(test)]
mod tests;
