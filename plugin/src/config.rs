//! The plugin configuration: either the bundle itself (JSON), or a wrapper
//! `{"bundle": {...}, "signature": "<detached JWS>", "original_destination": true}`.
//!
//! `original_destination: true` is for transparent listeners, where Envoy's
//! `destination.address` is the address the application dialled; on an explicit (HTTP_PROXY)
//! listener it is Envoy's own address and must not be used.

use policies::CompiledPolicy;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub struct Loaded {
    pub policy: CompiledPolicy,
    /// `sha256:<hex>` of the bundle's canonical JSON (sorted keys, no whitespace).
    pub digest: String,
    pub source: Value,
    pub original_destination: bool,
}

pub fn load(raw: &[u8]) -> Result<Loaded, String> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| format!("plugin configuration is not JSON: {e}"))?;
    let (bundle, original_destination) = match value {
        Value::Object(mut map) if map.contains_key("bundle") => {
            for key in map.keys() {
                if !matches!(
                    key.as_str(),
                    "bundle" | "signature" | "original_destination"
                ) {
                    return Err(format!("plugin configuration: unknown field {key:?}"));
                }
            }
            let original = match map.remove("original_destination") {
                None => false,
                Some(Value::Bool(b)) => b,
                Some(_) => {
                    return Err(
                        "plugin configuration: original_destination must be a boolean".into(),
                    )
                }
            };
            (map.remove("bundle").unwrap_or(Value::Null), original)
        }
        other => (other, false),
    };
    // The engine parses the bundle from bytes (strictly, with field paths in errors).
    let text = serde_json::to_string(&bundle).map_err(|e| e.to_string())?;
    let policy = CompiledPolicy::from_json(text.as_bytes()).map_err(|e| e.to_string())?;
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Loaded {
        policy,
        digest: format!("sha256:{hex}"),
        source: bundle,
        original_destination,
    })
}

/// The model ids the bundle names literally (no wildcard): the only models that get their
/// own stat label.
pub fn literal_models(bundle: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rules) = bundle.get("rules").and_then(Value::as_array) {
        for rule in rules {
            for m in rule
                .get("models")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(m) = m.as_str().filter(|m| !m.contains(['*', '?'])) {
                    out.push(m.to_string());
                }
            }
        }
    }
    out
}
