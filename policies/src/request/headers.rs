//! Header-level checks that come before routing.
//!
//! INTERFACE STUB: signatures are the contract between modules; bodies are being written.

use crate::decision::Reason;
use crate::request::RequestFacts;

/// What the head of a request says about its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadInfo {
    /// `content-length`, when present and well-formed.
    pub content_length: Option<u64>,
    /// `content-type` is `application/json` (parameters allowed, case-insensitive type).
    pub content_type_json: bool,
    /// `content-encoding` is absent or `identity`.
    pub content_encoding_identity: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("placeholder")]
    Placeholder,
}

impl HeaderError {
    pub fn reason(&self) -> Reason {
        Reason::HeaderInvalid
    }
}

/// Check the request head: method shape, CONNECT/Upgrade, duplicated security-relevant
/// headers (including `identity_header`), `host` vs `:authority`, and body-describing headers.
pub fn check_head(_facts: &RequestFacts, _identity_header: &str) -> Result<HeadInfo, HeaderError> {
    Err(HeaderError::Placeholder)
}
