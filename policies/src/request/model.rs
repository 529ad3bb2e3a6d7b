//! Model-id canonicalisation and ARN parsing.
//!
//! INTERFACE STUB: signatures are the contract between modules; bodies are being written.

use crate::decision::Reason;

/// A parsed Amazon Resource Name whose resource part names a model-like resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    /// The whole ARN, canonical (exactly the decoded text).
    pub raw: String,
    pub partition: String,
    pub service: String,
    /// May be empty (e.g. the IAM-only global foundation-model ARN).
    pub region: String,
    /// Empty for foundation-model ARNs.
    pub account: String,
    /// e.g. `foundation-model`, `inference-profile`, `application-inference-profile`,
    /// `provisioned-model`, `custom-model`, `custom-model-deployment`, `imported-model`,
    /// `prompt`, `prompt-router`, `default-prompt-router`, `endpoint` (SageMaker).
    pub resource_type: String,
    /// Everything after the first `/` of the resource part (may itself contain `/` and `:`).
    pub resource_id: String,
}

/// A canonical model reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A bare id: a base model id (`anthropic.claude-3-haiku-20240307-v1:0`) or a system
    /// inference-profile id (`us.anthropic...`). `profile_prefix` is the geography label
    /// (`us`, `eu`, `apac`, `global`, ...) when the id has one.
    Plain { id: String, profile_prefix: Option<String> },
    Arn(Arn),
}

impl ModelRef {
    /// The canonical text of the id (what patterns match and what is logged).
    pub fn canonical(&self) -> &str {
        match self {
            ModelRef::Plain { id, .. } => id,
            ModelRef::Arn(arn) => &arn.raw,
        }
    }
}

/// Why a model id was refused (always `model_unparseable` unless stated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("placeholder")]
    Placeholder,
}

impl ModelError {
    pub fn reason(&self) -> Reason {
        Reason::ModelUnparseable
    }
}

/// Canonicalise the raw `{modelId}` path segment: percent-decode exactly once and reject
/// every ambiguity.
pub fn parse_path_model_id(_raw_segment: &[u8]) -> Result<ModelRef, ModelError> {
    Err(ModelError::Placeholder)
}

/// Canonicalise a model id taken from a JSON body (already JSON-unescaped; never
/// percent-decoded).
pub fn parse_body_model_id(_value: &str) -> Result<ModelRef, ModelError> {
    Err(ModelError::Placeholder)
}
