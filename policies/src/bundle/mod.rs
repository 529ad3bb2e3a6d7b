//! Policy bundle v1: schema, validation, compilation.
//!
//! INTERFACE STUB: signatures are the contract between modules; bodies are being written.

/// The bundle as written by a security team (serde types).
#[derive(Debug, Clone)]
pub struct Bundle;

/// A validated, compiled bundle. Immutable; shared by every request.
#[derive(Debug)]
pub struct CompiledPolicy;

impl CompiledPolicy {
    pub fn max_body_bytes(&self) -> u64 {
        1_048_576
    }
    pub fn identity_header(&self) -> &str {
        "x-workload-identity"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("placeholder")]
    Placeholder,
}

pub fn parse_bundle(_json: &[u8]) -> Result<Bundle, BundleError> {
    Err(BundleError::Placeholder)
}

pub fn compile(_bundle: &Bundle) -> Result<CompiledPolicy, BundleError> {
    Err(BundleError::Placeholder)
}
