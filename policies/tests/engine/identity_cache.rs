//! The verified-token cache, the caching verifier, JWKS rotation and fingerprints.

use std::sync::Arc;

use crate::identity_support::*;
use policies::identity::{
    fingerprint, Algorithm, IdentityError, KeySet, Malformed, Principal, TokenCache, TokenHash,
    Verifier, DEFAULT_CACHE_CAPACITY,
};
use serde_json::json;
use sha2::{Digest, Sha256};

fn principal(subject: &str) -> Arc<Principal> {
    Arc::new(Principal {
        issuer: ISS_A.to_owned(),
        subject: subject.to_owned(),
        groups: Vec::new(),
        claims: serde_json::Map::new(),
    })
}

fn hash(token: &str) -> TokenHash {
    TokenHash::of(token.as_bytes())
}

// ---- TokenCache ----------------------------------------------------------------------------

#[test]
fn cache_returns_entry_until_exp_then_misses_and_evicts() {
    let mut cache = TokenCache::new(4);
    cache.insert(hash("t1"), principal("alice"), NOW + 10);
    let hit = cache.get(&hash("t1"), NOW + 9).unwrap();
    assert_eq!(
        (hit.principal.subject.as_str(), hit.expires_at),
        ("alice", NOW + 10)
    );
    assert!(cache.get(&hash("t1"), NOW + 10).is_none());
    assert!(cache.is_empty());
}

#[test]
fn cache_evicts_the_oldest_insertion_when_full() {
    let mut cache = TokenCache::new(2);
    cache.insert(hash("t1"), principal("a"), NOW + 100);
    cache.insert(hash("t2"), principal("b"), NOW + 100);
    cache.insert(hash("t3"), principal("c"), NOW + 100);
    assert_eq!(cache.len(), 2);
    assert!(cache.get(&hash("t1"), NOW).is_none());
    assert!(cache.get(&hash("t2"), NOW).is_some());
    assert!(cache.get(&hash("t3"), NOW).is_some());
}

#[test]
fn cache_reinsert_refreshes_position() {
    let mut cache = TokenCache::new(2);
    cache.insert(hash("t1"), principal("a"), NOW + 100);
    cache.insert(hash("t2"), principal("b"), NOW + 100);
    cache.insert(hash("t1"), principal("a2"), NOW + 100);
    cache.insert(hash("t3"), principal("c"), NOW + 100);
    assert!(cache.get(&hash("t2"), NOW).is_none());
    assert_eq!(cache.get(&hash("t1"), NOW).unwrap().principal.subject, "a2");
}

#[test]
fn cache_of_capacity_zero_stores_nothing() {
    let mut cache = TokenCache::new(0);
    cache.insert(hash("t1"), principal("a"), NOW + 100);
    assert!(cache.get(&hash("t1"), NOW).is_none());
}

#[test]
fn cache_stays_bounded_and_correct_under_churn() {
    let mut cache = TokenCache::new(8);
    for i in 0..10_000u64 {
        let token = format!("t{i}");
        cache.insert(hash(&token), principal(&token), NOW + 1 + i % 3);
        // expire some entries through lookups, leaving stale order records behind
        if i % 2 == 0 {
            assert!(cache.get(&hash(&token), NOW + 5).is_none());
        }
        assert!(cache.len() <= 8);
    }
    let last = "t9999";
    assert_eq!(cache.get(&hash(last), NOW).unwrap().principal.subject, last);
}

#[test]
fn the_default_cache_holds_exactly_1024_tokens_then_evicts_the_oldest() {
    assert_eq!(DEFAULT_CACHE_CAPACITY, 1024, "docs/operations.md, Bounds");
    // The verifier every VM builds (Verifier::new) has this capacity.
    let verifier = Verifier::new(keyset());
    assert!(
        format!("{verifier:?}").contains("capacity: 1024,"),
        "{verifier:?}"
    );
    let mut cache = TokenCache::new(DEFAULT_CACHE_CAPACITY);
    let token = |i: usize| hash(&format!("token-{i}"));
    for i in 0..DEFAULT_CACHE_CAPACITY {
        cache.insert(token(i), principal(&format!("svc-{i}")), NOW + 600);
    }
    // At N: all N held.
    assert_eq!(cache.len(), DEFAULT_CACHE_CAPACITY);
    assert!((0..DEFAULT_CACHE_CAPACITY).all(|i| cache.get(&token(i), NOW).is_some()));
    // N + 1: still N; the oldest insertion gave way, nothing else did.
    cache.insert(
        token(DEFAULT_CACHE_CAPACITY),
        principal("svc-new"),
        NOW + 600,
    );
    assert_eq!(cache.len(), DEFAULT_CACHE_CAPACITY);
    assert!(
        cache.get(&token(0), NOW).is_none(),
        "the oldest was evicted"
    );
    assert!((1..=DEFAULT_CACHE_CAPACITY).all(|i| cache.get(&token(i), NOW).is_some()));
}

#[test]
fn an_evicted_token_is_verified_in_full_again() {
    // The verifier's side of eviction, at a small capacity (each token costs a signature).
    let mut verifier = Verifier::with_cache_capacity(keyset(), 2);
    let tokens: Vec<String> = (0..3)
        .map(|i| {
            let mut c = claims();
            c["sub"] = json!(format!("svc-{i}"));
            mint_a(&c)
        })
        .collect();
    for t in &tokens {
        verifier.verify(t.as_bytes(), NOW).unwrap();
    }
    assert_eq!(verifier.cached(), 2);
    verifier.verify(tokens[2].as_bytes(), NOW).unwrap();
    assert_eq!(verifier.stats().cache_hits, 1);
    verifier.verify(tokens[0].as_bytes(), NOW).unwrap();
    assert_eq!(
        (
            verifier.stats().full_verifications,
            verifier.stats().cache_hits
        ),
        (4, 1),
        "the evicted token was verified again"
    );
}

// ---- Verifier ------------------------------------------------------------------------------

#[test]
fn reused_token_is_verified_once() {
    let mut verifier = Verifier::new(keyset());
    let token = mint_a(&claims());
    let first = verifier.verify(token.as_bytes(), NOW).unwrap();
    let second = verifier.verify(token.as_bytes(), NOW + 1).unwrap();
    assert!(Arc::ptr_eq(&first.principal, &second.principal));
    let stats = verifier.stats();
    assert_eq!((stats.full_verifications, stats.cache_hits), (1, 1));
}

#[test]
fn cached_token_expires_at_exp_and_leeway_is_not_cached() {
    // exp NOW+600, leeway 30: cached until exp; verified afresh within the leeway; then expired
    let mut verifier = Verifier::new(keyset());
    let token = mint_a(&claims());
    verifier.verify(token.as_bytes(), NOW).unwrap();
    verifier.verify(token.as_bytes(), NOW + 599).unwrap();
    assert_eq!(verifier.stats().cache_hits, 1);
    verifier.verify(token.as_bytes(), NOW + 600).unwrap();
    verifier.verify(token.as_bytes(), NOW + 601).unwrap();
    assert_eq!(verifier.stats().full_verifications, 3);
    assert_eq!(verifier.cached(), 0);
    let err = verifier.verify(token.as_bytes(), NOW + 630).unwrap_err();
    assert_eq!(err, IdentityError::Expired);
}

#[test]
fn refused_tokens_are_not_cached() {
    let mut verifier = Verifier::new(keyset());
    let mut claims = claims();
    claims["aud"] = json!("other");
    let token = mint_a(&claims);
    for _ in 0..2 {
        assert_eq!(
            verifier.verify(token.as_bytes(), NOW).unwrap_err(),
            IdentityError::BadAudience
        );
    }
    assert_eq!(verifier.stats().full_verifications, 2);
}

#[test]
fn oversized_token_is_refused_before_hashing_or_verifying() {
    let mut verifier = Verifier::new(keyset());
    let err = verifier.verify(&vec![b'a'; 8193], NOW).unwrap_err();
    assert_eq!(err, IdentityError::Malformed(Malformed::TooLarge));
    assert_eq!(verifier.stats().full_verifications, 0);
}

#[test]
fn jwks_rotation_retires_old_kid_and_accepts_new() {
    // A rotates from rsa-a-1 (RSA key A) to rsa-a-2 (RSA key B material)
    let mut keys = KeySet::new(vec![provider_a()]).unwrap();
    keys.set_keys("idp-a", jwks(vec![jwk("rsa_a", KID_RSA_A, None)]))
        .unwrap();
    let mut verifier = Verifier::new(keys);
    let old = mint_a(&claims());
    verifier.verify(old.as_bytes(), NOW).unwrap();

    let rotated = jwks(vec![jwk("rsa_b", "rsa-a-2", Some("RS256"))]);
    assert!(verifier.set_keys("idp-a", rotated).unwrap());
    let err = verifier.verify(old.as_bytes(), NOW).unwrap_err();
    assert_eq!(
        err,
        IdentityError::UnknownKey {
            provider: "idp-a".to_owned()
        }
    );

    let new = mint(Algorithm::RS256, "rsa_b.key.pem", "rsa-a-2", &claims());
    assert_eq!(
        verifier
            .verify(new.as_bytes(), NOW)
            .unwrap()
            .principal
            .subject,
        SUB
    );
}

#[test]
fn unchanged_jwks_refresh_keeps_the_cache() {
    let mut verifier = Verifier::new(keyset());
    let token = mint_a(&claims());
    verifier.verify(token.as_bytes(), NOW).unwrap();
    assert!(!verifier.set_keys("idp-a", jwks_a()).unwrap());
    verifier.verify(token.as_bytes(), NOW).unwrap();
    assert_eq!(verifier.stats().cache_hits, 1);
}

#[test]
fn changed_jwks_empties_the_cache() {
    // A keeps rsa-a-1 but drops ec-a-1 and ed-a-1: cached tokens are re-verified
    let mut verifier = Verifier::new(keyset());
    let token = mint_a(&claims());
    verifier.verify(token.as_bytes(), NOW).unwrap();
    assert!(verifier
        .set_keys("idp-a", jwks(vec![jwk("rsa_a", KID_RSA_A, None)]))
        .unwrap());
    assert_eq!(verifier.cached(), 0);
    verifier.verify(token.as_bytes(), NOW).unwrap();
    assert_eq!(verifier.stats().full_verifications, 2);
}

// ---- fingerprint ---------------------------------------------------------------------------

#[test]
fn fingerprint_is_first_12_hex_chars_of_sha256() {
    let token = mint_a(&claims());
    let expected: String = Sha256::digest(token.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(fingerprint(token.as_bytes()), expected);
    assert_eq!(TokenHash::of(token.as_bytes()).fingerprint(), expected);
    assert_eq!(fingerprint(b"abc"), "ba7816bf8f01");
}
