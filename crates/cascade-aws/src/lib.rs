//! The AWS side of Secret Cascade: SDK clients (with an endpoint override for the local
//! stack), secret resolution and discovery of the stacks of an account.
//!
//! Everything that talks to AWS lives here; what to do with the answers is decided in
//! `cascade-core`.

pub mod calls;
pub mod clients;
pub mod discovery;
pub mod error;
pub mod gatekeeper;
pub mod refresh;
pub mod run;
pub mod secrets;
pub mod slack;
pub mod store;

pub use clients::{AwsOptions, Clients};
pub use error::AwsError;
