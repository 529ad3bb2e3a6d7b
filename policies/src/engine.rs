//! The decision flow: head checks, routing, destination, model canonicalisation, rules.
//!
//! INTERFACE STUB: signatures are the contract between modules; bodies are being written.

use crate::bundle::CompiledPolicy;
use crate::decision::{Decision, Reason};
use crate::request::{Operation, RequestFacts};

/// A request whose decision waits for its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub operation: Operation,
    /// The body limit in force for this request.
    pub max_body_bytes: u64,
    /// The region of the endpoint the request is bound for.
    pub endpoint_region: String,
}

pub enum HeadOutcome {
    Decided(Decision),
    NeedBody(Pending),
}

pub fn evaluate_head(_policy: &CompiledPolicy, _facts: &RequestFacts) -> HeadOutcome {
    HeadOutcome::Decided(Decision::deny(Reason::PolicyUnavailable, "engine not built"))
}

pub fn evaluate_body(_policy: &CompiledPolicy, _pending: &Pending, _body: &[u8]) -> Decision {
    Decision::deny(Reason::PolicyUnavailable, "engine not built")
}

/// Head then (when needed) body, in one call: for the CLI and tests.
pub fn decide(policy: &CompiledPolicy, facts: &RequestFacts) -> Decision {
    match evaluate_head(policy, facts) {
        HeadOutcome::Decided(d) => d,
        HeadOutcome::NeedBody(p) => evaluate_body(policy, &p, facts.body.unwrap_or_default()),
    }
}
