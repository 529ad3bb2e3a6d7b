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
//!
//! How a request whose model is in its body is held while the body arrives is set by the VM
//! environment variable `BEDROCK_GUARD_HOLD_BODY` ([`hold_body`]): operator-owned, beside the
//! module, out of reach of whoever pushes bundles (the plugin configuration), so a bundle push
//! cannot weaken holding. It is an environment variable rather than a VM-configuration field
//! because Istio's WasmPlugin (`vmConfig.env`) and Envoy Gateway's EnvoyExtensionPolicy
//! (`env.hostKeys`) can set a VM's environment but not its configuration, and those are the
//! platforms that need the setting.

use policies::signing::{self, PublicKey};
use policies::CompiledPolicy;
use serde_json::Value;

/// How the filter holds a request whose model is in its body until the body is complete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HoldBody {
    /// `stop_iteration` (default): the header phase returns StopIteration, which needs the
    /// wasm filter's `allow_on_headers_stop_iteration: true`.
    #[default]
    StopIteration,
    /// `buffer_filter`: the header phase continues and `envoy.filters.http.buffer`, placed
    /// after this filter, keeps the headers from leaving; the body phase holds the body as
    /// with `stop_iteration`. For Istio WasmPlugin and Envoy Gateway, which cannot set the flag.
    BufferFilter,
}

/// The VM environment variable that sets [`HoldBody`].
pub const HOLD_BODY_ENV: &str = "BEDROCK_GUARD_HOLD_BODY";

/// Parse `BEDROCK_GUARD_HOLD_BODY` (`None`: unset, the default `stop_iteration`). Any other
/// value refuses the VM: a misspelt setting must not silently pick a way of holding.
pub fn hold_body(value: Option<&str>) -> Result<HoldBody, String> {
    match value {
        None | Some("stop_iteration") => Ok(HoldBody::StopIteration),
        Some("buffer_filter") => Ok(HoldBody::BufferFilter),
        Some(other) => Err(format!(
            "VM environment {HOLD_BODY_ENV}={other:?}: expected \"stop_iteration\" (the default) \
             or \"buffer_filter\""
        )),
    }
}

/// The VM environment variable that turns on CloudWatch Embedded Metric Format lines (its
/// value is the CloudWatch namespace), see `emf`.
pub const EMF_ENV: &str = "BEDROCK_GUARD_EMF_NAMESPACE";

/// Parse `BEDROCK_GUARD_EMF_NAMESPACE` (`None`: unset, no EMF lines): a CloudWatch namespace,
/// 1-255 characters of `[A-Za-z0-9 ._/#:-]`, not starting with `:` nor with `AWS/` (reserved
/// for AWS). Anything else refuses the VM, as a misspelt setting would silently send nothing.
pub fn emf_namespace(value: Option<&str>) -> Result<Option<String>, String> {
    let Some(ns) = value else { return Ok(None) };
    let chars_ok = ns
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " ._/#:-".contains(c));
    if (1..=255).contains(&ns.len()) && chars_ok && !ns.starts_with(':') && !ns.starts_with("AWS/")
    {
        Ok(Some(ns.to_string()))
    } else {
        Err(format!(
            "VM environment {EMF_ENV}={ns:?}: expected a CloudWatch namespace (1-255 characters \
             of letters, digits and ` ._/#:-`, not starting with `:` or `AWS/`)"
        ))
    }
}

/// `BEDROCK_GUARD_EMF_NAMESPACE` from the VM's environment.
pub fn emf_namespace_from_env() -> Result<Option<String>, String> {
    match std::env::var(EMF_ENV) {
        Ok(value) => emf_namespace(Some(&value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("VM environment {EMF_ENV} is not valid UTF-8"))
        }
    }
}

/// `BEDROCK_GUARD_HOLD_BODY` from the VM's environment (WASI `environ_get`, filled by Envoy
/// from `vm_config.environment_variables`).
pub fn hold_body_from_env() -> Result<HoldBody, String> {
    match std::env::var(HOLD_BODY_ENV) {
        Ok(value) => hold_body(Some(&value)),
        Err(std::env::VarError::NotPresent) => hold_body(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("VM environment {HOLD_BODY_ENV} is not valid UTF-8"))
        }
    }
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{emf_namespace, hold_body, HoldBody};

    #[test]
    fn emf_namespace_values() {
        assert_eq!(emf_namespace(None), Ok(None));
        assert_eq!(
            emf_namespace(Some("BedrockGuard/egress-1")),
            Ok(Some("BedrockGuard/egress-1".into()))
        );
        for bad in ["", "AWS/Bedrock", ":x", "a\nb", "ns{}", &"x".repeat(256)] {
            let err = emf_namespace(Some(bad)).unwrap_err();
            assert!(err.contains("BEDROCK_GUARD_EMF_NAMESPACE"), "{err}");
        }
    }

    #[test]
    fn hold_body_values() {
        assert_eq!(hold_body(None), Ok(HoldBody::StopIteration));
        assert_eq!(
            hold_body(Some("stop_iteration")),
            Ok(HoldBody::StopIteration)
        );
        assert_eq!(hold_body(Some("buffer_filter")), Ok(HoldBody::BufferFilter));
        for bad in [
            "",
            "buffer",
            "Buffer_Filter",
            " buffer_filter",
            "stop_iteration ",
        ] {
            let err = hold_body(Some(bad)).unwrap_err();
            assert!(err.contains("BEDROCK_GUARD_HOLD_BODY"), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains("\"buffer_filter\""), "{err}");
        }
    }
}
