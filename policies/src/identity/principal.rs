//! The verified caller.

use std::fmt;

use serde_json::{Map, Value};

/// Who a verified token speaks for.
///
/// `claims` holds the whole verified claims set for claim-pattern matching; it is never logged
/// whole (the `Debug` output lists claim names only).
#[derive(Clone, PartialEq)]
pub struct Principal {
    /// The token's `iss`, equal to the provider's configured issuer.
    pub issuer: String,
    /// The principal claim's value (`sub` by default).
    pub subject: String,
    /// The groups claim's strings, in token order (empty when the claim is absent).
    pub groups: Vec<String>,
    /// All claims of the token.
    pub claims: Map<String, Value>,
}

impl Principal {
    /// The strings of a claim: the value of a string claim, or each string element of an array
    /// claim (other elements are skipped). Nothing for a missing claim or any other type.
    pub fn claim_strings(&self, name: &str) -> impl Iterator<Item = &str> + '_ {
        let (single, many) = match self.claims.get(name) {
            Some(Value::String(s)) => (Some(s.as_str()), None),
            Some(Value::Array(items)) => (None, Some(items.iter().filter_map(Value::as_str))),
            _ => (None, None),
        };
        single.into_iter().chain(many.into_iter().flatten())
    }

    /// Whether the principal is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("groups", &self.groups)
            .field("claim_names", &self.claims.keys().collect::<Vec<_>>())
            .finish()
    }
}
