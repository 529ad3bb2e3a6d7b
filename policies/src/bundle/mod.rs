//! Policy bundle v1: schema (`schema`), field checks (`validate`), and the one-pass
//! validate-and-compile step (`compile`) that turns a bundle into the immutable structure every
//! request is decided against.
//!
//! Errors are values: a JSON or schema problem (syntax, wrong type, unknown or duplicated
//! field, a member name written with an escape) is reported with its line and column; a
//! semantic problem (a `null` anywhere included) is reported under its field path
//! (`rules[2].models[0]`), and all semantic problems are reported together. `parse_bundle`
//! (the filter's path) stops at the first schema problem; the CLI's `validate` reads past
//! them (`parse_shape` on a repaired document) to report them with the semantic problems of
//! the rest of the bundle.

mod cidr;
mod compile;
mod keys;
pub mod schema;
mod validate;

pub use cidr::Cidr;
pub use compile::{compile, CompiledEndpoint, CompiledPolicy, ModelMatcher};
pub(crate) use compile::{CompiledRule, PrincipalMatcher};
pub use schema::Bundle;
pub use validate::{ALGORITHMS, API_VERSION, KIND};

use crate::canonical::{self, CanonicalError};

/// One semantic problem in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where: `metadata.name`, `rules[2].models[0]`, `identity.providers[0].algorithms[1]`.
    pub path: String,
    /// What is wrong, and where useful what to write instead.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The text is not JSON, or does not have the bundle's shape (wrong type, unknown or
    /// duplicated field, unknown enum value).
    #[error("line {line}, column {column}: {message}")]
    Json {
        /// Line of the problem, from 1.
        line: usize,
        /// Column of the problem on its line, from 1.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// The bundle parsed but breaks one or more rules; every problem, one per line.
    #[error("{}", display_lines(.0))]
    Invalid(Vec<FieldError>),
}

impl BundleError {
    /// The semantic problems (empty for a JSON error).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            BundleError::Invalid(errors) => errors,
            BundleError::Json { .. } => &[],
        }
    }

    /// Is there a semantic problem at exactly `path`?
    pub fn has_path(&self, path: &str) -> bool {
        self.field_errors().iter().any(|e| e.path == path)
    }
}

fn display_lines(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(FieldError::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parse a JSON bundle (shape only; `compile` validates the values).
///
/// Before the bundle's types see it, the text is read strictly (`canonical::parse_strict`): a
/// member name written with a backslash escape, a duplicate member name (at any depth, inside
/// inline JWKs and claim maps too) or a number without a canonical form is a JSON error with
/// its line and column; and every `null` is an error under its field path, since serde would
/// read `"accounts": null` as "omitted", the widest meaning, where `[]` means "none".
pub fn parse_bundle(json: &[u8]) -> Result<Bundle, BundleError> {
    let value = canonical::parse_strict(json).map_err(|e| match e {
        CanonicalError::Json {
            line,
            column,
            message,
        } => BundleError::Json {
            line,
            column,
            message,
        },
        CanonicalError::Value { path, message } => {
            BundleError::Invalid(vec![FieldError { path, message }])
        }
    })?;
    if value.is_object() {
        let nulls: Vec<FieldError> = canonical::nulls(&value)
            .into_iter()
            .filter_map(|e| match e {
                CanonicalError::Value { path, message } => Some(FieldError { path, message }),
                CanonicalError::Json { .. } => None,
            })
            .collect();
        if !nulls.is_empty() {
            return Err(BundleError::Invalid(nulls));
        }
    }
    parse_shape(json)
}

/// Read JSON text into the bundle's types, and nothing more: no strict reading, no `null`
/// check (see [`parse_bundle`]). The error is always [`BundleError::Json`], for the first
/// problem serde meets (an unknown field, a wrong type, an unknown enum value).
///
/// Not a way to accept a bundle: the plugin and anything else that loads one use
/// [`parse_bundle`] (or [`CompiledPolicy::from_json`]). Public for tools that do their own
/// strict reading first and then report serde's errors one at a time with their positions
/// (`bedrock-guard validate`).
pub fn parse_shape(json: &[u8]) -> Result<Bundle, BundleError> {
    serde_json::from_slice(json).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
        BundleError::Json {
            line,
            column,
            message,
        }
    })
}

/// Validate a bundle without keeping the compiled form.
pub fn validate(bundle: &Bundle) -> Result<(), BundleError> {
    compile(bundle).map(|_| ())
}
