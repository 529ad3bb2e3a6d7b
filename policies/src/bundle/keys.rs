//! Identity providers compiled into a verifier key set: the bundle's validated `identity`
//! section turned into `identity::ProviderSpec`s, with inline JWKS parsed once.

use std::str::FromStr;

use crate::identity::{Algorithm, Jwks, KeySet, ProviderSpec};

use super::schema::Provider;
use super::validate::Errors;

/// Build the key set for `providers` (already validated field by field). Problems the identity
/// module finds (an inline key it cannot use, a configuration it refuses) are reported under
/// the provider's field path.
#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
pub(crate) fn compile_key_set(providers: &[Provider], errs: &mut Errors) -> Option<KeySet> {
    if providers.is_empty() {
        return None;
    }
    let mut specs = Vec::with_capacity(providers.len());
    let mut inline = Vec::new();
    for (i, p) in providers.iter().enumerate() {
        let at = format!("identity.providers[{i}]");
        let name = p.name.clone().unwrap_or_default();
        let algorithms = p
            .algorithms
            .iter()
            .filter_map(|a| Algorithm::from_str(a).ok())
            .collect();
        let mut spec = ProviderSpec::new(
            name.clone(),
            p.issuer.clone().unwrap_or_default(),
            p.audiences.clone(),
            algorithms,
        );
        spec.leeway_seconds = p.leeway_seconds;
        spec.max_lifetime_seconds = p.max_lifetime_seconds;
        spec.principal_claim = p.principal_claim.clone();
        spec.groups_claim = p.groups_claim.clone();
        spec.max_token_bytes = usize::try_from(p.max_token_bytes).unwrap_or(usize::MAX);
        specs.push(spec);
        if let Some(jwks) = &p.jwks {
            let document = serde_json::json!({ "keys": jwks.keys }).to_string();
            match Jwks::parse(document.as_bytes()) {
                Ok(keys) => inline.push((name, keys)),
                Err(e) => errs.push(format!("{at}.jwks"), e.to_string()),
            }
        }
    }
    let mut set = match KeySet::new(specs) {
        Ok(set) => set,
        Err(e) => {
            errs.push("identity.providers", e.to_string());
            return None;
        }
    };
    for (name, keys) in inline {
        if let Err(e) = set.set_keys(&name, keys) {
            errs.push("identity.providers", e.to_string());
        }
    }
    Some(set)
}
