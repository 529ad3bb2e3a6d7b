//! Named token fixtures, one test each, with the expected detail code.
//!
//! Unless a test says otherwise: providers A (`https://idp-a.example`; RS256, ES256, EdDSA;
//! keys `rsa-a-1`, `ec-a-1`, `ed-a-1`) and B (`https://idp-b.example`; RS256; key `rsa-b-1`),
//! audience `bedrock-egress`, leeway 30 s, clock at NOW, and the base claims
//! `{"iss": A, "aud": "bedrock-egress", "sub": SUB, "iat": NOW-60, "exp": NOW+600}`.

use crate::identity_support::*;
use policies::identity::{verify, Algorithm, IdentityError, KeySet, Malformed, ProviderSpec};
use serde_json::json;

fn malformed(why: Malformed) -> IdentityError {
    IdentityError::Malformed(why)
}

// ---- accepted ------------------------------------------------------------------------------

#[test]
fn accepts_rs256_token_and_builds_the_principal() {
    // header {"alg":"RS256","typ":"JWT","kid":"rsa-a-1"}, base claims + groups ["ml-platform"]
    let mut claims = claims();
    claims["groups"] = json!(["ml-platform"]);
    let verified = check(&mint_a(&claims)).unwrap();
    let p = &verified.principal;
    assert_eq!((p.issuer.as_str(), p.subject.as_str()), (ISS_A, SUB));
    assert_eq!(p.groups, vec!["ml-platform".to_owned()]);
    assert_eq!(verified.expires_at, NOW + 600);
    assert_eq!(p.claims.get("iat"), Some(&json!(NOW - 60)));
}

#[test]
fn accepts_es256_token() {
    // header {"alg":"ES256","typ":"JWT","kid":"ec-a-1"}, base claims
    let token = mint(Algorithm::ES256, "ec_p256.key.pem", KID_EC_A, &claims());
    assert_eq!(check(&token).unwrap().principal.subject, SUB);
}

#[test]
fn accepts_eddsa_token() {
    // header {"alg":"EdDSA","typ":"JWT","kid":"ed-a-1"}, base claims
    let token = mint(Algorithm::EdDSA, "ed25519.key.pem", KID_ED_A, &claims());
    assert_eq!(check(&token).unwrap().principal.subject, SUB);
}

#[test]
fn accepts_issuer_b_token_with_b_key() {
    // header {"alg":"RS256","kid":"rsa-b-1"}, base claims with iss B
    let mut claims = claims();
    claims["iss"] = json!(ISS_B);
    let token = mint(Algorithm::RS256, "rsa_b.key.pem", KID_RSA_B, &claims);
    assert_eq!(check(&token).unwrap().principal.issuer, ISS_B);
}

#[test]
fn accepts_float_numeric_dates() {
    // {"exp": NOW+600.5, "iat": NOW-60.25, "nbf": NOW-60.5}: RFC 7519 NumericDate may be
    // non-integer; exp is rounded down.
    let mut claims = claims();
    claims["exp"] = json!(NOW as f64 + 600.5);
    claims["iat"] = json!(NOW as f64 - 60.25);
    claims["nbf"] = json!(NOW as f64 - 60.5);
    assert_eq!(check(&mint_a(&claims)).unwrap().expires_at, NOW + 600);
}

#[test]
fn accepts_audience_array_with_one_match() {
    // {"aud": ["other-service", "bedrock-egress"]}
    let mut claims = claims();
    claims["aud"] = json!(["other-service", AUD]);
    assert!(check(&mint_a(&claims)).is_ok());
}

#[test]
fn accepts_typ_at_jwt_case_insensitively_and_missing_typ() {
    for header in [
        format!(r#"{{"alg":"RS256","typ":"at+JWT","kid":"{KID_RSA_A}"}}"#),
        format!(r#"{{"alg":"RS256","typ":"application/at+jwt","kid":"{KID_RSA_A}"}}"#),
        format!(r#"{{"alg":"RS256","typ":"jwt","kid":"{KID_RSA_A}"}}"#),
        format!(r#"{{"alg":"RS256","kid":"{KID_RSA_A}"}}"#),
    ] {
        let token = mint_raw_a(&header, &claims().to_string());
        assert!(check(&token).is_ok(), "{header}");
    }
}

// ---- time ----------------------------------------------------------------------------------

#[test]
fn refuses_expired_token() {
    // {"exp": NOW-31, "iat": NOW-600}: past exp by more than the 30 s leeway
    let mut claims = claims();
    claims["exp"] = json!(NOW - 31);
    claims["iat"] = json!(NOW - 600);
    let error = refused(&mint_a(&claims));
    assert_eq!(
        (error.clone(), error.as_str()),
        (IdentityError::Expired, "expired")
    );
}

#[test]
fn accepts_token_expired_within_leeway() {
    // {"exp": NOW-29}: within the 30 s leeway
    let mut claims = claims();
    claims["exp"] = json!(NOW - 29);
    assert!(check(&mint_a(&claims)).is_ok());
}

#[test]
fn refuses_token_at_exp_plus_leeway_exactly() {
    // {"exp": NOW-30}: RFC 7519 requires now < exp (+ leeway)
    let mut claims = claims();
    claims["exp"] = json!(NOW - 30);
    assert_eq!(refused(&mint_a(&claims)), IdentityError::Expired);
}

#[test]
fn refuses_token_not_yet_valid() {
    // {"nbf": NOW+31}
    let mut claims = claims();
    claims["nbf"] = json!(NOW + 31);
    let error = refused(&mint_a(&claims));
    assert_eq!(
        (error.clone(), error.as_str()),
        (IdentityError::NotYetValid, "not_yet_valid")
    );
}

#[test]
fn accepts_nbf_within_leeway() {
    // {"nbf": NOW+30}
    let mut claims = claims();
    claims["nbf"] = json!(NOW + 30);
    assert!(check(&mint_a(&claims)).is_ok());
}

#[test]
fn refuses_token_issued_in_the_future() {
    // {"iat": NOW+31}
    let mut claims = claims();
    claims["iat"] = json!(NOW + 31);
    let error = refused(&mint_a(&claims));
    assert_eq!(
        (error.clone(), error.as_str()),
        (IdentityError::IssuedInFuture, "not_yet_valid")
    );
}

#[test]
fn refuses_lifetime_over_max() {
    // max_lifetime_seconds 3600; {"iat": NOW-60, "exp": NOW+3541}: 3601 s
    let mut spec = provider_a();
    spec.max_lifetime_seconds = Some(3600);
    let keys = keyset_with(vec![spec]);
    let mut claims = claims();
    claims["exp"] = json!(NOW + 3541);
    let error = verify(mint_a(&claims).as_bytes(), &keys, NOW).unwrap_err();
    assert_eq!(
        (error.clone(), error.as_str()),
        (IdentityError::LifetimeTooLong, "lifetime_too_long")
    );
    // Its own code, so the caller is not told to refresh a token that no refresh can fix.
    assert!(
        error.to_string().starts_with("lifetime_too_long: "),
        "{error}"
    );
    claims["exp"] = json!(NOW + 3540); // exactly 3600 s
    assert!(verify(mint_a(&claims).as_bytes(), &keys, NOW).is_ok());
}

#[test]
fn refuses_missing_iat_when_max_lifetime_is_set() {
    // max_lifetime_seconds 3600; claims without iat
    let mut spec = provider_a();
    spec.max_lifetime_seconds = Some(3600);
    let keys = keyset_with(vec![spec]);
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("iat");
    let error = verify(mint_a(&claims).as_bytes(), &keys, NOW).unwrap_err();
    assert_eq!(error, malformed(Malformed::MissingClaim("iat")));
}

#[test]
fn refuses_missing_exp() {
    // claims without exp
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("exp");
    let error = refused(&mint_a(&claims));
    assert_eq!(
        (error.clone(), error.as_str()),
        (malformed(Malformed::MissingClaim("exp")), "malformed")
    );
}

#[test]
fn refuses_exp_as_string() {
    // {"exp": "<NOW+600>"}: a string is not a NumericDate (CVE-2026-25537 class)
    let mut claims = claims();
    claims["exp"] = json!((NOW + 600).to_string());
    assert_eq!(
        refused(&mint_a(&claims)),
        malformed(Malformed::ClaimType("exp"))
    );
}

#[test]
fn refuses_nbf_as_string() {
    // {"nbf": "<NOW+3600>"}: must not be treated as absent
    let mut claims = claims();
    claims["nbf"] = json!((NOW + 3600).to_string());
    assert_eq!(
        refused(&mint_a(&claims)),
        malformed(Malformed::ClaimType("nbf"))
    );
}

#[test]
fn refuses_negative_exp_and_iat_object() {
    let mut claims = claims();
    claims["exp"] = json!(-1);
    assert_eq!(
        refused(&mint_a(&claims)),
        malformed(Malformed::ClaimType("exp"))
    );
    let mut claims = self::claims();
    claims["iat"] = json!({"t": NOW});
    assert_eq!(
        refused(&mint_a(&claims)),
        malformed(Malformed::ClaimType("iat"))
    );
}

// ---- issuer --------------------------------------------------------------------------------

#[test]
fn refuses_unknown_issuer() {
    // {"iss": "https://idp-a.example/"}: exact match only (trailing slash differs)
    let mut claims = claims();
    claims["iss"] = json!(format!("{ISS_A}/"));
    let error = refused(&mint_a(&claims));
    assert_eq!(
        (error.clone(), error.as_str()),
        (IdentityError::UnknownIssuer, "unknown_issuer")
    );
}

#[test]
fn refuses_iss_array() {
    // {"iss": ["https://evil.example", A]}: jsonwebtoken alone would accept any-intersection
    let mut claims = claims();
    claims["iss"] = json!(["https://evil.example", ISS_A]);
    assert_eq!(
        refused(&mint_a(&claims)),
        malformed(Malformed::ClaimType("iss"))
    );
}

#[test]
fn refuses_iss_number() {
    // {"iss": 123}
    let mut claims = claims();
    claims["iss"] = json!(123);
    assert_eq!(
        refused(&mint_a(&claims)),
        malformed(Malformed::ClaimType("iss"))
    );
}

#[test]
fn refuses_missing_iss() {
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        refused(&mint_a(&claims)),
        malformed(Malformed::MissingClaim("iss"))
    );
}

// ---- audience ------------------------------------------------------------------------------

#[test]
fn refuses_wrong_audience() {
    // {"aud": "another-service"}
    let mut claims = claims();
    claims["aud"] = json!("another-service");
    let error = refused(&mint_a(&claims));
    assert_eq!(
        (error.clone(), error.as_str()),
        (IdentityError::BadAudience, "bad_audience")
    );
}

#[test]
fn refuses_missing_audience() {
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("aud");
    assert_eq!(refused(&mint_a(&claims)), IdentityError::BadAudience);
}

#[test]
fn refuses_empty_audience_array() {
    let mut claims = claims();
    claims["aud"] = json!([]);
    assert_eq!(refused(&mint_a(&claims)), IdentityError::BadAudience);
}

#[test]
fn refuses_wrongly_typed_audience() {
    // {"aud": 7} and {"aud": ["bedrock-egress", 7]}
    let mut claims = claims();
    claims["aud"] = json!(7);
    assert_eq!(
        refused(&mint_a(&claims)),
        malformed(Malformed::ClaimType("aud"))
    );
    claims["aud"] = json!([AUD, 7]);
    assert_eq!(
        refused(&mint_a(&claims)),
        malformed(Malformed::ClaimType("aud"))
    );
}

// ---- principal and groups ------------------------------------------------------------------

#[test]
fn refuses_missing_sub() {
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("sub");
    let error = refused(&mint_a(&claims));
    assert_eq!(
        (error.clone(), error.as_str()),
        (malformed(Malformed::Principal), "malformed")
    );
}

#[test]
fn refuses_empty_or_non_string_sub() {
    let mut claims = claims();
    claims["sub"] = json!("");
    assert_eq!(refused(&mint_a(&claims)), malformed(Malformed::Principal));
    claims["sub"] = json!(42);
    assert_eq!(
        refused(&mint_a(&claims)),
        malformed(Malformed::ClaimType("sub"))
    );
}

#[test]
fn uses_configured_principal_claim() {
    // principal_claim "email"; {"email": "trainer@acme.example"}; sub still type-checked
    let mut spec = provider_a();
    spec.principal_claim = "email".to_owned();
    let keys = keyset_with(vec![spec]);
    let mut claims = claims();
    claims["email"] = json!("trainer@acme.example");
    let verified = verify(mint_a(&claims).as_bytes(), &keys, NOW).unwrap();
    assert_eq!(verified.principal.subject, "trainer@acme.example");
    claims.as_object_mut().unwrap().remove("email");
    let error = verify(mint_a(&claims).as_bytes(), &keys, NOW).unwrap_err();
    assert_eq!(error, malformed(Malformed::Principal));
}

#[test]
fn reads_groups_as_array() {
    // {"groups": ["ml-platform", "data-science"]}
    let mut claims = claims();
    claims["groups"] = json!(["ml-platform", "data-science"]);
    let verified = check(&mint_a(&claims)).unwrap();
    assert_eq!(verified.principal.groups, ["ml-platform", "data-science"]);
    assert!(verified.principal.in_group("data-science"));
}

#[test]
fn reads_groups_as_space_separated_string() {
    // {"groups": "ml-platform  data-science"} (two spaces: no empty group)
    let mut claims = claims();
    claims["groups"] = json!("ml-platform  data-science");
    let verified = check(&mint_a(&claims)).unwrap();
    assert_eq!(verified.principal.groups, ["ml-platform", "data-science"]);
}

#[test]
fn missing_groups_claim_means_no_groups() {
    assert!(check(&mint_a(&claims()))
        .unwrap()
        .principal
        .groups
        .is_empty());
}

#[test]
fn refuses_groups_of_the_wrong_type() {
    // {"groups": ["ml-platform", 3]} and {"groups": {"a": 1}}
    let mut claims = claims();
    claims["groups"] = json!(["ml-platform", 3]);
    assert_eq!(refused(&mint_a(&claims)), malformed(Malformed::Groups));
    claims["groups"] = json!({"a": 1});
    assert_eq!(refused(&mint_a(&claims)), malformed(Malformed::Groups));
}

#[test]
fn claim_strings_reads_string_and_array_claims() {
    // {"team": "ml", "roles": ["reader", 5, "writer"], "level": 3}
    let mut claims = claims();
    claims["team"] = json!("ml");
    claims["roles"] = json!(["reader", 5, "writer"]);
    claims["level"] = json!(3);
    let verified = check(&mint_a(&claims)).unwrap();
    let p = &verified.principal;
    assert_eq!(p.claim_strings("team").collect::<Vec<_>>(), ["ml"]);
    assert_eq!(
        p.claim_strings("roles").collect::<Vec<_>>(),
        ["reader", "writer"]
    );
    assert_eq!(p.claim_strings("level").count(), 0);
    assert_eq!(p.claim_strings("absent").count(), 0);
}

// ---- algorithms ----------------------------------------------------------------------------

#[test]
fn refuses_alg_none() {
    // header {"alg":"none","kid":"rsa-a-1"}, base claims, empty signature
    let token = format!(
        "{}.{}.",
        b64(format!(r#"{{"alg":"none","kid":"{KID_RSA_A}"}}"#).as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let error = refused(&token);
    assert_eq!(
        (error.clone(), error.as_str()),
        (IdentityError::AlgorithmNotAllowed, "algorithm_not_allowed")
    );
    // Same with a casing variant and a copied RS256 signature.
    let genuine = mint_a(&claims());
    let signature = genuine.rsplit('.').next().unwrap();
    let token = format!(
        "{}.{}.{signature}",
        b64(format!(r#"{{"alg":"None","kid":"{KID_RSA_A}"}}"#).as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    assert_eq!(refused(&token), IdentityError::AlgorithmNotAllowed);
}

#[test]
fn refuses_hs256_signed_with_the_rsa_public_key() {
    // header {"alg":"HS256","kid":"rsa-a-1"}; HMAC key = A's public key PEM bytes (the classic
    // RS256 -> HS256 confusion)
    let message = format!(
        "{}.{}",
        b64(format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{KID_RSA_A}"}}"#).as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    policies::jose::ensure_provider();
    let hmac_key = jsonwebtoken::EncodingKey::from_secret(&fixture("rsa_a.pub.pem"));
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &hmac_key, Algorithm::HS256).unwrap();
    assert_eq!(
        refused(&format!("{message}.{signature}")),
        IdentityError::AlgorithmNotAllowed
    );
}

#[test]
fn refuses_alg_not_in_provider_list() {
    // PS256 by A's RSA key (the key itself has no alg, so only the provider list refuses it)
    let token = mint(Algorithm::PS256, "rsa_a.key.pem", KID_RSA_A, &claims());
    assert_eq!(refused(&token), IdentityError::AlgorithmNotAllowed);
}

#[test]
fn refuses_alg_the_key_is_not_pinned_to() {
    // provider allows RS256 and RS384; key rsa-a-1 published with "alg":"RS256"; token RS384
    let mut spec = provider_a();
    spec.algorithms = vec![Algorithm::RS256, Algorithm::RS384];
    let mut keys = KeySet::new(vec![spec]).unwrap();
    keys.set_keys("idp-a", jwks(vec![jwk("rsa_a", KID_RSA_A, Some("RS256"))]))
        .unwrap();
    let token = mint(Algorithm::RS384, "rsa_a.key.pem", KID_RSA_A, &claims());
    assert_eq!(
        verify(token.as_bytes(), &keys, NOW).unwrap_err(),
        IdentityError::AlgorithmNotAllowed
    );
    let token = mint(Algorithm::RS256, "rsa_a.key.pem", KID_RSA_A, &claims());
    assert!(verify(token.as_bytes(), &keys, NOW).is_ok());
}

#[test]
fn refuses_es256_header_on_an_rsa_key() {
    // header {"alg":"ES256","kid":"rsa-a-1"}, signed with the EC key: key family mismatch
    let header = format!(r#"{{"alg":"ES256","kid":"{KID_RSA_A}"}}"#);
    let token = mint_raw(
        Algorithm::ES256,
        "ec_p256.key.pem",
        &header,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), IdentityError::AlgorithmNotAllowed);
}

#[test]
fn refuses_hmac_algorithms_in_provider_config() {
    let mut spec = provider_a();
    spec.algorithms = vec![Algorithm::RS256, Algorithm::HS256];
    assert!(KeySet::new(vec![spec]).is_err());
}

// ---- keys ----------------------------------------------------------------------------------

#[test]
fn refuses_unknown_kid_naming_the_provider() {
    // header {"alg":"RS256","kid":"rsa-a-2"}: not in A's keys
    let token = mint(Algorithm::RS256, "rsa_a.key.pem", "rsa-a-2", &claims());
    let error = refused(&token);
    assert_eq!(
        error,
        IdentityError::UnknownKey {
            provider: "idp-a".to_owned()
        }
    );
    assert_eq!(error.as_str(), "unknown_key");
    assert!(!error.to_string().contains("rsa-a-2"));
}

#[test]
fn refuses_missing_kid() {
    // header {"alg":"RS256","typ":"JWT"}
    let token = mint_raw_a(r#"{"alg":"RS256","typ":"JWT"}"#, &claims().to_string());
    assert_eq!(refused(&token), malformed(Malformed::BadHeader("kid")));
}

#[test]
fn refuses_another_issuers_key_under_the_same_kid() {
    // A and B both publish kid "shared"; token claims iss A, kid "shared", signed with B's key
    let mut keys = KeySet::new(vec![provider_a(), provider_b()]).unwrap();
    keys.set_keys("idp-a", jwks(vec![jwk("rsa_a", "shared", None)]))
        .unwrap();
    keys.set_keys("idp-b", jwks(vec![jwk("rsa_b", "shared", None)]))
        .unwrap();
    let token = mint(Algorithm::RS256, "rsa_b.key.pem", "shared", &claims());
    assert_eq!(
        verify(token.as_bytes(), &keys, NOW).unwrap_err(),
        IdentityError::BadSignature
    );
}

#[test]
fn refuses_issuer_b_token_whose_kid_is_only_in_a() {
    // {"iss": B}, signed by B's key, header kid "rsa-a-1" (only in A's keys)
    let mut claims = claims();
    claims["iss"] = json!(ISS_B);
    let token = mint(Algorithm::RS256, "rsa_b.key.pem", KID_RSA_A, &claims);
    assert_eq!(
        refused(&token),
        IdentityError::UnknownKey {
            provider: "idp-b".to_owned()
        }
    );
}

// ---- signature -----------------------------------------------------------------------------

#[test]
fn refuses_tampered_payload() {
    // base claims re-encoded with sub "admin", original signature kept
    let genuine = mint_a(&claims());
    let mut parts = genuine.split('.');
    let (header, _, signature) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
    let mut claims = claims();
    claims["sub"] = json!("admin");
    let forged = format!(
        "{header}.{}.{signature}",
        b64(claims.to_string().as_bytes())
    );
    let error = refused(&forged);
    assert_eq!(
        (error.clone(), error.as_str()),
        (IdentityError::BadSignature, "bad_signature")
    );
}

#[test]
fn refuses_signature_by_another_key_of_the_same_type() {
    // kid rsa-a-1, signed with RSA key B
    let token = mint(Algorithm::RS256, "rsa_b.key.pem", KID_RSA_A, &claims());
    assert_eq!(refused(&token), IdentityError::BadSignature);
}

#[test]
fn refuses_empty_signature() {
    let genuine = mint_a(&claims());
    let unsigned = &genuine[..=genuine.rfind('.').unwrap()];
    assert_eq!(refused(unsigned), IdentityError::BadSignature);
}

// ---- shape and encoding --------------------------------------------------------------------

#[test]
fn refuses_jwe_shaped_token() {
    // five segments: header.encrypted_key.iv.ciphertext.tag
    let token = format!(
        "{}.{}.{}.{}.{}",
        b64(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
        b64(&[7; 256]),
        b64(&[1; 12]),
        b64(b"ciphertext"),
        b64(&[2; 16])
    );
    let error = refused(&token);
    assert_eq!(
        (error.clone(), error.as_str()),
        (malformed(Malformed::Shape), "malformed")
    );
}

#[test]
fn refuses_two_and_four_segment_tokens() {
    let genuine = mint_a(&claims());
    let two = &genuine[..genuine.rfind('.').unwrap()];
    assert_eq!(refused(two), malformed(Malformed::Shape));
    assert_eq!(
        refused(&format!("{genuine}.x")),
        malformed(Malformed::Shape)
    );
    assert_eq!(refused(&format!(".{genuine}")), malformed(Malformed::Shape));
}

#[test]
fn refuses_padded_base64() {
    // a valid token whose payload segment gets "=" padding appended
    let genuine = mint_a(&claims());
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    parts[1].push('=');
    assert_eq!(refused(&parts.join(".")), malformed(Malformed::Charset));
}

#[test]
fn refuses_standard_alphabet_characters() {
    // "-" and "_" of the signature swapped for "+" and "/"
    let genuine = mint_a(&claims());
    for (from, to) in [('-', "+"), ('_', "/")] {
        let (message, signature) = genuine.rsplit_once('.').unwrap();
        let mut signature = signature.to_owned();
        if !signature.contains(from) {
            signature.replace_range(0..1, to);
        }
        let altered = format!("{message}.{}", signature.replace(from, to));
        assert_eq!(refused(&altered), malformed(Malformed::Charset));
    }
}

#[test]
fn refuses_whitespace() {
    let genuine = mint_a(&claims());
    for altered in [
        format!(" {genuine}"),
        format!("{genuine}\n"),
        genuine.replacen('.', ". ", 1),
        format!("Bearer {genuine}"),
    ] {
        assert_eq!(refused(&altered), malformed(Malformed::Charset));
    }
}

#[test]
fn refuses_non_canonical_base64_trailing_bits() {
    // a 2-character final group must end in a character whose low 4 bits are zero
    let claims_b64 = b64(br#"{"a":1}"#); // "eyJhIjoxfQ": final "Q" = 16, low bits 0
    assert!(claims_b64.ends_with('Q'));
    let altered = format!("{}R", &claims_b64[..claims_b64.len() - 1]);
    let token = format!("{}.{altered}.c2ln", b64(header_a().as_bytes()));
    assert_eq!(refused(&token), malformed(Malformed::Base64));
}

#[test]
fn refuses_header_and_claims_that_are_not_objects() {
    let token = format!(
        "{}.{}.c2ln",
        b64(b"[1]"),
        b64(claims().to_string().as_bytes())
    );
    assert_eq!(refused(&token), malformed(Malformed::NotAnObject));
    let token = mint_raw_a(&header_a(), r#"["not","an","object"]"#);
    assert_eq!(refused(&token), malformed(Malformed::NotAnObject));
    let token = mint_raw_a(&header_a(), r#"{"iss":"#);
    assert_eq!(refused(&token), malformed(Malformed::Json));
}

#[test]
fn refuses_duplicate_exp_claim() {
    // {"iss":A,"aud":AUD,"sub":SUB,"exp":NOW-3600,"exp":NOW+600}: last-wins parsers would accept
    let claims = format!(
        r#"{{"iss":"{ISS_A}","aud":"{AUD}","sub":"{SUB}","exp":{},"exp":{}}}"#,
        NOW - 3600,
        NOW + 600
    );
    let error = refused(&mint_raw_a(&header_a(), &claims));
    assert_eq!(
        (error.clone(), error.as_str()),
        (malformed(Malformed::DuplicateMember), "malformed")
    );
}

#[test]
fn refuses_duplicate_sub_claim() {
    // {..., "sub":"alice", "sub":"admin"}
    let claims = format!(
        r#"{{"iss":"{ISS_A}","aud":"{AUD}","sub":"alice","sub":"admin","exp":{}}}"#,
        NOW + 600
    );
    assert_eq!(
        refused(&mint_raw_a(&header_a(), &claims)),
        malformed(Malformed::DuplicateMember)
    );
}

#[test]
fn refuses_duplicate_claim_spelled_with_an_escape() {
    // {..., "sub":"alice", "s\u0075b":"admin"}
    let claims = format!(
        r#"{{"iss":"{ISS_A}","aud":"{AUD}","sub":"alice","s\u0075b":"admin","exp":{}}}"#,
        NOW + 600
    );
    assert_eq!(
        refused(&mint_raw_a(&header_a(), &claims)),
        malformed(Malformed::DuplicateMember)
    );
}

#[test]
fn refuses_duplicate_custom_claim_nested() {
    // {..., "ext": {"role":"user","role":"admin"}}
    let claims = format!(
        r#"{{"iss":"{ISS_A}","aud":"{AUD}","sub":"{SUB}","exp":{},"ext":{{"role":"user","role":"admin"}}}}"#,
        NOW + 600
    );
    assert_eq!(
        refused(&mint_raw_a(&header_a(), &claims)),
        malformed(Malformed::DuplicateMember)
    );
}

#[test]
fn refuses_duplicate_header_keys() {
    // header {"alg":"RS256","alg":"RS256","kid":"rsa-a-1"}
    let header = format!(r#"{{"alg":"RS256","alg":"RS256","kid":"{KID_RSA_A}"}}"#);
    let token = mint_raw_a(&header, &claims().to_string());
    assert_eq!(refused(&token), malformed(Malformed::DuplicateMember));
}

/// A valid A token of exactly `len` bytes: base claims plus a "pad" claim. Lengths are computed
/// from the unsigned parts (RS256 signatures of a 2048-bit key are always 342 characters), and
/// the header's `typ` spelling varies because unpadded base64 never has length 4k+1.
fn token_of_len(len: usize) -> String {
    for typ in ["JWT", "at+jwt", "application/at+jwt"] {
        let header = format!(r#"{{"alg":"RS256","typ":"{typ}","kid":"{KID_RSA_A}"}}"#);
        for pad in 0..len {
            let mut claims = claims();
            claims["pad"] = json!("x".repeat(pad));
            let json = claims.to_string();
            let unsigned = b64(header.as_bytes()).len() + 1 + b64(json.as_bytes()).len();
            if unsigned + 1 + 342 == len {
                let token = mint_raw_a(&header, &json);
                assert_eq!(token.len(), len);
                return token;
            }
            if unsigned + 1 + 342 > len {
                break;
            }
        }
    }
    panic!("no token of {len} bytes");
}

#[test]
fn refuses_oversized_token_and_accepts_the_limit() {
    // base claims + a "pad" claim: exactly 8192 bytes is accepted, 8193 refused
    assert!(check(&token_of_len(8192)).is_ok());
    let error = refused(&token_of_len(8193));
    assert_eq!(
        (error.clone(), error.as_str()),
        (malformed(Malformed::TooLarge), "malformed")
    );
}

#[test]
fn refuses_token_over_the_selected_providers_own_cap() {
    // provider A capped at 1024 bytes, B at the default: the global cap is 8192, A's applies
    let mut spec = provider_a();
    spec.max_token_bytes = 1024;
    let keys = keyset_with(vec![spec, provider_b()]);
    let mut claims = claims();
    claims["pad"] = json!("x".repeat(1024));
    let error = verify(mint_a(&claims).as_bytes(), &keys, NOW).unwrap_err();
    assert_eq!(error, malformed(Malformed::TooLarge));
}

#[test]
fn refuses_empty_token() {
    assert_eq!(refused(""), malformed(Malformed::Empty));
}

// ---- header parameters ---------------------------------------------------------------------

fn with_header(extra: &str) -> String {
    let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{KID_RSA_A}",{extra}}}"#);
    mint_raw_a(&header, &claims().to_string())
}

#[test]
fn refuses_jku_header() {
    // header + "jku":"https://evil.example/jwks.json"
    let error = refused(&with_header(r#""jku":"https://evil.example/jwks.json""#));
    assert_eq!(error, malformed(Malformed::ForbiddenHeader("jku")));
}

#[test]
fn refuses_embedded_jwk_header() {
    // header + "jwk": A's own public key (self-signed key injection)
    let jwk = jwk("rsa_a", KID_RSA_A, None);
    let error = refused(&with_header(&format!(r#""jwk":{jwk}"#)));
    assert_eq!(error, malformed(Malformed::ForbiddenHeader("jwk")));
}

#[test]
fn refuses_crit_header() {
    // header + "crit":["exp-ext"], "exp-ext": true
    let error = refused(&with_header(r#""crit":["exp-ext"],"exp-ext":true"#));
    assert_eq!(error, malformed(Malformed::ForbiddenHeader("crit")));
}

#[test]
fn refuses_x5u_and_x5c_headers() {
    let error = refused(&with_header(r#""x5u":"https://evil.example/cert.pem""#));
    assert_eq!(error, malformed(Malformed::ForbiddenHeader("x5u")));
    let error = refused(&with_header(r#""x5c":["MIIB"]"#));
    assert_eq!(error, malformed(Malformed::ForbiddenHeader("x5c")));
}

#[test]
fn refuses_unexpected_typ() {
    for typ in [r#""dpop+jwt""#, r#""JWE""#, r#""""#, "1"] {
        let header = format!(r#"{{"alg":"RS256","typ":{typ},"kid":"{KID_RSA_A}"}}"#);
        let token = mint_raw_a(&header, &claims().to_string());
        assert_eq!(
            refused(&token),
            malformed(Malformed::BadHeader("typ")),
            "{typ}"
        );
    }
}

#[test]
fn refuses_registered_string_parameters_of_another_type() {
    // cty, x5t, x5t#S256, url and nonce are strings when present (null is as absent); a signed
    // token that gives one another type is malformed, whatever its signature.
    for name in ["cty", "x5t", "x5t#S256", "url", "nonce"] {
        for value in ["1", "true", "{}", r#"["a"]"#] {
            let token = with_header(&format!(r#""{name}":{value}"#));
            assert_eq!(
                refused(&token),
                malformed(Malformed::BadHeader(name)),
                "{name}: {value}"
            );
        }
        for value in [r#""text""#, "null"] {
            let token = with_header(&format!(r#""{name}":{value}"#));
            assert!(check(&token).is_ok(), "{name}: {value}");
        }
    }
}

#[test]
fn ignores_unknown_header_parameters_of_any_type() {
    // RFC 7515 §4: parameters we do not understand (and no `crit` names) are ignored; the
    // signature covers them.
    for extra in [r#""x-trace":1"#, r#""ext":{"a":[1,2]}"#, r#""note":null"#] {
        assert!(check(&with_header(extra)).is_ok(), "{extra}");
    }
}

#[test]
fn a_signature_over_another_header_or_payload_is_refused() {
    // The signature is checked over the header and payload as sent: swap either and it fails.
    let one = with_header(r#""cty":"a""#);
    let two = with_header(r#""cty":"b""#);
    let [h1, p1, s1]: [&str; 3] = one.split('.').collect::<Vec<_>>().try_into().unwrap();
    let [h2, _, s2]: [&str; 3] = two.split('.').collect::<Vec<_>>().try_into().unwrap();
    assert!(check(&one).is_ok() && check(&two).is_ok(), "control");
    assert_eq!(
        refused(&format!("{h2}.{p1}.{s1}")),
        IdentityError::BadSignature
    );
    assert_eq!(
        refused(&format!("{h1}.{p1}.{s2}")),
        IdentityError::BadSignature
    );
    let mut claims = claims();
    claims["sub"] = json!("someone-else");
    let other_payload = mint_a(&claims);
    let p3 = other_payload.split('.').nth(1).unwrap();
    assert_eq!(
        refused(&format!("{h1}.{p3}.{s1}")),
        IdentityError::BadSignature
    );
}

#[test]
fn refuses_non_string_alg() {
    let header = format!(r#"{{"alg":["RS256"],"kid":"{KID_RSA_A}"}}"#);
    let token = mint_raw_a(&header, &claims().to_string());
    assert_eq!(refused(&token), malformed(Malformed::BadHeader("alg")));
}

// ---- messages ------------------------------------------------------------------------------

#[test]
fn error_messages_carry_no_token_or_claim_values() {
    let mut claims = claims();
    claims["aud"] = json!("secret-audience-value");
    claims["sub"] = json!("secret-subject-value");
    let token = mint_a(&claims);
    let message = refused(&token).to_string();
    assert!(message.starts_with("bad_audience"), "{message}");
    for secret in [
        "secret-audience-value",
        "secret-subject-value",
        token.as_str(),
    ] {
        assert!(!message.contains(secret));
    }
}

#[test]
fn principal_debug_lists_claim_names_not_values() {
    let mut claims = claims();
    claims["email"] = json!("trainer@acme.example");
    let verified = check(&mint_a(&claims)).unwrap();
    let debug = format!("{:?}", verified.principal);
    assert!(
        debug.contains("email") && !debug.contains("trainer@acme.example"),
        "{debug}"
    );
}

#[test]
fn detail_codes_are_the_documented_ones() {
    let codes: Vec<&str> = [
        IdentityError::Expired,
        IdentityError::LifetimeTooLong,
        IdentityError::NotYetValid,
        IdentityError::IssuedInFuture,
        IdentityError::BadSignature,
        IdentityError::UnknownIssuer,
        IdentityError::BadAudience,
        IdentityError::AlgorithmNotAllowed,
        IdentityError::UnknownKey {
            provider: "p".to_owned(),
        },
        malformed(Malformed::TooLarge),
    ]
    .iter()
    .map(IdentityError::as_str)
    .collect();
    assert_eq!(
        codes,
        [
            "expired",
            "lifetime_too_long",
            "not_yet_valid",
            "not_yet_valid",
            "bad_signature",
            "unknown_issuer",
            "bad_audience",
            "algorithm_not_allowed",
            "unknown_key",
            "malformed"
        ]
    );
}

#[test]
fn provider_spec_defaults() {
    let spec = ProviderSpec::new(
        "p",
        "https://i",
        vec![AUD.to_owned()],
        vec![Algorithm::ES256],
    );
    assert_eq!(
        (
            spec.principal_claim.as_str(),
            spec.groups_claim.as_str(),
            spec.max_token_bytes
        ),
        ("sub", "groups", 8192)
    );
    assert_eq!((spec.leeway_seconds, spec.max_lifetime_seconds), (30, None));
}
