//! The plugin configuration (see `policies::signing::parse_plugin_config`): either the bundle
//! itself, or `{"bundle": {...}, "signature": "<detached JWS>", "original_destination": true}`.
//!
//! `original_destination: true` is for transparent listeners, where Envoy's
//! `destination.address` is the address the application dialled; on an explicit (HTTP_PROXY)
//! listener it is Envoy's own address and must not be used.
//!
//! The VM configuration (operator-owned, next to the module) may pin the public keys bundles
//! must be signed with: `{"bundle_public_keys": [<JWK>, ...]}`. With keys pinned, an unsigned
//! or tampered bundle is refused and Envoy keeps the previous one.

use policies::signing::{self, PublicKey};
use policies::CompiledPolicy;
use serde_json::Value;

pub struct Loaded {
    pub policy: CompiledPolicy,
    /// `sha256:<hex>` of the bundle's canonical JSON (the same digest `bedrock-guard digest`
    /// prints).
    pub digest: String,
    pub original_destination: bool,
    /// The key id that verified the bundle's signature, when keys are pinned.
    pub signed_by: Option<String>,
}

/// Parse the VM configuration: the pinned bundle keys (empty when none are pinned).
pub fn trusted_keys(raw: &[u8]) -> Result<Vec<PublicKey>, String> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| format!("VM configuration is not JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("VM configuration must be a JSON object".into());
    };
    let mut keys = Vec::new();
    for (name, v) in map {
        match (name.as_str(), v) {
            ("bundle_public_keys", Value::Array(jwks)) => {
                for (i, jwk) in jwks.iter().enumerate() {
                    let key = PublicKey::from_jwk(jwk)
                        .map_err(|e| format!("VM configuration bundle_public_keys[{i}]: {e}"))?;
                    keys.push(key);
                }
                if keys.is_empty() {
                    return Err("VM configuration bundle_public_keys is empty".into());
                }
            }
            ("bundle_public_keys", _) => {
                return Err("VM configuration bundle_public_keys must be a list of JWKs".into())
            }
            (other, _) => return Err(format!("VM configuration: unknown field {other:?}")),
        }
    }
    Ok(keys)
}

pub fn load(raw: &[u8], trusted: &[PublicKey]) -> Result<Loaded, String> {
    let config =
        signing::parse_plugin_config(raw).map_err(|e| format!("plugin configuration: {e}"))?;
    let signed_by = if trusted.is_empty() {
        None
    } else {
        let Some(jws) = config.signature.as_deref() else {
            return Err("bundle is not signed, and bundle_public_keys are pinned".into());
        };
        let kid = signing::verify_canonical(&config.canonical, jws, trusted)
            .map_err(|e| format!("bundle signature refused: {e}"))?;
        Some(kid)
    };
    // The engine parses the canonical bytes (strictly, with field paths in errors).
    let policy = CompiledPolicy::from_json(&config.canonical).map_err(|e| e.to_string())?;
    Ok(Loaded {
        policy,
        digest: config.digest,
        original_destination: config.original_destination,
        signed_by,
    })
}
