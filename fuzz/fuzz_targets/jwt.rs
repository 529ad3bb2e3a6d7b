//! `identity::verify` (and the caching `Verifier`) with a fixed key set and a fixed clock.
//!
//! Keys: the engine's committed test-only fixtures, issuer A (RSA `rsa-a-1` RS256, P-256
//! `ec-a-1` ES256) and issuer B (RSA `rsa-b-1` RS256), loaded with `Jwks::parse`. Oracle: no
//! panic; `Ok` only for the known-valid seed tokens (`seeds/jwt/valid_*`); the cached verifier
//! agrees with the uncached one; error detail codes are from the fixed vocabulary.
#![no_main]

use std::cell::RefCell;

use fuzz_support::{jwt_keyset, JWT_NOW, VALID_TOKENS};
use libfuzzer_sys::fuzz_target;
use policies::identity::{verify, KeySet, Verifier};

const CODES: [&str; 9] = [
    "expired",
    "lifetime_too_long",
    "not_yet_valid",
    "bad_signature",
    "unknown_issuer",
    "bad_audience",
    "algorithm_not_allowed",
    "unknown_key",
    "malformed",
];

thread_local! {
    static KEYS: KeySet = jwt_keyset();
    static VERIFIER: RefCell<Verifier> = RefCell::new(Verifier::with_cache_capacity(jwt_keyset(), 64));
}

fuzz_target!(
    init: {
        // The valid seeds must verify, or the fuzzer never reaches the claims checks.
        KEYS.with(|keys| {
            for token in VALID_TOKENS {
                if let Err(e) = verify(token, keys, JWT_NOW) {
                    panic!("seed token does not verify: {e}");
                }
            }
        });
    },
    |data: &[u8]| {
        let uncached = KEYS.with(|keys| verify(data, keys, JWT_NOW));
        let cached = VERIFIER.with(|v| v.borrow_mut().verify(data, JWT_NOW));
        match (&uncached, &cached) {
            (Ok(a), Ok(b)) => {
                assert!(
                    VALID_TOKENS.contains(&data),
                    "accepted a token that is not a known-valid seed: {:?}",
                    String::from_utf8_lossy(data)
                );
                assert_eq!(a.principal.subject, b.principal.subject);
                assert!(a.expires_at > JWT_NOW);
            }
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "cached and uncached verification disagree");
                assert!(CODES.contains(&a.as_str()));
                let message = a.to_string();
                assert!(message.starts_with(a.as_str()), "{message}");
                assert!(message.bytes().all(|b| (0x20..0x7f).contains(&b)));
            }
            _ => panic!("cached {cached:?} vs uncached {uncached:?}"),
        }
    }
);
