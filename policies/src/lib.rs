//! bedrock-guard policy engine.
//!
//! Pure Rust, no proxy dependency: request facts in, decision out. The plugin compiles a
//! bundle once (`bundle::compile`) and then, per request, only looks things up.
#![forbid(unsafe_code)]

pub mod anchor;
pub mod audit;
pub mod bundle;
pub mod canonical;
pub mod credentials;
pub mod decision;
pub mod destination;
pub mod engine;
pub mod eventstream;
pub mod identity;
pub mod matcher;
pub mod request;
pub mod signing;

#[cfg(feature = "cli")]
pub mod cli;

pub use bundle::{compile, parse_bundle, Bundle, BundleError, CompiledPolicy};
pub use decision::{Decision, Mode, Reason};
pub use engine::{decide, evaluate_body, evaluate_head, HeadOutcome, Pending};
pub use request::{Operation, RequestFacts};
