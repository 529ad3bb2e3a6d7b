//! Per-VM identity state: the verifier (keys + verified-token cache) and the remote JWKS
//! fetches that keep its keys fresh.
//!
//! Each worker's VM fetches on its own through the provider's Envoy cluster: on start, every
//! `refresh_seconds`, and when a token names an unknown `kid` (at most one such fetch per
//! provider per `UNKNOWN_KID_MIN_INTERVAL`, so a flood of random kids cannot turn into a
//! flood of fetches). A fetch that fails or returns garbage keeps the last good keys; once the
//! last good fetch is older than `max_stale_seconds` the provider's remote keys are dropped and
//! its tokens are refused as `policy_unavailable`, never accepted.

use std::time::Duration;

use policies::identity::{self, Caller, IdentityError, Jwks, Verifier};
use policies::CompiledPolicy;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use crate::host;

/// Shortest time between two fetches of one provider triggered by unknown key ids.
pub const UNKNOWN_KID_MIN_INTERVAL: u64 = 5;
/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

struct Remote {
    provider: String,
    cluster: String,
    path: String,
    authority: String,
    refresh_seconds: u64,
    max_stale_seconds: u64,
    /// The provider's inline keys (kept when remote keys go stale), if any.
    inline: Option<Jwks>,
    last_ok: Option<u64>,
    last_attempt: Option<u64>,
    in_flight: Option<u32>,
    wanted: bool,
    stale: bool,
}

pub struct IdentityState {
    pub verifier: Verifier,
    remotes: Vec<Remote>,
}

impl IdentityState {
    /// The identity state for `policy`, or `None` when the bundle has no identity providers.
    pub fn new(policy: &CompiledPolicy) -> Option<IdentityState> {
        let verifier = policy.new_verifier()?;
        let mut remotes = Vec::new();
        for p in policy.identity_providers() {
            let (Some(name), Some(remote)) = (&p.name, &p.remote_jwks) else {
                continue;
            };
            let inline = verifier_keys(&verifier, name);
            remotes.push(Remote {
                provider: name.clone(),
                cluster: remote.cluster.clone().unwrap_or_default(),
                path: remote.path.clone().unwrap_or_default(),
                authority: remote.cluster.clone().unwrap_or_default(),
                refresh_seconds: remote.refresh_seconds,
                max_stale_seconds: remote.max_stale_seconds,
                inline,
                last_ok: None,
                last_attempt: None,
                in_flight: None,
                wanted: true,
                stale: false,
            });
        }
        Some(IdentityState { verifier, remotes })
    }

    pub fn has_remotes(&self) -> bool {
        !self.remotes.is_empty()
    }

    /// Authenticate a request (see `policies::identity::authenticate`). A token whose key is
    /// unknown asks for a (rate-limited) refresh of its provider's JWKS; if that provider's
    /// keys are unavailable altogether the caller is `Unavailable`.
    pub fn authenticate(&mut self, header: &str, headers: &[(&str, &[u8])], now: u64) -> Caller {
        let remotes = &self.remotes;
        let unavailable = |provider: &str| {
            remotes.iter().any(|r| {
                r.provider == provider && r.inline.is_none() && (r.last_ok.is_none() || r.stale)
            })
        };
        let caller = identity::authenticate(&mut self.verifier, header, headers, now, unavailable);
        if let Caller::Invalid(IdentityError::UnknownKey { provider }) = &caller {
            let provider = provider.clone();
            self.want_refresh(&provider);
        }
        caller
    }

    /// A token named a key this provider does not have: fetch again soon (rate-limited).
    pub fn want_refresh(&mut self, provider: &str) {
        for r in self.remotes.iter_mut().filter(|r| r.provider == provider) {
            r.wanted = true;
        }
    }

    /// Seconds since the oldest provider's last good fetch (for the JWKS age stat); `None`
    /// until every remote provider has been fetched once (the stat is not written before).
    pub fn max_age(&self, now: u64) -> Option<u64> {
        let mut oldest = None;
        for r in &self.remotes {
            let age = now.saturating_sub(r.last_ok?);
            oldest = Some(oldest.map_or(age, |o: u64| o.max(age)));
        }
        oldest
    }

    /// Timer work: mark stale providers, start due fetches.
    pub fn tick(&mut self, now: u64) {
        for i in 0..self.remotes.len() {
            let Some(r) = self.remotes.get_mut(i) else {
                continue;
            };
            let age = r.last_ok.map(|t| now.saturating_sub(t));
            if !r.stale && age.is_some_and(|age| age > r.max_stale_seconds) {
                r.stale = true;
                let keys = r.inline.clone().unwrap_or_else(Jwks::empty);
                let provider = r.provider.clone();
                log::warn!("bedrock-guard: JWKS of provider {provider} is stale; its remote keys are dropped");
                if let Err(e) = self.verifier.set_keys(&provider, keys) {
                    log::error!("bedrock-guard: cannot reset keys of provider {provider}: {e}");
                }
                continue;
            }
            let Some(r) = self.remotes.get_mut(i) else {
                continue;
            };
            if r.in_flight.is_some() {
                continue;
            }
            let since_attempt = r.last_attempt.map_or(u64::MAX, |t| now.saturating_sub(t));
            let scheduled = age.is_none_or(|age| age >= r.refresh_seconds)
                && since_attempt >= r.refresh_seconds.min(30);
            let on_demand = r.wanted && since_attempt >= UNKNOWN_KID_MIN_INTERVAL;
            if !(scheduled || on_demand || r.last_attempt.is_none()) {
                continue;
            }
            r.wanted = false;
            r.last_attempt = Some(now);
            let headers = vec![
                (":method", "GET"),
                (":path", r.path.as_str()),
                (":authority", r.authority.as_str()),
                ("accept", "application/json"),
            ];
            match hostcalls::dispatch_http_call(
                &r.cluster,
                headers,
                None,
                Vec::new(),
                FETCH_TIMEOUT,
            ) {
                Ok(token) => r.in_flight = Some(token),
                Err(status) => {
                    log::warn!(
                        "bedrock-guard: JWKS fetch for provider {} not started: {status:?}",
                        r.provider
                    )
                }
            }
        }
    }

    /// A fetch finished. Returns false when `token` is not one of ours.
    pub fn on_response(&mut self, token: u32, body_size: usize, now: u64) -> bool {
        let Some(r) = self.remotes.iter_mut().find(|r| r.in_flight == Some(token)) else {
            return false;
        };
        r.in_flight = None;
        let provider = r.provider.clone();
        let status = host::header_map(MapType::HttpCallResponseHeaders)
            .ok()
            .and_then(|h| h.into_iter().find(|(k, _)| k == b":status").map(|(_, v)| v));
        if status.as_deref() != Some(b"200") {
            log::warn!("bedrock-guard: JWKS fetch for provider {provider} failed; keeping the last good keys");
            return true;
        }
        if body_size > MAX_JWKS_BYTES {
            log::warn!("bedrock-guard: JWKS of provider {provider} is too large; keeping the last good keys");
            return true;
        }
        let body = match hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size) {
            Ok(body) => body.unwrap_or_default(),
            Err(_) => return true,
        };
        let fetched = match Jwks::parse(&body) {
            Ok(keys) => keys,
            Err(e) => {
                log::warn!("bedrock-guard: JWKS of provider {provider} refused ({e}); keeping the last good keys");
                return true;
            }
        };
        let keys = match &r.inline {
            Some(inline) => inline.merged_with(&fetched),
            None => fetched,
        };
        r.last_ok = Some(now);
        r.stale = false;
        match self.verifier.set_keys(&provider, keys) {
            Ok(true) => log::info!("bedrock-guard: JWKS of provider {provider} updated"),
            Ok(false) => {}
            Err(e) => log::error!("bedrock-guard: cannot install keys of provider {provider}: {e}"),
        }
        true
    }
}

fn verifier_keys(verifier: &Verifier, provider: &str) -> Option<Jwks> {
    verifier
        .keys()
        .keys(provider)
        .filter(|k| !k.is_empty())
        .cloned()
}
