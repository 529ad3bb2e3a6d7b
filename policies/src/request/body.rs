//! Strict JSON reading of body-carried model ids.
//!
//! INTERFACE STUB: signatures are the contract between modules; bodies are being written.

use crate::decision::Reason;
use crate::request::route::ModelLocation;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("placeholder")]
    Placeholder,
}

impl BodyError {
    pub fn reason(&self) -> Reason {
        Reason::BodyUnparseable
    }
}

/// Read the model-carrying string members of a complete JSON body, strictly.
/// Returns the JSON-unescaped string values in document order.
pub fn extract_body_models(_body: &[u8], _location: ModelLocation) -> Result<Vec<String>, BodyError> {
    Err(BodyError::Placeholder)
}
