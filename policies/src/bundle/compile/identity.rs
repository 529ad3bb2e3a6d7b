//! `identity`: the token header and the identity providers, with their inline (`jwks`) and
//! remote (`remote_jwks`) keys.

use std::collections::HashMap;

use crate::bundle::schema::{Identity, Provider, DEFAULT_IDENTITY_HEADER, MAX_TOKEN_BYTES_LIMIT};
use crate::bundle::validate::{self as v, Errors};

#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
pub(super) fn compile_identity(
    identity: Option<&Identity>,
    errs: &mut Errors,
) -> (String, Vec<Provider>) {
    let Some(identity) = identity else {
        return (DEFAULT_IDENTITY_HEADER.to_string(), Vec::new());
    };
    errs.check(
        || "identity.header".into(),
        v::identity_header(&identity.header),
    );
    if identity.providers.is_empty() {
        errs.push(
            "identity.providers",
            "at least one provider is required (omit identity to run without workload identity)",
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut issuers: HashMap<&str, usize> = HashMap::new();
    for (i, p) in identity.providers.iter().enumerate() {
        let at = format!("identity.providers[{i}]");
        match p.name.as_deref() {
            Some(name) => {
                errs.check(|| format!("{at}.name"), v::identifier(name));
                if let Some(first) = names.insert(name, i) {
                    errs.push(
                        format!("{at}.name"),
                        format!(
                            "duplicate provider name {name:?} (also identity.providers[{first}])"
                        ),
                    );
                }
            }
            None => errs.push(format!("{at}.name"), "required"),
        }
        match p.issuer.as_deref() {
            Some(issuer) => {
                errs.check(|| format!("{at}.issuer"), v::issuer(issuer));
                if let Some(first) = issuers.insert(issuer, i) {
                    errs.push(
                        format!("{at}.issuer"),
                        format!("duplicate issuer {issuer:?} (also identity.providers[{first}]): keys must be bound to one provider"),
                    );
                }
            }
            None => errs.push(format!("{at}.issuer"), "required"),
        }
        if p.audiences.is_empty() {
            errs.push(
                format!("{at}.audiences"),
                "at least one audience is required",
            );
        }
        for (j, aud) in p.audiences.iter().enumerate() {
            errs.check(|| format!("{at}.audiences[{j}]"), v::principal_pattern(aud));
        }
        if p.algorithms.is_empty() {
            errs.push(
                format!("{at}.algorithms"),
                "at least one algorithm is required",
            );
        }
        for (j, alg) in p.algorithms.iter().enumerate() {
            errs.check(|| format!("{at}.algorithms[{j}]"), v::algorithm(alg));
            if p.algorithms
                .get(..j)
                .is_some_and(|before| before.contains(alg))
            {
                errs.push(
                    format!("{at}.algorithms[{j}]"),
                    format!("duplicate algorithm {alg:?}"),
                );
            }
        }
        compile_keys(&at, p, errs);
        if p.leeway_seconds > 300 {
            errs.push(
                format!("{at}.leeway_seconds"),
                format!("{} is out of range (0 to 300)", p.leeway_seconds),
            );
        }
        if !(1..=MAX_TOKEN_BYTES_LIMIT).contains(&p.max_token_bytes) {
            errs.push(
                format!("{at}.max_token_bytes"),
                format!(
                    "{} is out of range (1 to {MAX_TOKEN_BYTES_LIMIT})",
                    p.max_token_bytes
                ),
            );
        }
        if p.max_lifetime_seconds == Some(0) {
            errs.push(format!("{at}.max_lifetime_seconds"), "must be at least 1");
        }
        errs.check(
            || format!("{at}.principal_claim"),
            v::claim_name(&p.principal_claim),
        );
        errs.check(
            || format!("{at}.groups_claim"),
            v::claim_name(&p.groups_claim),
        );
    }
    (identity.header.clone(), identity.providers.clone())
}

#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
fn compile_keys(at: &str, p: &Provider, errs: &mut Errors) {
    if p.jwks.is_none() && p.remote_jwks.is_none() {
        errs.push(at.to_string(), "needs keys: set jwks, remote_jwks, or both");
    }
    if let Some(jwks) = &p.jwks {
        if jwks.keys.is_empty() && p.remote_jwks.is_none() {
            errs.push(
                format!("{at}.jwks.keys"),
                "is empty and there is no remote_jwks: no token could ever be verified",
            );
        }
        let mut kids: HashMap<&str, usize> = HashMap::new();
        for (k, key) in jwks.keys.iter().enumerate() {
            let kat = format!("{at}.jwks.keys[{k}]");
            let Some(obj) = key.as_object() else {
                errs.push(kat, "must be a JSON Web Key object");
                continue;
            };
            match obj.get("kty").and_then(|v| v.as_str()) {
                Some("RSA" | "EC" | "OKP") => {}
                Some("oct") => errs.push(
                    format!("{kat}.kty"),
                    "symmetric (\"oct\") keys are refused: a shared secret must not be distributed in a bundle",
                ),
                Some(other) => errs.push(
                    format!("{kat}.kty"),
                    format!("unsupported key type {other:?} (expected RSA, EC or OKP)"),
                ),
                None => errs.push(format!("{kat}.kty"), "required (RSA, EC or OKP)"),
            }
            match obj.get("kid").and_then(|v| v.as_str()) {
                Some("") | None => errs.push(format!("{kat}.kid"), "required (a non-empty string)"),
                Some(kid) => {
                    if let Some(first) = kids.insert(kid, k) {
                        errs.push(
                            format!("{kat}.kid"),
                            format!("duplicate key id {kid:?} (also {at}.jwks.keys[{first}])"),
                        );
                    }
                }
            }
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                if obj.contains_key(private) {
                    errs.push(
                        format!("{kat}.{private}"),
                        "private key material must never be in a bundle; publish the public key only",
                    );
                }
            }
            match obj.get("use") {
                None => {}
                Some(u) if u.as_str() == Some("sig") => {}
                Some(_) => errs.push(format!("{kat}.use"), "must be \"sig\" when present"),
            }
        }
    }
    if let Some(remote) = &p.remote_jwks {
        let rat = format!("{at}.remote_jwks");
        match remote.cluster.as_deref() {
            Some(cluster) => errs.check(|| format!("{rat}.cluster"), v::cluster_name(cluster)),
            None => errs.push(format!("{rat}.cluster"), "required"),
        }
        match remote.path.as_deref() {
            Some(path) => errs.check(|| format!("{rat}.path"), v::jwks_path(path)),
            None => errs.push(format!("{rat}.path"), "required"),
        }
        if !(30..=86_400).contains(&remote.refresh_seconds) {
            errs.push(
                format!("{rat}.refresh_seconds"),
                format!("{} is out of range (30 to 86400)", remote.refresh_seconds),
            );
        }
        if remote.max_stale_seconds < remote.refresh_seconds {
            errs.push(
                format!("{rat}.max_stale_seconds"),
                format!(
                    "{} is less than refresh_seconds ({})",
                    remote.max_stale_seconds, remote.refresh_seconds
                ),
            );
        }
    }
}
