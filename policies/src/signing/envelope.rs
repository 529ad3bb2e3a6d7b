//! The plugin-configuration envelope: a bare bundle, or the bundle with its detached
//! signature and listener options (`PluginConfig`, `parse_plugin_config`, `plugin_config`).

use serde_json::Value;

use super::SigningError;
use crate::canonical;

/// A plugin configuration, opened: the bundle, its canonical bytes and digest, and its
/// signature if it came with one.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The bundle, as parsed (strictly): `parse_bundle` still has to check its shape.
    pub bundle: Value,
    /// The canonical form of `bundle`: what is signed, digested, and valid JSON to hand to
    /// `parse_bundle`.
    pub canonical: Vec<u8>,
    /// `sha256:<hex>` of `canonical`.
    pub digest: String,
    /// The detached JWS that came with the bundle, as given; `None` for a bare bundle or an
    /// envelope without one.
    pub signature: Option<String>,
    /// The listener intercepts transparently: Envoy's destination address is the address the
    /// application dialled (see `plugin/src/config.rs`).
    pub original_destination: bool,
}

/// Open the plugin configuration: either the bundle itself, or
/// `{"bundle": <bundle>, "signature": "<detached JWS>", "original_destination": <bool>}`
/// (`signature` and `original_destination` optional). Parsed strictly (no duplicate member
/// names anywhere).
pub fn parse_plugin_config(config: &[u8]) -> Result<PluginConfig, SigningError> {
    let value = canonical::parse_strict(config)?;
    let mut original_destination = false;
    let (bundle, signature) = match value {
        Value::Object(mut members) if members.contains_key("bundle") => {
            if let Some(extra) = members
                .keys()
                .find(|k| !matches!(k.as_str(), "bundle" | "signature" | "original_destination"))
            {
                return Err(SigningError::Config(format!(
                    "unexpected member {extra:?} next to \"bundle\" (only \"signature\" and \"original_destination\" are allowed)"
                )));
            }
            original_destination = match members.remove("original_destination") {
                None => false,
                Some(Value::Bool(b)) => b,
                Some(_) => {
                    return Err(SigningError::Config(
                        "\"original_destination\" must be a boolean".into(),
                    ))
                }
            };
            let signature = match members.remove("signature") {
                None => None,
                Some(Value::String(s)) => Some(s),
                Some(_) => {
                    return Err(SigningError::Config(
                        "\"signature\" must be a string (a detached JWS)".into(),
                    ))
                }
            };
            let bundle = members.remove("bundle").unwrap_or(Value::Null);
            if !bundle.is_object() {
                return Err(SigningError::Config("\"bundle\" must be an object".into()));
            }
            (bundle, signature)
        }
        other => (other, None),
    };
    let canonical = canonical::to_canonical(&bundle)?;
    let digest = canonical::digest_canonical(&canonical);
    Ok(PluginConfig {
        bundle,
        canonical,
        digest,
        signature,
        original_destination,
    })
}

/// The plugin configuration string for a bundle: its canonical JSON when unsigned, else
/// `{"bundle":<canonical bundle>,"signature":"<jws>"}`.
pub fn plugin_config(bundle: &Value, signature: Option<&str>) -> Result<String, SigningError> {
    let canonical = canonical::to_canonical(bundle)?;
    let canonical = String::from_utf8(canonical)
        .map_err(|_| SigningError::Config("canonical form is not UTF-8".into()))?;
    Ok(match signature {
        None => canonical,
        Some(jws) => format!(
            "{{\"bundle\":{canonical},\"signature\":{}}}",
            Value::String(jws.trim().to_string())
        ),
    })
}
