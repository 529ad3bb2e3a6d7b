//! Per-VM identity state: the verifier (keys + verified-token cache) and the remote JWKS
//! fetches that keep its keys fresh.
//!
//! Each worker's VM fetches on its own through the provider's Envoy cluster: on start, every
//! `refresh_seconds`, and when a token names an unknown `kid` (at most one such fetch per
//! provider per `UNKNOWN_KID_MIN_INTERVAL`, so a flood of random kids cannot turn into a
//! flood of fetches). A fetch that fails or returns garbage keeps the last good keys; once the
//! last good fetch is older than `max_stale_seconds` the provider's remote keys are dropped and
//! its tokens are refused as `policy_unavailable`, never accepted.
//!
//! The scheduling is a plain state machine: [`IdentityState::tick`] returns the [`Fetch`]es to
//! start, the root context dispatches them and reports back ([`IdentityState::dispatched`],
//! [`IdentityState::on_response`] with the answer's status and body). No host call happens in
//! here, so the schedule is unit-tested with a clock and canned answers.

use std::time::Duration;

use policies::identity::{self, Authentication, Caller, IdentityError, Jwks, Verifier};
use policies::CompiledPolicy;

/// Shortest time between two fetches of one provider triggered by unknown key ids.
pub const UNKNOWN_KID_MIN_INTERVAL: u64 = 5;
/// How long a JWKS fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted (the engine's bound, checked before the body is read).
pub use policies::identity::MAX_JWKS_BYTES;

/// A JWKS fetch to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// Which remote provider (pass back to [`IdentityState::dispatched`]).
    pub remote: usize,
    /// The provider's cluster (also the `:authority`).
    pub cluster: String,
    /// The JWKS path.
    pub path: String,
}

impl Fetch {
    /// The request headers of the GET.
    pub fn headers(&self) -> [(&str, &str); 4] {
        [
            (":method", "GET"),
            (":path", self.path.as_str()),
            (":authority", self.cluster.as_str()),
            ("accept", "application/json"),
        ]
    }
}

/// What a JWKS fetch answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'b> {
    /// Status 200 and the body (`body_size` bytes, read only when within the size bound).
    Ok(&'b [u8]),
    /// Status 200 with a body over [`MAX_JWKS_BYTES`].
    TooLarge,
    /// Any other status, no status, or an unreadable body.
    Failed,
}

struct Remote {
    provider: String,
    cluster: String,
    path: String,
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

    /// Authenticate a request (see `policies::identity::authenticate`): the caller and the
    /// token's hash. A token whose key is unknown asks for a (rate-limited) refresh of its
    /// provider's JWKS; if that provider's keys are unavailable altogether the caller is
    /// `Unavailable`.
    pub fn authenticate(
        &mut self,
        header: &str,
        headers: &[(&str, &[u8])],
        now: u64,
    ) -> Authentication {
        let remotes = &self.remotes;
        let unavailable = |provider: &str| {
            remotes.iter().any(|r| {
                r.provider == provider && r.inline.is_none() && (r.last_ok.is_none() || r.stale)
            })
        };
        let auth = identity::authenticate(&mut self.verifier, header, headers, now, unavailable);
        if let Caller::Invalid(IdentityError::UnknownKey { provider }) = &auth.caller {
            let provider = provider.clone();
            self.want_refresh(&provider);
        }
        auth
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

    /// Timer work: mark stale providers (their remote keys are dropped) and return the fetches
    /// that are due. Report each with [`IdentityState::dispatched`].
    pub fn tick(&mut self, now: u64) -> Vec<Fetch> {
        let mut due = Vec::new();
        for (i, r) in self.remotes.iter_mut().enumerate() {
            let age = r.last_ok.map(|t| now.saturating_sub(t));
            if !r.stale && age.is_some_and(|age| age > r.max_stale_seconds) {
                r.stale = true;
                let keys = r.inline.clone().unwrap_or_else(Jwks::empty);
                log::warn!(
                    "bedrock-guard: JWKS of provider {} is stale; its remote keys are dropped",
                    r.provider
                );
                if let Err(e) = self.verifier.set_keys(&r.provider, keys) {
                    log::error!(
                        "bedrock-guard: cannot reset keys of provider {}: {e}",
                        r.provider
                    );
                }
                continue;
            }
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
            due.push(Fetch {
                remote: i,
                cluster: r.cluster.clone(),
                path: r.path.clone(),
            });
        }
        due
    }

    /// The fetch of remote `remote` was started (`Some(token)`) or could not be (`None`: it is
    /// tried again when next due).
    pub fn dispatched(&mut self, remote: usize, token: Option<u32>) {
        let Some(r) = self.remotes.get_mut(remote) else {
            return;
        };
        match token {
            Some(token) => r.in_flight = Some(token),
            None => log::warn!(
                "bedrock-guard: JWKS fetch for provider {} not started; retried when next due",
                r.provider
            ),
        }
    }

    /// Is `token` one of this state's fetches in flight?
    pub fn owns(&self, token: u32) -> bool {
        self.remotes.iter().any(|r| r.in_flight == Some(token))
    }

    /// A fetch finished with `answer`. Returns false when `token` is not one of ours. A failed,
    /// oversized or invalid answer keeps the last good keys.
    pub fn on_response(&mut self, token: u32, answer: Answer<'_>, now: u64) -> bool {
        let Some(r) = self.remotes.iter_mut().find(|r| r.in_flight == Some(token)) else {
            return false;
        };
        r.in_flight = None;
        let provider = r.provider.as_str();
        let body = match answer {
            Answer::Ok(body) => body,
            Answer::TooLarge => {
                log::warn!("bedrock-guard: JWKS of provider {provider} is too large; keeping the last good keys");
                return true;
            }
            Answer::Failed => {
                log::warn!("bedrock-guard: JWKS fetch for provider {provider} failed; keeping the last good keys");
                return true;
            }
        };
        let fetched = match Jwks::parse(body) {
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
        match self.verifier.set_keys(provider, keys) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    //! The JWKS schedule as a state machine: a clock, canned answers, no host.
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::json;

    const RSA_A: &str = include_str!("../../policies/tests/fixtures/identity/rsa_a.jwk.json");
    const HEADER: &str = "x-workload-identity";

    fn state(refresh: u64, max_stale: u64) -> IdentityState {
        let bundle = json!({
            "apiVersion": "bedrock-guard/v1", "kind": "PolicyBundle",
            "metadata": {"name": "unit", "revision": "1"},
            "identity": {"header": HEADER, "providers": [{
                "name": "oidc", "issuer": "https://issuer.example", "audiences": ["bedrock"],
                "algorithms": ["RS256"],
                "remote_jwks": {"cluster": "jwks", "path": "/keys",
                                "refresh_seconds": refresh, "max_stale_seconds": max_stale}
            }]},
            "endpoints": [{"host": "bedrock-runtime.us-east-1.amazonaws.com",
                           "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"]}],
            "rules": []
        });
        let policy = CompiledPolicy::from_json(bundle.to_string().as_bytes()).unwrap();
        IdentityState::new(&policy).unwrap()
    }

    fn jwks(kid: &str) -> Vec<u8> {
        let mut key: serde_json::Value = serde_json::from_str(RSA_A).unwrap();
        key["kid"] = json!(kid);
        json!({"keys": [key]}).to_string().into_bytes()
    }

    /// A token of the provider naming key `kid` (its signature is never reached when the key
    /// is unknown).
    fn token(kid: &str) -> String {
        let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.{}",
            part(json!({"alg": "RS256", "kid": kid, "typ": "JWT"})),
            part(
                json!({"iss": "https://issuer.example", "aud": "bedrock", "sub": "s",
                        "exp": 4_000_000_000u64, "iat": 1_000})
            ),
            URL_SAFE_NO_PAD.encode([7u8; 256])
        )
    }

    fn caller(s: &mut IdentityState, kid: &str, now: u64) -> Caller {
        let t = token(kid);
        s.authenticate(HEADER, &[(HEADER, t.as_bytes())], now)
            .caller
    }

    #[test]
    fn fetches_at_start_once_in_flight_and_again_when_due() {
        let mut s = state(300, 3600);
        let due = s.tick(1000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].cluster, "jwks");
        assert_eq!(due[0].path, "/keys");
        assert_eq!(due[0].headers()[0], (":method", "GET"));
        s.dispatched(due[0].remote, Some(11));
        assert!(s.owns(11));
        assert!(s.tick(1001).is_empty(), "one fetch in flight at a time");
        assert!(s.on_response(11, Answer::Ok(&jwks("k1")), 1002));
        assert!(!s.owns(11));
        assert!(
            !s.on_response(11, Answer::Failed, 1003),
            "not ours any more"
        );
        assert_eq!(s.max_age(1002), Some(0));
        assert!(s.tick(1100).is_empty(), "not due before refresh_seconds");
        assert_eq!(s.tick(1302).len(), 1, "due after refresh_seconds");
    }

    #[test]
    fn a_fetch_that_could_not_start_is_retried_when_next_due() {
        let mut s = state(300, 3600);
        let due = s.tick(1000);
        s.dispatched(due[0].remote, None);
        assert!(s.tick(1010).is_empty(), "not immediately");
        assert_eq!(s.tick(1030).len(), 1, "again after min(refresh, 30 s)");
    }

    #[test]
    fn without_keys_tokens_are_unavailable_never_accepted() {
        let mut s = state(300, 3600);
        assert_eq!(caller(&mut s, "k1", 1000), Caller::Unavailable);
    }

    #[test]
    fn bad_answers_keep_the_last_good_keys() {
        let mut s = state(30, 3600);
        let due = s.tick(1000);
        s.dispatched(due[0].remote, Some(1));
        s.on_response(1, Answer::Ok(&jwks("k1")), 1000);
        for (i, answer) in [
            Answer::Failed,
            Answer::TooLarge,
            Answer::Ok(b"not json"),
            Answer::Ok(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#),
        ]
        .into_iter()
        .enumerate()
        {
            let now = 1000 + 30 * (i as u64 + 1);
            let due = s.tick(now);
            assert_eq!(due.len(), 1, "{answer:?}");
            s.dispatched(due[0].remote, Some(100 + i as u32));
            assert!(s.on_response(100 + i as u32, answer, now));
            assert_eq!(s.verifier.keys().keys("oidc").map(Jwks::len), Some(1));
            // The known key still verifies signatures (this one is forged: bad signature, not
            // unknown key or unavailable).
            assert_eq!(
                caller(&mut s, "k1", now),
                Caller::Invalid(IdentityError::BadSignature),
                "{answer:?}"
            );
        }
        assert_eq!(
            s.max_age(1120),
            Some(120),
            "age counts from the last good fetch"
        );
    }

    #[test]
    fn an_unknown_kid_asks_for_a_rate_limited_refresh() {
        let mut s = state(3600, 7200);
        let due = s.tick(1000);
        s.dispatched(due[0].remote, Some(1));
        s.on_response(1, Answer::Ok(&jwks("k1")), 1000);
        assert!(s.tick(1001).is_empty());
        assert!(matches!(
            caller(&mut s, "k2", 1002),
            Caller::Invalid(IdentityError::UnknownKey { .. })
        ));
        assert!(
            s.tick(1003).is_empty(),
            "not before UNKNOWN_KID_MIN_INTERVAL"
        );
        assert!(
            s.tick(1000 + UNKNOWN_KID_MIN_INTERVAL - 1).is_empty(),
            "not one second before the interval is up"
        );
        let due = s.tick(1000 + UNKNOWN_KID_MIN_INTERVAL);
        assert_eq!(due.len(), 1);
        s.dispatched(due[0].remote, Some(2));
        s.on_response(2, Answer::Ok(&jwks("k2")), 1006);
        // A flood of unknown kids: at most one fetch per interval.
        let mut fetches = 0;
        for now in 1006..1006 + 4 * UNKNOWN_KID_MIN_INTERVAL {
            caller(&mut s, "k-random", now);
            for f in s.tick(now) {
                fetches += 1;
                s.dispatched(f.remote, Some(1000 + now as u32));
                s.on_response(1000 + now as u32, Answer::Failed, now);
            }
        }
        assert!(fetches <= 4, "{fetches} fetches");
    }

    #[test]
    fn stale_remote_keys_are_dropped_and_tokens_become_unavailable() {
        let mut s = state(60, 120);
        let due = s.tick(1000);
        s.dispatched(due[0].remote, Some(1));
        s.on_response(1, Answer::Ok(&jwks("k1")), 1000);
        assert_eq!(
            caller(&mut s, "k1", 1100),
            Caller::Invalid(IdentityError::BadSignature)
        );
        // Every later fetch fails; past max_stale_seconds the keys go.
        for now in [1060, 1090, 1121] {
            for f in s.tick(now) {
                s.dispatched(f.remote, Some(now as u32));
                s.on_response(now as u32, Answer::Failed, now);
            }
        }
        assert_eq!(caller(&mut s, "k1", 1122), Caller::Unavailable);
        // A good fetch brings them back.
        let due = s.tick(1200);
        s.dispatched(due[0].remote, Some(9));
        s.on_response(9, Answer::Ok(&jwks("k1")), 1200);
        assert_eq!(
            caller(&mut s, "k1", 1201),
            Caller::Invalid(IdentityError::BadSignature)
        );
    }
}
