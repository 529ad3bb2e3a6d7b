//! Credential detection: the SigV4 `Authorization` header (strict parse, scope only),
//! Bedrock API keys in `Authorization: Bearer` and `x-api-key`, and everything malformed.

use policies::credentials::{
    detect, parse_api_key, parse_authorization, parse_sigv4, ApiKeyKind, Credential,
    CredentialError, SigV4Scope, TokenHeader,
};

const SIG: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
const SCOPE: &str = "AKIAIOSFODNN7EXAMPLE/20250830/us-east-1/bedrock/aws4_request";
const SIGNED: &str = "content-type;host;x-amz-date;x-amz-security-token";
const SHORT_KEY: &str =
    "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29tLz9BY3Rpb249Q2FsbFdpdGhCZWFyZXJUb2tlbg==";
const LONG_KEY: &str = "ABSKQmVkcm9ja0FQSUtleS1hYmNkLWF0LTEyMzQ1Njc4OTAxMjpzZWNyZXQ=";

/// botocore's shape: parameters joined with `, `.
fn botocore(scope: &str, signed: &str, sig: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={sig}")
}

fn scope_of(header: &str) -> SigV4Scope<'_> {
    match parse_authorization(header.as_bytes()) {
        Credential::SigV4(scope) => scope,
        other => panic!("expected SigV4, got {other:?} for {header}"),
    }
}

#[track_caller]
fn malformed(header: &str, expected: CredentialError) {
    assert_eq!(
        parse_authorization(header.as_bytes()),
        Credential::Malformed(expected),
        "{header}"
    );
}

// ---- SigV4 ---------------------------------------------------------------------------------

#[test]
fn botocore_shaped_header_with_comma_space() {
    let header = botocore(SCOPE, SIGNED, SIG);
    let scope = scope_of(&header);
    assert_eq!(scope.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(scope.date, "20250830");
    assert_eq!(scope.region, "us-east-1");
    assert_eq!(scope.service, "bedrock");
    assert_eq!(
        scope.signed_headers().collect::<Vec<_>>(),
        ["content-type", "host", "x-amz-date", "x-amz-security-token"]
    );
    assert!(scope.signs("host"));
    assert!(scope.signs("X-Amz-Date"));
    assert!(!scope.signs("x-amz"));
}

#[test]
fn header_with_bare_commas() {
    let header =
        format!("AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders={SIGNED},Signature={SIG}");
    assert_eq!(scope_of(&header).region, "us-east-1");
}

#[test]
fn parameters_in_any_order_and_mixed_separators() {
    let header = format!("AWS4-HMAC-SHA256 Signature={SIG},SignedHeaders=host, Credential={SCOPE}");
    let scope = scope_of(&header);
    assert_eq!(scope.signed_headers, "host");
}

#[test]
fn the_scope_never_carries_the_signature() {
    let header = botocore(SCOPE, SIGNED, SIG);
    let debug = format!("{:?}", parse_authorization(header.as_bytes()));
    assert!(!debug.contains(SIG), "{debug}");
    assert!(!debug.contains("Signature"), "{debug}");
}

#[test]
fn mantle_and_other_services_and_regions_parse() {
    let scope = SCOPE
        .replace("/bedrock/", "/bedrock-mantle/")
        .replace("us-east-1", "us-gov-west-1");
    let header = botocore(&scope, "host", SIG);
    let parsed = scope_of(&header);
    assert_eq!(
        (parsed.region, parsed.service),
        ("us-gov-west-1", "bedrock-mantle")
    );
    let short_akid = botocore(
        "AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request",
        "host",
        SIG,
    );
    assert_eq!(scope_of(&short_akid).access_key_id, "AKIDEXAMPLE");
}

#[test]
fn missing_parameters_are_malformed() {
    malformed(
        &format!("AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={SIGNED}"),
        CredentialError::SigV4MissingSignature,
    );
    malformed(
        &format!("AWS4-HMAC-SHA256 Credential={SCOPE}, Signature={SIG}"),
        CredentialError::SigV4MissingSignedHeaders,
    );
    malformed(
        &format!("AWS4-HMAC-SHA256 SignedHeaders={SIGNED}, Signature={SIG}"),
        CredentialError::SigV4MissingCredential,
    );
}

#[test]
fn repeated_parameters_are_malformed() {
    let other = SCOPE.replace("us-east-1", "us-west-2");
    malformed(
        &format!("AWS4-HMAC-SHA256 Credential={SCOPE}, Credential={other}, SignedHeaders=host, Signature={SIG}"),
        CredentialError::SigV4RepeatedParameter,
    );
    malformed(
        &format!("AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=host, Signature={SIG}, Signature={SIG}"),
        CredentialError::SigV4RepeatedParameter,
    );
}

#[test]
fn unknown_or_misspelt_parameters_are_malformed() {
    for extra in ["Foo=bar", "credential=x", "Signature", "Region=us-east-1"] {
        malformed(
            &format!("{}, {extra}", botocore(SCOPE, SIGNED, SIG)),
            CredentialError::SigV4UnknownParameter,
        );
    }
}

#[test]
fn bad_separators_are_malformed() {
    for header in [
        format!("AWS4-HMAC-SHA256  Credential={SCOPE}, SignedHeaders=host, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 Credential={SCOPE},  SignedHeaders=host, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 Credential={SCOPE} ,SignedHeaders=host, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=host, Signature={SIG},"),
        format!("AWS4-HMAC-SHA256 Credential={SCOPE},, SignedHeaders=host, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=host, Signature={SIG} "),
    ] {
        malformed(&header, CredentialError::SigV4Separator);
    }
}

#[test]
fn algorithm_must_be_written_exactly() {
    for header in [
        format!("aws4-hmac-sha256 Credential={SCOPE}, SignedHeaders=host, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256,Credential={SCOPE}, SignedHeaders=host, Signature={SIG}"),
        "AWS4-HMAC-SHA256".to_string(),
    ] {
        let c = parse_authorization(header.as_bytes());
        assert!(matches!(c, Credential::Malformed(_)), "{header}: {c:?}");
    }
    malformed(
        &format!("aws4-hmac-sha256 Credential={SCOPE}, SignedHeaders=host, Signature={SIG}"),
        CredentialError::SigV4Algorithm,
    );
}

#[test]
fn malformed_credential_scopes() {
    for scope in [
        "AKIAIOSFODNN7EXAMPLE/20250830/us-east-1/bedrock",
        "AKIAIOSFODNN7EXAMPLE/20250830/us-east-1/bedrock/aws4_request/x",
        "AKIAIOSFODNN7EXAMPLE/20250830/us-east-1/bedrock/aws4_requesT",
        "/20250830/us-east-1/bedrock/aws4_request",
        "AKIA-IOSFODNN7/20250830/us-east-1/bedrock/aws4_request",
        "AKIAIOSFODNN7EXAMPLE/2025083/us-east-1/bedrock/aws4_request",
        "AKIAIOSFODNN7EXAMPLE/20251330/us-east-1/bedrock/aws4_request",
        "AKIAIOSFODNN7EXAMPLE/20250800/us-east-1/bedrock/aws4_request",
        "AKIAIOSFODNN7EXAMPLE/2025+830/us-east-1/bedrock/aws4_request",
        "AKIAIOSFODNN7EXAMPLE/20250830/us-east/bedrock/aws4_request",
        "AKIAIOSFODNN7EXAMPLE/20250830/US-EAST-1/bedrock/aws4_request",
        "AKIAIOSFODNN7EXAMPLE/20250830/us-east-1/Bedrock/aws4_request",
        "AKIAIOSFODNN7EXAMPLE/20250830/us-east-1//aws4_request",
    ] {
        malformed(
            &botocore(scope, "host", SIG),
            CredentialError::SigV4CredentialScope,
        );
    }
}

#[test]
fn malformed_signed_headers_and_signature() {
    for signed in [
        "",
        "host;",
        ";host",
        "Host",
        "host;x amz",
        "host;x-amz-date;",
    ] {
        let header =
            format!("AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders={signed},Signature={SIG}");
        let c = parse_authorization(header.as_bytes());
        assert!(matches!(c, Credential::Malformed(_)), "{signed:?}: {c:?}");
    }
    malformed(
        &botocore(SCOPE, "host;", SIG),
        CredentialError::SigV4SignedHeaders,
    );
    for sig in [
        &SIG[..63],
        &SIG.to_ascii_uppercase(),
        &format!("{SIG}0"),
        "zz",
    ] {
        malformed(
            &botocore(SCOPE, "host", sig),
            CredentialError::SigV4Signature,
        );
    }
}

#[test]
fn non_ascii_and_control_bytes_are_malformed() {
    let mut header = botocore(SCOPE, "host", SIG).into_bytes();
    header.push(b'\t');
    assert_eq!(
        parse_authorization(&header),
        Credential::Malformed(CredentialError::Character)
    );
    assert_eq!(
        parse_sigv4(b"AWS4-HMAC-SHA256 Credential=\xc3\xa9"),
        Err(CredentialError::Character)
    );
}

// ---- bearer tokens and API keys ------------------------------------------------------------

#[test]
fn short_and_long_term_keys_in_authorization() {
    assert_eq!(
        parse_authorization(format!("Bearer {SHORT_KEY}").as_bytes()),
        Credential::ApiKey {
            kind: ApiKeyKind::ShortTerm,
            header: TokenHeader::Authorization
        }
    );
    assert_eq!(
        parse_authorization(format!("bearer {LONG_KEY}").as_bytes()),
        Credential::ApiKey {
            kind: ApiKeyKind::LongTerm,
            header: TokenHeader::Authorization
        }
    );
    assert_eq!(
        ApiKeyKind::ShortTerm.describe(),
        "short-term Bedrock API key"
    );
    assert_eq!(ApiKeyKind::LongTerm.describe(), "long-term Bedrock API key");
}

#[test]
fn keys_in_x_api_key() {
    assert_eq!(
        parse_api_key(SHORT_KEY.as_bytes()),
        Credential::ApiKey {
            kind: ApiKeyKind::ShortTerm,
            header: TokenHeader::XApiKey
        }
    );
    assert_eq!(
        parse_api_key(LONG_KEY.as_bytes()),
        Credential::ApiKey {
            kind: ApiKeyKind::LongTerm,
            header: TokenHeader::XApiKey
        }
    );
    assert_eq!(
        parse_api_key(b"sk-ant-something"),
        Credential::UnknownBearer {
            header: TokenHeader::XApiKey
        }
    );
    for bad in [&b""[..], b" key", b"key ", b"a\tb", b"\xffkey"] {
        assert_eq!(
            parse_api_key(bad),
            Credential::Malformed(CredentialError::ApiKeyValue),
            "{bad:?}"
        );
    }
}

#[test]
fn key_prefix_near_misses_are_unknown_bearers() {
    for token in [
        "bedrock-api-key",
        "Bedrock-api-key-YmVk",
        "bedrock-api-keyYmVk",
        "absk0123",
        "ABS",
        "xABSK0123",
        "eyJhbGciOiJSUzI1NiJ9.e30.sig",
    ] {
        assert_eq!(
            parse_authorization(format!("Bearer {token}").as_bytes()),
            Credential::UnknownBearer {
                header: TokenHeader::Authorization
            },
            "{token}"
        );
    }
}

#[test]
fn malformed_bearer_and_unknown_schemes() {
    for header in [
        "Bearer",
        "Bearer ",
        "Bearer  key",
        "Bearer key extra",
        "Bearer\tkey",
    ] {
        let c = parse_authorization(header.as_bytes());
        assert!(matches!(c, Credential::Malformed(_)), "{header:?}: {c:?}");
    }
    malformed("Bearer ", CredentialError::BearerToken);
    for header in [
        "",
        "Basic dXNlcjpwdw==",
        "AWS AKID:sig",
        "AWS4-ECDSA-P256-SHA256 Credential=x",
        "Bearerkey",
    ] {
        malformed(header, CredentialError::UnknownScheme);
    }
}

#[test]
fn debug_output_never_contains_the_key() {
    let header = format!("Bearer {LONG_KEY}");
    let c = parse_authorization(header.as_bytes());
    let debug = format!("{c:?}");
    assert!(
        !debug.contains(LONG_KEY) && !debug.contains("ABSK"),
        "{debug}"
    );
}

// ---- detect over the header map ------------------------------------------------------------

#[test]
fn detect_reads_authorization_and_x_api_key() {
    let sig = botocore(SCOPE, "host", SIG);
    let headers: [(&str, &[u8]); 2] = [
        ("content-type", b"application/json"),
        ("authorization", sig.as_bytes()),
    ];
    assert!(matches!(
        detect(&headers, "x-workload-identity"),
        Credential::SigV4(_)
    ));
    let headers: [(&str, &[u8]); 1] = [("x-api-key", SHORT_KEY.as_bytes())];
    assert!(matches!(
        detect(&headers, "x-workload-identity"),
        Credential::ApiKey {
            kind: ApiKeyKind::ShortTerm,
            header: TokenHeader::XApiKey
        }
    ));
    assert_eq!(detect(&[], "x-workload-identity"), Credential::None);
}

#[test]
fn detect_skips_authorization_when_it_is_the_identity_header() {
    let headers: [(&str, &[u8]); 1] = [("authorization", b"Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig")];
    assert_eq!(detect(&headers, "authorization"), Credential::None);
    let headers: [(&str, &[u8]); 2] = [
        ("authorization", b"Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"),
        ("x-api-key", LONG_KEY.as_bytes()),
    ];
    assert!(matches!(
        detect(&headers, "authorization"),
        Credential::ApiKey {
            kind: ApiKeyKind::LongTerm,
            ..
        }
    ));
}

#[test]
fn detect_refuses_two_credentials_and_repeats() {
    let sig = botocore(SCOPE, "host", SIG);
    let headers: [(&str, &[u8]); 2] = [
        ("authorization", sig.as_bytes()),
        ("x-api-key", SHORT_KEY.as_bytes()),
    ];
    assert_eq!(
        detect(&headers, "x-workload-identity"),
        Credential::Malformed(CredentialError::TwoCredentials)
    );
    let headers: [(&str, &[u8]); 2] = [("x-api-key", b"a"), ("X-Api-Key", b"b")];
    assert_eq!(
        detect(&headers, "x-workload-identity"),
        Credential::Malformed(CredentialError::Repeated)
    );
}

#[test]
fn error_texts_are_fixed_and_distinct() {
    let all = [
        CredentialError::Character,
        CredentialError::UnknownScheme,
        CredentialError::SigV4Algorithm,
        CredentialError::SigV4Separator,
        CredentialError::SigV4UnknownParameter,
        CredentialError::SigV4RepeatedParameter,
        CredentialError::SigV4MissingCredential,
        CredentialError::SigV4MissingSignedHeaders,
        CredentialError::SigV4MissingSignature,
        CredentialError::SigV4CredentialScope,
        CredentialError::SigV4SignedHeaders,
        CredentialError::SigV4Signature,
        CredentialError::BearerToken,
        CredentialError::ApiKeyValue,
        CredentialError::TwoCredentials,
        CredentialError::Repeated,
    ];
    let texts: std::collections::HashSet<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(texts.len(), all.len());
}
