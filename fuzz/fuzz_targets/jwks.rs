//! `Jwks::parse` on arbitrary bytes.
//!
//! Oracle: no panic; an accepted document is self-consistent (every listed kid resolves, the
//! digest is deterministic, merging with itself changes nothing) and what is accepted is JSON.
#![no_main]

use fuzz_support::fixture_jwks_document;
use libfuzzer_sys::fuzz_target;
use policies::identity::{Jwks, MAX_JWKS_BYTES, MAX_JWKS_KEYS};

fuzz_target!(
    init: {
        let jwks = Jwks::parse(fixture_jwks_document().as_bytes()).expect("fixture JWKS");
        assert_eq!(jwks.len(), 3);
    },
    |data: &[u8]| {
        let Ok(jwks) = Jwks::parse(data) else {
            return;
        };
        assert!(data.len() <= MAX_JWKS_BYTES);
        assert!(jwks.len() <= MAX_JWKS_KEYS);
        assert!(serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok());
        let kids: Vec<&str> = jwks.kids().collect();
        assert_eq!(kids.len(), jwks.len());
        for kid in &kids {
            let key = jwks.get(kid).expect("listed kid resolves");
            assert!(!key.algorithms().is_empty());
        }
        assert_eq!(jwks.is_empty(), kids.is_empty());
        let again = Jwks::parse(data).expect("parse is deterministic");
        assert_eq!(again.digest(), jwks.digest());
        assert_eq!(jwks.merged_with(&jwks).digest(), jwks.digest());
        let _ = format!("{jwks:?}");
    }
);
