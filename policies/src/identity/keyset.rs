//! Providers (one per issuer) and the keys bound to each of them.

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::jwks::Jwks;

/// Default claim naming the principal.
const DEFAULT_PRINCIPAL_CLAIM: &str = "sub";
/// Default claim carrying the principal's groups.
const DEFAULT_GROUPS_CLAIM: &str = "groups";
/// Default cap on the token's length in bytes.
const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;
/// Default clock-skew allowance, in seconds.
const DEFAULT_LEEWAY_SECONDS: u64 = 30;
/// Largest clock-skew allowance a provider may configure, in seconds.
const MAX_LEEWAY_SECONDS: u64 = 300;
/// Largest `max_token_bytes` a provider may configure (Envoy's default header limit is 60 KiB).
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;

/// One identity provider as the bundle configures it (plain data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    /// Name used in logs, metrics and [`super::IdentityError::UnknownKey`].
    pub name: String,
    /// The exact `iss` value of its tokens (no normalisation: trailing slashes matter).
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one.
    pub audiences: Vec<String>,
    /// Accepted signature algorithms (asymmetric only: the HMAC family is refused).
    pub algorithms: Vec<Algorithm>,
    /// Clock-skew allowance applied to `exp`, `nbf` and `iat`, in seconds (at most 300).
    pub leeway_seconds: u64,
    /// When set, `iat` is required and `exp - iat` may not exceed this.
    pub max_lifetime_seconds: Option<u64>,
    /// Claim holding the principal (a non-empty string), `sub` by default.
    pub principal_claim: String,
    /// Claim holding the groups (array of strings or space-separated string), optional in tokens.
    pub groups_claim: String,
    /// Longest token accepted, in bytes (1 to 65 536).
    pub max_token_bytes: usize,
}

impl ProviderSpec {
    /// A provider with the default leeway, claims and size cap, and no lifetime bound.
    pub fn new(
        name: impl Into<String>,
        issuer: impl Into<String>,
        audiences: Vec<String>,
        algorithms: Vec<Algorithm>,
    ) -> ProviderSpec {
        ProviderSpec {
            name: name.into(),
            issuer: issuer.into(),
            audiences,
            algorithms,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
            max_lifetime_seconds: None,
            principal_claim: DEFAULT_PRINCIPAL_CLAIM.to_owned(),
            groups_claim: DEFAULT_GROUPS_CLAIM.to_owned(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    fn validate(&self) -> Result<(), IdentityConfigError> {
        let provider = || self.name.clone();
        if self.name.is_empty() {
            return Err(IdentityConfigError::EmptyName);
        }
        if self.issuer.is_empty() {
            return Err(IdentityConfigError::EmptyIssuer {
                provider: provider(),
            });
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(IdentityConfigError::Audiences {
                provider: provider(),
            });
        }
        if self.algorithms.is_empty() {
            return Err(IdentityConfigError::NoAlgorithms {
                provider: provider(),
            });
        }
        if let Some(alg) = self.algorithms.iter().find(|alg| !is_asymmetric(**alg)) {
            return Err(IdentityConfigError::AlgorithmRefused {
                provider: provider(),
                algorithm: format!("{alg:?}"),
            });
        }
        if self.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(IdentityConfigError::LeewayTooLarge {
                provider: provider(),
            });
        }
        if self.max_lifetime_seconds == Some(0) {
            return Err(IdentityConfigError::ZeroMaxLifetime {
                provider: provider(),
            });
        }
        if self.principal_claim.is_empty() || self.groups_claim.is_empty() {
            return Err(IdentityConfigError::EmptyClaimName {
                provider: provider(),
            });
        }
        if self.max_token_bytes == 0 || self.max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
            return Err(IdentityConfigError::MaxTokenBytes {
                provider: provider(),
            });
        }
        Ok(())
    }
}

fn is_asymmetric(alg: Algorithm) -> bool {
    matches!(
        alg.family(),
        AlgorithmFamily::Rsa | AlgorithmFamily::Ec | AlgorithmFamily::Ed
    )
}

/// A provider configuration that cannot be used. Names the provider, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityConfigError {
    /// A provider with an empty name.
    #[error("identity provider with an empty name")]
    EmptyName,
    /// Two providers with this name.
    #[error("identity provider {0} is defined twice")]
    DuplicateName(String),
    /// A provider with an empty issuer.
    #[error("identity provider {provider}: empty issuer")]
    EmptyIssuer {
        /// The provider's name.
        provider: String,
    },
    /// Two providers with the same issuer: keys must be bound to one provider.
    #[error("identity provider {provider}: issuer already used by another provider")]
    DuplicateIssuer {
        /// The name of the second one.
        provider: String,
    },
    /// No audience, or an empty one.
    #[error("identity provider {provider}: audiences must be non-empty strings, at least one")]
    Audiences {
        /// The provider's name.
        provider: String,
    },
    /// No algorithm.
    #[error("identity provider {provider}: no algorithms")]
    NoAlgorithms {
        /// The provider's name.
        provider: String,
    },
    /// An algorithm that is not asymmetric (the HMAC family).
    #[error("identity provider {provider}: algorithm {algorithm} refused (asymmetric only)")]
    AlgorithmRefused {
        /// The provider's name.
        provider: String,
        /// The algorithm, by its `Debug` name.
        algorithm: String,
    },
    /// `leeway_seconds` above 300.
    #[error("identity provider {provider}: leeway_seconds above {MAX_LEEWAY_SECONDS}")]
    LeewayTooLarge {
        /// The provider's name.
        provider: String,
    },
    /// `max_lifetime_seconds` of 0.
    #[error("identity provider {provider}: max_lifetime_seconds must be positive")]
    ZeroMaxLifetime {
        /// The provider's name.
        provider: String,
    },
    /// An empty principal or groups claim name.
    #[error("identity provider {provider}: principal_claim and groups_claim must be non-empty")]
    EmptyClaimName {
        /// The provider's name.
        provider: String,
    },
    /// `max_token_bytes` of 0, or above 65 536.
    #[error(
        "identity provider {provider}: max_token_bytes must be in 1..={MAX_TOKEN_BYTES_LIMIT}"
    )]
    MaxTokenBytes {
        /// The provider's name.
        provider: String,
    },
    /// Keys given for a provider the key set does not have (the name given).
    #[error("no identity provider named {0}")]
    UnknownProvider(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Provider {
    pub(crate) spec: ProviderSpec,
    pub(crate) keys: Jwks,
}

/// All providers with their current keys. Keys are bound to their provider's issuer: a token is
/// only ever checked against the keys of the provider its `iss` names.
#[derive(Debug, Clone)]
pub struct KeySet {
    providers: Vec<Provider>,
    max_token_bytes: usize,
}

impl KeySet {
    /// Validates the providers (unique names and issuers, asymmetric algorithms only, sane
    /// bounds). Every provider starts with no keys; load them with [`KeySet::set_keys`].
    pub fn new(specs: Vec<ProviderSpec>) -> Result<KeySet, IdentityConfigError> {
        let mut providers: Vec<Provider> = Vec::with_capacity(specs.len());
        for spec in specs {
            spec.validate()?;
            if providers.iter().any(|p| p.spec.name == spec.name) {
                return Err(IdentityConfigError::DuplicateName(spec.name));
            }
            if providers.iter().any(|p| p.spec.issuer == spec.issuer) {
                return Err(IdentityConfigError::DuplicateIssuer {
                    provider: spec.name,
                });
            }
            providers.push(Provider {
                spec,
                keys: Jwks::empty(),
            });
        }
        let max_token_bytes = providers
            .iter()
            .map(|p| p.spec.max_token_bytes)
            .max()
            .unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
        Ok(KeySet {
            providers,
            max_token_bytes,
        })
    }

    /// Replaces a provider's keys (initial load or JWKS rotation). Returns whether the usable
    /// keys changed (by [`Jwks::digest`]).
    pub fn set_keys(&mut self, provider: &str, keys: Jwks) -> Result<bool, IdentityConfigError> {
        let entry = self
            .providers
            .iter_mut()
            .find(|p| p.spec.name == provider)
            .ok_or_else(|| IdentityConfigError::UnknownProvider(provider.to_owned()))?;
        let changed = entry.keys.digest() != keys.digest();
        entry.keys = keys;
        Ok(changed)
    }

    /// A provider's current keys.
    pub fn keys(&self, provider: &str) -> Option<&Jwks> {
        self.providers
            .iter()
            .find(|p| p.spec.name == provider)
            .map(|p| &p.keys)
    }

    /// The largest `max_token_bytes` of all providers: the cap applied before anything else.
    pub(crate) fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    pub(crate) fn by_issuer(&self, issuer: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.spec.issuer == issuer)
    }
}
