//! Pure logic of Secret Cascade: no AWS SDK, no I/O.
//!
//! - [`template`] reads CloudFormation templates (JSON, or YAML with short-form tags) into
//!   one long-form JSON value.
//! - [`secret`] and [`dynref`] say what a secret is called and how templates name it.
//! - [`eval`] evaluates the intrinsic functions that build strings (`Fn::Sub`, `Fn::Join`, ...).
//! - [`finder`] finds every reference to a secret in a stack; [`graph`] follows what depends
//!   on what; [`stack_policy`] and [`stateful`] say what must not be touched.
//! - [`ecs`] says how ECS tasks read secrets at run time and which services run them.
//! - [`stack`] is what discovery knows about one stack.
//! - [`create_only`] says which resource properties CloudFormation cannot change in place.
//! - [`plan`] turns all of it into a per-stack plan: refresh with which strategy, or skip and why.
//! - [`pins`] says which pinned references name a version Secrets Manager deprecated or
//!   deleted: they need a person.
//! - [`intake`] reads queue messages (Secrets Manager events, manual tickets) into tickets,
//!   coalesces them into a batch and builds the state machine's input.
//! - [`refresh`] is the refresh of one stack: its state machine, and the templates its
//!   updates send; [`batch`] is what a batch keeps (manifest, saved originals, keys) and
//!   its report; [`report`] renders reports (JSON, Markdown, Slack); [`restore`] is the
//!   restore command a report prints for a degraded stack; [`progress`] says where a
//!   running batch is.
//! - [`change_set`] is CloudFormation's own verdict before every update: execute the
//!   change set, or refuse it and say why.
//! - [`caught`] reads an error the state machine caught.
//! - [`glob`] and [`digest`] are the shared helpers: wildcard matching and SHA-256 hex;
//!   [`defaults`] holds the default refresh timings every entry point uses.

pub mod batch;
pub mod caught;
pub mod change_set;
pub mod create_only;
pub mod defaults;
pub mod digest;
pub mod dynref;
pub mod ecs;
pub mod eval;
pub mod finder;
pub mod glob;
pub mod graph;
pub mod intake;
pub mod offline;
pub mod pins;
pub mod plan;
pub mod progress;
pub mod refresh;
pub mod report;
pub mod restore;
pub mod secret;
pub mod stack;
pub mod stack_policy;
pub mod stateful;
pub mod template;
