//! bedrock-guard policy engine.
//!
//! Pure Rust, no proxy dependency: request facts in, decision out. The plugin compiles a
//! bundle once (`bundle::compile`) and then, per request, only looks things up.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod anchor;
pub mod audit;
pub mod aws;
pub mod bundle;
pub mod canonical;
pub mod credentials;
pub mod decision;
pub mod destination;
pub mod engine;
pub mod eventstream;
pub mod identity;
pub mod jose;
mod json;
pub mod matcher;
pub mod request;
pub mod signing;
pub mod usage;

pub use bundle::{compile, parse_bundle, Bundle, BundleError, CompiledPolicy};
pub use decision::{Decision, Mode, Reason};
pub use destination::Target;
#[cfg(not(target_arch = "wasm32"))]
pub use engine::decide_traced;
pub use engine::{
    decide, evaluate, evaluate_body, evaluate_head, Evaluation, HeadOutcome, Pending, RuleTrace,
};
pub use request::{Operation, RequestFacts};

/// The layering the `aws` leaf module makes possible: `bundle` names neither `destination` nor
/// `engine`, and `destination` does not name `engine` (so `bundle` ← `destination` ←
/// `engine` has no cycle). `aws` itself is checked in its own tests.
#[cfg(test)]
mod layering_tests {
    const BUNDLE: &[(&str, &str)] = &[
        ("bundle/mod.rs", include_str!("bundle/mod.rs")),
        ("bundle/cidr.rs", include_str!("bundle/cidr.rs")),
        ("bundle/keys.rs", include_str!("bundle/keys.rs")),
        ("bundle/schema.rs", include_str!("bundle/schema.rs")),
        ("bundle/validate.rs", include_str!("bundle/validate.rs")),
        (
            "bundle/compile/mod.rs",
            include_str!("bundle/compile/mod.rs"),
        ),
        (
            "bundle/compile/alerts.rs",
            include_str!("bundle/compile/alerts.rs"),
        ),
        (
            "bundle/compile/identity.rs",
            include_str!("bundle/compile/identity.rs"),
        ),
        (
            "bundle/compile/metadata.rs",
            include_str!("bundle/compile/metadata.rs"),
        ),
        (
            "bundle/compile/network.rs",
            include_str!("bundle/compile/network.rs"),
        ),
        (
            "bundle/compile/resources.rs",
            include_str!("bundle/compile/resources.rs"),
        ),
        (
            "bundle/compile/rules.rs",
            include_str!("bundle/compile/rules.rs"),
        ),
    ];

    fn refers_to(source: &str, module: &str) -> Option<usize> {
        let needle = format!("{}::{module}", "crate");
        source
            .lines()
            .position(|line| line.contains(&needle))
            .map(|n| n + 1)
    }

    #[test]
    fn bundle_destination_engine_have_no_cycle() {
        for (file, source) in BUNDLE {
            for module in ["destination", "engine"] {
                assert_eq!(refers_to(source, module), None, "{file} names {module}");
            }
        }
        let destination = include_str!("destination.rs");
        assert_eq!(
            refers_to(destination, "engine"),
            None,
            "destination.rs names engine"
        );
    }
}
