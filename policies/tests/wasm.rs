//! A representative part of the engine's tests, run twice: natively (`cargo test --test wasm`)
//! and compiled to `wasm32-unknown-unknown`, in Node, by `wasm-bindgen-test`
//! (`scripts/wasm-engine-tests.sh`, `make wasm-tests`). The plugin ships on wasm32: `usize` is
//! 32 bits there and there is no OS clock or random source, so these tests prove the
//! canonicaliser, the matcher, bundle compilation, decisions, JWT verification and the
//! event-stream reader on that architecture, including lengths and times beyond `u32::MAX`.
//!
//! Everything is deterministic and self-contained: fixtures come in through `include_str!` (no
//! file system on wasm32-unknown-unknown), every clock is an explicit `now`, and tokens are
//! minted with Ed25519 and ECDSA P-256 (deterministic signatures, no random source) or are a
//! pinned RS256 token that the native run re-mints byte for byte.

mod eventstream_support;

use eventstream_support::{
    converse_stream, event, frame, from_hex, metadata, prelude, read_all, read_chunks, Outcome,
    Value as Header,
};
use jsonwebtoken::{EncodingKey, Header as JwtHeader};
use policies::canonical::{self, CanonicalError};
use policies::eventstream::{
    crc32, EventStreamReader, MAX_FRAME_BYTES, MAX_HEADERS_BYTES, MAX_PAYLOAD_BYTES,
};
use policies::identity::{
    verify, Algorithm, IdentityError, Jwks, KeySet, ProviderSpec, VerifiedToken, Verifier,
};
use policies::matcher::{FoldedPatternSet, Pattern, PatternSet};
use policies::{
    decide, evaluate_body, evaluate_head, BundleError, CompiledPolicy, Decision, HeadOutcome, Mode,
    Operation, Reason, RequestFacts,
};
use serde_json::{json, Value};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test;

// The engine must never draw randomness: on wasm32-unknown-unknown the only random source
// `getrandom` has is this one, and it fails the run.
#[cfg(target_arch = "wasm32")]
fn no_randomness(_: &mut [u8]) -> Result<(), getrandom::Error> {
    panic!("the engine asked for randomness on wasm32");
}
#[cfg(target_arch = "wasm32")]
getrandom::register_custom_getrandom!(no_randomness);

const DEMO: &str = include_str!("../examples/demo.json");
const IDENTITY_EXAMPLE: &str = include_str!("../examples/identity.json");
const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const TWO_POW_32: u64 = 1 << 32;

// ---- the architecture ---------------------------------------------------------------------

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn runs_on_the_expected_architecture() {
    #[cfg(target_arch = "wasm32")]
    assert_eq!(usize::BITS, 32, "wasm32 has a 32-bit usize");
    #[cfg(not(target_arch = "wasm32"))]
    assert_eq!(usize::BITS, 64, "the native run is on a 64-bit host");
}

// ---- canonicaliser ------------------------------------------------------------------------

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn canonical_form_sorts_by_utf16_and_escapes_minimally() {
    // U+1F600 is a surrogate pair (D83D DE00) in UTF-16 and so sorts before U+FB01, though its
    // code point (and its UTF-8) is larger.
    let input = "{ \"b\": 1, \"\u{fb01}\": 2, \"a\": [true, false, \"x\\u0001\\n/\u{2028}\"],\n \
                 \"\u{1f600}\": {\"z\": 0, \"y\": -9007199254740991}, \"\u{e9}\": \"caf\u{e9}\" }";
    let expected = "{\"a\":[true,false,\"x\\u0001\\n/\u{2028}\"],\"b\":1,\"\u{e9}\":\"caf\u{e9}\",\
                    \"\u{1f600}\":{\"y\":-9007199254740991,\"z\":0},\"\u{fb01}\":2}";
    let canonical = canonical::canonicalize(input.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(canonical).unwrap(), expected);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn canonical_digest_is_sha256_of_the_canonical_bytes() {
    // `printf '{}' | sha256sum`, `printf '{"a":[1,"b"],"c":{}}' | sha256sum`
    assert_eq!(
        canonical::digest(b" { } ").unwrap(),
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(
        canonical::digest(b"{\"c\": {}, \"a\": [1, \"b\"]}").unwrap(),
        "sha256:f957751129fcc0c1f53f9799eb90551a656b707fe20a70d130f72563ef76c572"
    );
    // The demo bundle: layout and key order do not change the digest.
    let reordered =
        serde_json::to_vec_pretty(&serde_json::from_str::<Value>(DEMO).unwrap()).unwrap();
    assert_ne!(reordered, DEMO.as_bytes());
    let digest = canonical::digest(DEMO.as_bytes()).unwrap();
    assert_eq!(canonical::digest(&reordered).unwrap(), digest);
    assert!(digest.starts_with("sha256:") && digest.len() == 7 + 64);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn canonical_form_refuses_what_has_no_single_meaning() {
    fn json_error(input: &str) -> (usize, usize) {
        match canonical::canonicalize(input.as_bytes()) {
            Err(CanonicalError::Json { line, column, .. }) => (line, column),
            other => panic!("{input}: expected a JSON error, got {other:?}"),
        }
    }
    // The largest exact integer is accepted; the next one, fractions and exponents are not.
    assert_eq!(
        canonical::canonicalize(b"[9007199254740991,-9007199254740991]").unwrap(),
        b"[9007199254740991,-9007199254740991]"
    );
    json_error("[9007199254740992]");
    json_error("[1.5]");
    json_error("[1e2]");
    // A duplicate member name (at any depth) and an escaped member name, with their position.
    assert_eq!(json_error("{\"a\": {\"x\": 1,\n \"x\": 2}}").0, 2);
    json_error("{\"m\\u006fde\": \"enforce\"}");
    // A null is refused under its path.
    match canonical::canonicalize(b"{\"limits\": {\"max\": null}}") {
        Err(CanonicalError::Value { path, .. }) => assert_eq!(path, "limits.max"),
        other => panic!("expected a value error, got {other:?}"),
    }
}

// ---- matcher ------------------------------------------------------------------------------

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn wildcard_patterns_follow_iam_string_like() {
    let m = |pattern: &str, s: &str| Pattern::new(pattern).matches(s);
    assert!(m(
        "anthropic.claude-*",
        "anthropic.claude-3-haiku-20240307-v1:0"
    ));
    assert!(m("anthropic.claude-*", "anthropic.claude-"));
    assert!(!m("anthropic.claude-*", "anthropic.claude"));
    assert!(!m("anthropic.claude-*", "Anthropic.claude-3"));
    assert!(m(
        "arn:aws:bedrock:*:*:foundation-model/*",
        "arn:aws:bedrock:us-east-1::foundation-model/a.b:0"
    ));
    assert!(m(
        "*claude-opus*",
        "us.anthropic.claude-opus-4-1-20250805-v1:0"
    ));
    assert!(!m("*claude-opus*", "us.anthropic.claude-sonnet-4"));
    // `?` is one character, not one byte.
    assert!(m("caf?", "caf\u{e9}"));
    assert!(!m("caf??", "caf\u{e9}"));
    assert!(m("*?", "\u{1f600}"));
    assert!(m("", ""));
    assert!(!m("", "x"));
    // Leftmost placement of middle pieces, no backtracking, on a long subject.
    let long = format!("{}b{}c", "a".repeat(100_000), "a".repeat(100_000));
    assert!(m("a*b*c", &long));
    assert!(!m("a*c*b", &long));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn pattern_sets_look_up_literals_and_try_wildcards() {
    let set = PatternSet::new([
        "amazon.titan-text-express-v1",
        "anthropic.claude-sonnet-4-*",
        "anthropic.claude-sonnet-4-*",
        "us.*",
    ]);
    assert_eq!(set.len(), 3);
    assert!(set.contains_exact("amazon.titan-text-express-v1"));
    assert!(!set.contains_exact("anthropic.claude-sonnet-4-*x"));
    assert!(set.matches("anthropic.claude-sonnet-4-20250514-v1:0"));
    assert!(set.matches("us.meta.llama3"));
    assert!(!set.matches("amazon.titan-text-express-v2"));

    let mut folded = FoldedPatternSet::default();
    folded.insert("*Claude-OPUS*");
    assert!(folded.matches("us.anthropic.claude-opus-4"));
    assert!(folded.matches("US.Anthropic.CLAUDE-opus-4"));
    assert!(!folded.matches("us.anthropic.claude-sonnet-4"));
}

// ---- bundle compile -----------------------------------------------------------------------

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn demo_and_identity_bundles_compile() {
    let demo = CompiledPolicy::from_json(DEMO.as_bytes()).unwrap();
    assert_eq!((demo.name(), demo.revision()), ("demo", "1"));
    assert_eq!(demo.mode(), Mode::Enforce);
    assert_eq!(demo.max_body_bytes(), 1_048_576);
    assert_eq!(demo.endpoints().len(), 2);
    assert!(demo.endpoint(HOST).is_some());
    assert!(demo
        .endpoint("bedrock-runtime.us-west-2.amazonaws.com")
        .is_none());
    assert!(demo.accounts().unwrap().contains("123456789012"));
    assert!(!demo.has_identity());

    let identity = CompiledPolicy::from_json(IDENTITY_EXAMPLE.as_bytes()).unwrap();
    assert!(identity.has_identity());
    assert_eq!(identity.identity_header(), "x-workload-identity");
    assert_eq!(identity.identity_providers().len(), 1);
}

fn demo_with_limit(limit: Value) -> Result<CompiledPolicy, BundleError> {
    let mut bundle: Value = serde_json::from_str(DEMO).unwrap();
    bundle["limits"]["max_body_bytes"] = limit;
    CompiledPolicy::from_json(bundle.to_string().as_bytes())
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn body_limits_beyond_u32_are_refused_not_wrapped() {
    assert_eq!(
        demo_with_limit(json!(25_000_000)).unwrap().max_body_bytes(),
        25_000_000
    );
    // 2^32 + 1 would be a limit of 1 byte if it were truncated to 32 bits.
    let max_safe = canonical::MAX_SAFE_INTEGER;
    for limit in [0, 25_000_001, TWO_POW_32, TWO_POW_32 + 1, max_safe] {
        let error = demo_with_limit(json!(limit)).unwrap_err();
        assert!(error.has_path("limits.max_body_bytes"), "{limit}: {error}");
    }
    // Beyond 2^53 the number itself has no canonical form: a JSON error.
    assert!(matches!(
        demo_with_limit(json!(u64::MAX)),
        Err(BundleError::Json { .. })
    ));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn invalid_bundles_are_refused_with_their_location() {
    let duplicate = DEMO.replacen(
        "\"mode\": \"enforce\",",
        "\"mode\": \"enforce\", \"mode\": \"dry-run\",",
        1,
    );
    assert_ne!(duplicate, DEMO);
    match CompiledPolicy::from_json(duplicate.as_bytes()) {
        Err(BundleError::Json { line, .. }) => assert_eq!(line, 5),
        other => panic!("expected a JSON error, got {other:?}"),
    }
    let mut bundle: Value = serde_json::from_str(DEMO).unwrap();
    bundle["rules"][1]["effect"] = json!("permit");
    assert!(CompiledPolicy::from_json(bundle.to_string().as_bytes()).is_err());
    let mut bundle: Value = serde_json::from_str(DEMO).unwrap();
    bundle["endpoints"][0]["region"] = json!("us-east-1x");
    assert!(CompiledPolicy::from_json(bundle.to_string().as_bytes()).is_err());
}

// ---- decisions ----------------------------------------------------------------------------

fn demo() -> CompiledPolicy {
    CompiledPolicy::from_json(DEMO.as_bytes()).unwrap()
}

fn facts<'a>(
    path: &'a str,
    headers: &'a [(&'a str, &'a [u8])],
    body: Option<&'a [u8]>,
) -> RequestFacts<'a> {
    RequestFacts {
        method: b"POST",
        path: path.as_bytes(),
        authority: HOST.as_bytes(),
        scheme: b"https",
        headers,
        body,
        ..RequestFacts::default()
    }
}

const JSON: (&str, &[u8]) = ("content-type", b"application/json");

fn decide_path(path: &str) -> Decision {
    decide(&demo(), &facts(path, &[JSON], None))
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn allowed_model_in_the_path() {
    let d = decide_path("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    assert_eq!(d.reason, Reason::Allowed, "{d:?}");
    assert_eq!(d.rule_id.as_deref(), Some("claude-and-titan"));
    assert_eq!(d.operation, Some(Operation::Converse));
    assert_eq!(
        d.models,
        vec!["anthropic.claude-3-5-sonnet-20240620-v1:0".to_string()]
    );
    assert!(d.lets_through());
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn refused_models_in_the_path() {
    let d = decide_path("/model/meta.llama3-70b-instruct-v1%3A0/converse");
    assert_eq!(d.reason, Reason::ModelNotAllowed, "{d:?}");
    assert_eq!(d.status(), 403);
    assert!(!d.lets_through());

    let d = decide_path("/model/us.anthropic.claude-opus-4-1-20250805-v1%3A0/converse");
    assert_eq!(d.reason, Reason::ModelDenied, "{d:?}");
    assert_eq!(d.rule_id.as_deref(), Some("no-opus"));

    let d = decide_path("/model/us.anthropic.claude-Opus-4-1-20250805-v1:0/converse");
    assert_eq!(d.reason, Reason::ModelInvalid, "{d:?}");

    for path in [
        "/model/anthropic.claude%252Fx/converse",
        "/model/../model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
    ] {
        let d = decide_path(path);
        assert_eq!(d.reason, Reason::ModelUnparseable, "{path}: {d:?}");
    }
    assert_eq!(
        decide_path("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/fine-tune").reason,
        Reason::OperationUnknown
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn model_in_the_body_waits_for_the_body() {
    let policy = demo();
    let path = "/openai/v1/chat/completions";
    let pending = match evaluate_head(&policy, &facts(path, &[JSON], None)) {
        HeadOutcome::NeedBody(pending) => pending,
        HeadOutcome::Decided(d) => panic!("decided on the head: {d:?}"),
    };
    assert_eq!(pending.operation, Operation::ChatCompletions);
    assert_eq!(pending.max_body_bytes, 1_048_576);

    let allowed = evaluate_body(
        &policy,
        &pending,
        br#"{"model": "openai.gpt-oss-20b-1:0", "messages": []}"#,
    );
    assert_eq!(allowed.reason, Reason::Allowed, "{allowed:?}");
    assert_eq!(allowed.models, vec!["openai.gpt-oss-20b-1:0".to_string()]);

    let denied = evaluate_body(
        &policy,
        &pending,
        br#"{"messages": [], "model": "anthropic.claude-opus-4-20250514-v1:0"}"#,
    );
    assert_eq!(denied.reason, Reason::ModelDenied, "{denied:?}");

    let duplicate = evaluate_body(
        &policy,
        &pending,
        br#"{"model": "openai.gpt-oss-20b-1:0", "model": "anthropic.claude-opus-4-20250514-v1:0"}"#,
    );
    assert_eq!(duplicate.reason, Reason::BodyUnparseable, "{duplicate:?}");

    let oversized = vec![b' '; 1_048_577];
    assert_eq!(
        evaluate_body(&policy, &pending, &oversized).reason,
        Reason::BodyTooLarge
    );

    // The same through `decide`, with the body in the facts.
    let body = br#"{"modelId": "amazon.titan-text-express-v1", "modelInput": {},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://acme-bedrock-async/outputs/run-1/"}}}"#;
    let d = decide(&policy, &facts("/async-invoke", &[JSON], Some(body)));
    assert_eq!(d.reason, Reason::Allowed, "{d:?}");
    assert_eq!(d.operation, Some(Operation::StartAsyncInvoke));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn declared_body_lengths_beyond_u32_are_refused_not_wrapped() {
    let policy = demo();
    let path = "/openai/v1/chat/completions";
    let head = |length: &str| {
        let headers: [(&str, &[u8]); 2] = [JSON, ("content-length", length.as_bytes())];
        evaluate_head(&policy, &facts(path, &headers, None))
    };
    assert!(matches!(head("1048576"), HeadOutcome::NeedBody(_)));
    // 2^32 and 2^32 + 1 would be 0 and 1 in 32 bits; u64::MAX would be 2^32 - 1.
    for length in [
        "1048577",
        "4294967295",
        "4294967296",
        "4294967297",
        "18446744073709551615",
    ] {
        match head(length) {
            HeadOutcome::Decided(d) => assert_eq!(d.reason, Reason::BodyTooLarge, "{length}"),
            HeadOutcome::NeedBody(_) => panic!("content-length {length} waited for the body"),
        }
    }
    // Past u64: not a length at all.
    match head("18446744073709551616") {
        HeadOutcome::Decided(d) => assert_eq!(d.reason, Reason::HeaderInvalid, "{d:?}"),
        HeadOutcome::NeedBody(_) => panic!("an overflowing content-length waited for the body"),
    }
}

// ---- JWT verification ---------------------------------------------------------------------

/// 2027-01-15T08:00:00Z, as in `tests/engine/identity_support`.
const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://idp-a.example";
const AUDIENCE: &str = "bedrock-egress";
const SUBJECT: &str = "spiffe://cluster.local/ns/ml/sa/trainer";

const ED25519_KEY: &str = include_str!("fixtures/identity/ed25519.key.pem");
const EC_P256_KEY: &str = include_str!("fixtures/identity/ec_p256.key.pem");
const RSA_A_KEY: &str = include_str!("fixtures/identity/rsa_a.key.pem");
const ED25519_JWK: &str = include_str!("fixtures/identity/ed25519.jwk.json");
const EC_P256_JWK: &str = include_str!("fixtures/identity/ec_p256.jwk.json");
const RSA_A_JWK: &str = include_str!("fixtures/identity/rsa_a.jwk.json");
const RSA_B_JWK: &str = include_str!("fixtures/identity/rsa_b.jwk.json");

/// RS256 with `rsa_a.key.pem`, kid `rsa-a-1`, over [`base_claims`] plus `groups: ["ml"]`.
/// RSA signing needs a random source for blinding, which wasm32 lacks here, so the token is
/// pinned; PKCS#1 v1.5 signatures are deterministic and the native run re-mints it
/// (`rs256_token_is_what_jsonwebtoken_mints`).
const RS256_TOKEN: &str = concat!(
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6InJzYS1hLTEifQ.",
    "eyJhdWQiOiJiZWRyb2NrLWVncmVzcyIsImV4cCI6MTgwMDAwMDYwMCwiZ3JvdXBzIjpbIm1sIl0sImlhdCI6",
    "MTc5OTk5OTk0MCwiaXNzIjoiaHR0cHM6Ly9pZHAtYS5leGFtcGxlIiwic3ViIjoic3BpZmZlOi8vY2x1c3Rl",
    "ci5sb2NhbC9ucy9tbC9zYS90cmFpbmVyIn0.",
    "G9A1HRBhTeQ6531NezYs5-epU1pm8w9SbQzh93WF0uE_BFhaF4Gh5xxYe-N3YJhSa4DM2sUyDQ9No9ZBFYDm",
    "YSeFXYIh_CN28XG5iJ1IC0TrSYRsdW-ugpyNS1JGRjGaRoeqxbuxmk_d_uXv72veFre4j2NKXJKXfAfTM62W",
    "SIwkRbn62uJC1e9lMEwDhMDw8IUBTlrA6QNXPc9pfCLFtuK4VebvrAkNymxO2ERV1KvJuo8oqhW-5Ql7AJVR",
    "CvPLjTxTCwvkYZZkOrJT8ZdLq92AZIzzsdpDzNOzbI8b4O0LpKqyJIXLhYG0aCG5WiGU60iZK2DfTzqosFR7",
    "qKH5Mg",
);

fn jwk(text: &str, kid: &str, alg: &str) -> Value {
    let mut key: Value = serde_json::from_str(text).unwrap();
    key["kid"] = json!(kid);
    key["alg"] = json!(alg);
    key
}

fn keyset() -> KeySet {
    let spec = ProviderSpec::new(
        "idp-a",
        ISSUER,
        vec![AUDIENCE.to_owned()],
        vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
    );
    let mut keys = KeySet::new(vec![spec]).unwrap();
    let document = json!({ "keys": [
        jwk(RSA_A_JWK, "rsa-a-1", "RS256"),
        jwk(EC_P256_JWK, "ec-a-1", "ES256"),
        jwk(ED25519_JWK, "ed-a-1", "EdDSA"),
        jwk(RSA_B_JWK, "rsa-b-1", "RS256"),
    ]});
    let jwks = Jwks::parse(document.to_string().as_bytes()).unwrap();
    keys.set_keys("idp-a", jwks).unwrap();
    keys
}

fn base_claims() -> Value {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": NOW - 60, "exp": NOW + 600 })
}

fn mint(alg: Algorithm, kid: &str, claims: &Value) -> String {
    policies::jose::ensure_provider();
    let key = match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(ED25519_KEY.as_bytes()).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_P256_KEY.as_bytes()).unwrap(),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA_A_KEY.as_bytes()).unwrap(),
        other => panic!("no fixture key for {other:?}"),
    };
    let mut header = JwtHeader::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn check(token: &str, now: u64) -> Result<VerifiedToken, IdentityError> {
    verify(token.as_bytes(), &keyset(), now)
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn rs256_token_is_what_jsonwebtoken_mints() {
    let mut claims = base_claims();
    claims["groups"] = json!(["ml"]);
    assert_eq!(mint(Algorithm::RS256, "rsa-a-1", &claims), RS256_TOKEN);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn eddsa_and_es256_tokens_minted_here_verify() {
    for (alg, kid) in [(Algorithm::EdDSA, "ed-a-1"), (Algorithm::ES256, "ec-a-1")] {
        let token = mint(alg, kid, &base_claims());
        let verified = check(&token, NOW).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(verified.principal.subject, SUBJECT);
        assert_eq!(verified.principal.issuer, ISSUER);
        assert_eq!(verified.expires_at, NOW + 600);
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rs256_token_verifies_with_its_groups() {
    let verified = check(RS256_TOKEN, NOW).unwrap();
    assert_eq!(verified.principal.subject, SUBJECT);
    assert_eq!(verified.principal.groups, vec!["ml".to_string()]);
    // Through the cached verifier too: the second call is a cache hit with the same answer.
    let mut verifier = Verifier::new(keyset());
    for _ in 0..2 {
        let again = verifier.verify(RS256_TOKEN.as_bytes(), NOW).unwrap();
        assert_eq!(again.principal.subject, SUBJECT);
    }
    assert_eq!(verifier.cached(), 1);
    assert_eq!(
        verifier.verify(RS256_TOKEN.as_bytes(), NOW + 700),
        Err(IdentityError::Expired)
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn tokens_are_refused_for_the_right_reason() {
    let token = mint(Algorithm::EdDSA, "ed-a-1", &base_claims());
    // Expired at exp + leeway (30 s), not before; not yet issued before iat - leeway.
    assert!(check(&token, NOW + 629).is_ok());
    assert_eq!(
        check(&token, NOW + 630).unwrap_err(),
        IdentityError::Expired
    );
    assert_eq!(
        check(&token, NOW - 91).unwrap_err(),
        IdentityError::IssuedInFuture
    );

    // One changed payload byte: the signature no longer verifies.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = base_claims();
    claims["sub"] = json!("spiffe://cluster.local/ns/ml/sa/admin");
    parts[1] = mint(Algorithm::EdDSA, "ed-a-1", &claims)
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    assert_eq!(
        check(&parts.join("."), NOW).unwrap_err(),
        IdentityError::BadSignature
    );

    // The right signature under another key's kid.
    let wrong_kid = mint(Algorithm::EdDSA, "rsa-b-1", &base_claims());
    assert_eq!(
        check(&wrong_kid, NOW).unwrap_err().as_str(),
        "algorithm_not_allowed"
    );
    let unknown_kid = mint(Algorithm::EdDSA, "nobody", &base_claims());
    assert_eq!(
        check(&unknown_kid, NOW).unwrap_err().as_str(),
        "unknown_key"
    );

    let mut claims = base_claims();
    claims["aud"] = json!("somebody-else");
    let token = mint(Algorithm::ES256, "ec-a-1", &claims);
    assert_eq!(check(&token, NOW).unwrap_err(), IdentityError::BadAudience);

    assert_eq!(check("not.a.token", NOW).unwrap_err().as_str(), "malformed");
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn times_beyond_u32_are_compared_as_64_bit() {
    // In 2106, past 2^32 seconds: truncated to 32 bits, iat would be 100 and the token would
    // be accepted at NOW.
    let mut claims = base_claims();
    claims["iat"] = json!(TWO_POW_32 + 100);
    claims["exp"] = json!(TWO_POW_32 + 700);
    let token = mint(Algorithm::EdDSA, "ed-a-1", &claims);
    let verified = check(&token, TWO_POW_32 + 160).unwrap();
    assert_eq!(verified.expires_at, TWO_POW_32 + 700);
    assert_eq!(
        check(&token, TWO_POW_32 + 730).unwrap_err(),
        IdentityError::Expired
    );
    assert_eq!(
        check(&token, NOW).unwrap_err(),
        IdentityError::IssuedInFuture
    );

    // Only `now` counts: a token that expired in 2001 is valid at a `now` in 2001.
    let mut claims = base_claims();
    claims["iat"] = json!(1_000_000_000);
    claims["exp"] = json!(1_000_000_600);
    let token = mint(Algorithm::ES256, "ec-a-1", &claims);
    assert_eq!(
        check(&token, 1_000_000_060).unwrap().expires_at,
        1_000_000_600
    );
    assert_eq!(check(&token, NOW).unwrap_err(), IdentityError::Expired);
}

// ---- event-stream reader ------------------------------------------------------------------

const CONVERSE_HEX: &str = include_str!("fixtures/eventstream/converse_stream.hex");
const INVOKE_HEX: &str = include_str!("fixtures/eventstream/invoke_stream.hex");
const EXCEPTION_HEX: &str = include_str!("fixtures/eventstream/exception.hex");

fn usage_only(input: u64, output: u64, frames: u64) -> Outcome {
    Outcome {
        usage: Some((input, output)),
        frames,
        malformed: 0,
        exceptions: 0,
        last_exception: None,
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn botocore_verified_fixtures_are_read() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    let converse = from_hex(CONVERSE_HEX);
    assert_eq!(converse, converse_stream(25, 40));
    assert_eq!(read_all(&converse), usage_only(25, 40, 6));
    // Byte by byte: the same outcome.
    assert_eq!(read_chunks(converse.chunks(1)), usage_only(25, 40, 6));
    assert_eq!(read_all(&from_hex(INVOKE_HEX)), usage_only(12, 34, 4));

    let exception = read_all(&from_hex(EXCEPTION_HEX));
    assert_eq!(exception.exceptions, 1);
    assert_eq!(
        exception.last_exception.as_deref(),
        Some("throttlingException")
    );
    assert_eq!(exception.usage, None);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn token_counts_beyond_u32_are_kept() {
    let big = 5 * TWO_POW_32 + 7;
    assert_eq!(
        read_all(&metadata(big, u64::from(u32::MAX) + 1)).usage,
        Some((big, TWO_POW_32))
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn lengths_near_u32_max_are_refused_not_wrapped() {
    let cases = [
        // total_length at u32::MAX: refused before anything is buffered.
        (u32::MAX, 0),
        (u32::MAX, u32::MAX - 15),
        // headers_length beyond total_length: the subtraction would wrap.
        (16, u32::MAX),
        (MAX_FRAME_BYTES, u32::MAX),
        (MAX_FRAME_BYTES + 1, 0),
        // payload one byte over its limit, headers one byte over theirs.
        (16 + MAX_PAYLOAD_BYTES + 1, 0),
        (16 + MAX_HEADERS_BYTES + 1, MAX_HEADERS_BYTES + 1),
        // below the 16-byte minimum.
        (15, 0),
        (0, 0),
    ];
    for (total, headers_len) in cases {
        let mut reader = EventStreamReader::new();
        reader.push(&prelude(total, headers_len));
        assert_eq!(
            reader.malformed_frames(),
            1,
            "total {total}, headers {headers_len}"
        );
        assert!(reader.is_poisoned());
        assert!(!reader.has_partial_frame());
        // Nothing after a bad length is read.
        reader.push(&metadata(1, 2));
        assert_eq!((reader.frames(), reader.usage()), (0, None));
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn largest_frame_is_read_through_in_pieces() {
    // A `chunk` event with a payload of exactly MAX_PAYLOAD_BYTES (24 MiB): checked (CRC),
    // not buffered or inspected, and the stream goes on to the usage event.
    let headers = eventstream_support::encode_headers(&[
        (":event-type", Header::Str("chunk")),
        (":message-type", Header::Str("event")),
    ]);
    let total = 16 + headers.len() as u32 + MAX_PAYLOAD_BYTES;
    let mut big = Vec::with_capacity(total as usize);
    big.extend_from_slice(&prelude(total, headers.len() as u32));
    big.extend_from_slice(&headers);
    big.resize(big.len() + MAX_PAYLOAD_BYTES as usize, b'x');
    let crc = crc32(&big);
    big.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(big.len(), total as usize);

    let mut reader = EventStreamReader::new();
    reader.push(&event("messageStart", "{\"role\":\"assistant\"}"));
    for piece in big.chunks(1 << 20) {
        reader.push(piece);
        assert_eq!(reader.malformed_frames(), 0);
    }
    reader.push(&metadata(3, 4));
    reader.finish();
    assert_eq!(reader.frames(), 3);
    assert_eq!(reader.malformed_frames(), 0);
    assert_eq!(reader.usage(), Some((3, 4)));

    // The same frame with its last payload byte changed fails the message CRC.
    let at = big.len() - 5;
    big[at] ^= 1;
    let mut reader = EventStreamReader::new();
    reader.push(&big);
    assert_eq!((reader.frames(), reader.malformed_frames()), (0, 1));
    // And a frame of the same shape built by the test encoder agrees on the CRC layout.
    let small = frame(&[(":event-type", Header::Str("chunk"))], b"{}");
    assert_eq!(read_all(&small).frames, 1);
}
