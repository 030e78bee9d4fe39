//! The AWS side of Secret Cascade. Everything that talks to AWS lives here; what to do
//! with the answers is decided in `cascade-core`.
//!
//! - [`clients`]: SDK clients built once (endpoint override for the local stack), and
//!   [`calls`], which counts their calls; [`error`] classifies every failure once, by kind.
//! - [`secrets`] resolves the changed secrets (and lists their versions, which [`pins`]
//!   checks the pinned references against); [`stacks`] reads one stack;
//!   [`discovery`] finds and plans the dependent stacks of an account, keeping the
//!   templates it read in a [`template_cache`].
//! - [`refresh`] carries out the refresh steps of one stack, each update through a
//!   [`change_set`]; [`run`] runs a whole batch
//!   from one machine; [`store`] and [`batch_store`] keep a batch's state, originals and
//!   report (S3 or a directory).
//! - [`ecs`] restarts a service whose tasks read a secret when they start.
//! - [`gatekeeper`] turns queued tickets into one execution at a time; [`slack`] posts
//!   the message.
//! - [`status`] reads what the deployed application is doing; [`dead_letters`] reads and
//!   redrives its dead-letter queue.

pub mod batch_store;
pub mod calls;
pub mod change_set;
pub mod clients;
pub mod dead_letters;
pub mod discovery;
pub mod ecs;
pub mod error;
pub mod gatekeeper;
pub mod pins;
pub mod refresh;
pub mod run;
pub mod secrets;
pub mod slack;
pub mod stacks;
pub mod status;
pub mod store;
pub mod template_cache;

pub use clients::{AwsOptions, Clients};
pub use error::{AwsError, ErrorKind};
