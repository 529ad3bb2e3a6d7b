//! Request-head checks (security.md §2).

use policies::request::{check_head, HeadInfo, HeaderError};
use policies::{Reason, RequestFacts};

const AUTHORITY: &[u8] = b"bedrock-runtime.us-east-1.amazonaws.com";
const IDENTITY: &str = "x-workload-identity";

/// A well-formed SDK-like head plus `extra` pairs.
fn head(method: &[u8], extra: &[(&'static str, &'static [u8])]) -> Result<HeadInfo, HeaderError> {
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":authority", AUTHORITY),
        (":method", b"POST"),
        (":path", b"/model/a.b/converse"),
        (":scheme", b"https"),
        (
            "authorization",
            b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request",
        ),
        ("x-amz-date", b"20250101T000000Z"),
        (IDENTITY, b"eyJhbGciOi.x.y"),
        ("content-type", b"application/json"),
        ("content-length", b"42"),
    ];
    headers.extend_from_slice(extra);
    let facts = RequestFacts {
        method,
        path: b"/model/a.b/converse",
        authority: AUTHORITY,
        scheme: b"https",
        headers: &headers,
        body: None,
        original_destination: None,
        caller: Default::default(),
        token: None,
    };
    check_head(&facts, IDENTITY)
}

fn post(extra: &[(&'static str, &'static [u8])]) -> Result<HeadInfo, HeaderError> {
    head(b"POST", extra)
}

fn reason(r: Result<HeadInfo, HeaderError>) -> Option<Reason> {
    r.err().map(|e| e.reason())
}

#[test]
fn accepts_a_signed_json_request_and_describes_its_body() {
    let info = post(&[]).unwrap();
    assert_eq!(
        info,
        HeadInfo {
            content_length: Some(42),
            content_type_json: true,
            content_type_error: None,
            content_encoding_identity: true
        }
    );
}

// ---------------------------------------------------------------- method, CONNECT, Upgrade

#[test]
fn refuses_connect() {
    assert_eq!(
        reason(head(b"CONNECT", &[])),
        Some(Reason::ConnectNotAllowed)
    );
}

#[test]
fn refuses_lowercase_or_mixed_case_method_as_header_invalid() {
    assert_eq!(reason(head(b"connect", &[])), Some(Reason::HeaderInvalid));
    assert_eq!(reason(head(b"Post", &[])), Some(Reason::HeaderInvalid));
}

#[test]
fn refuses_empty_or_non_letter_method() {
    for m in [&b""[..], b"POST ", b"PO-ST", b"G\xc9T", b"POST\0"] {
        assert_eq!(head(m, &[]), Err(HeaderError::MethodMalformed), "{m:?}");
    }
}

#[test]
fn accepts_any_uppercase_method_for_routing_to_judge() {
    assert!(head(b"GET", &[]).is_ok());
    assert!(head(b"PROPFIND", &[]).is_ok());
}

#[test]
fn refuses_upgrade_header_with_any_value() {
    assert_eq!(
        reason(post(&[("upgrade", b"h2c")])),
        Some(Reason::ConnectNotAllowed)
    );
    assert_eq!(
        reason(post(&[("upgrade", b"")])),
        Some(Reason::ConnectNotAllowed)
    );
}

#[test]
fn refuses_connection_header_naming_upgrade_in_any_case_or_position() {
    assert_eq!(
        reason(post(&[("connection", b"Upgrade")])),
        Some(Reason::ConnectNotAllowed)
    );
    assert_eq!(
        reason(post(&[("connection", b"keep-alive,\t UPGRADE ")])),
        Some(Reason::ConnectNotAllowed)
    );
}

#[test]
fn accepts_connection_header_without_the_upgrade_token() {
    assert!(post(&[("connection", b"keep-alive, upgraded")]).is_ok());
    assert!(post(&[("connection", b"close")]).is_ok());
}

// ---------------------------------------------------------------- duplicates

const SINGLE: [&str; 11] = [
    ":authority",
    "host",
    "authorization",
    "x-amz-security-token",
    "x-amz-date",
    "x-amz-content-sha256",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "x-api-key",
];

#[test]
fn refuses_every_security_relevant_header_twice_and_names_it() {
    for name in SINGLE {
        let value: &'static [u8] = if name == "host" || name == ":authority" {
            AUTHORITY
        } else {
            b"1"
        };
        let pairs = [(name, value), (name, value)];
        let err = post(&pairs).unwrap_err();
        assert_eq!(err, HeaderError::Duplicate(name.to_owned()), "{name}");
        assert_eq!(err.reason(), Reason::HeaderInvalid);
        assert_eq!(
            err.to_string(),
            format!("header {name} appears more than once")
        );
    }
}

#[test]
fn refuses_duplicate_authorization_with_identical_values() {
    let auth: &'static [u8] =
        b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request";
    assert_eq!(
        post(&[("authorization", auth)]),
        Err(HeaderError::Duplicate("authorization".into()))
    );
}

#[test]
fn refuses_duplicate_identity_header_and_names_it() {
    let err = post(&[(IDENTITY, b"other")]).unwrap_err();
    assert_eq!(err, HeaderError::Duplicate(IDENTITY.into()));
    assert!(!err.to_string().contains("other"));
}

#[test]
fn refuses_duplicate_pseudo_headers() {
    assert_eq!(
        post(&[(":path", b"/rerank")]),
        Err(HeaderError::Duplicate(":path".into()))
    );
    assert_eq!(
        post(&[(":method", b"POST")]),
        Err(HeaderError::Duplicate(":method".into()))
    );
}

#[test]
fn accepts_repeated_headers_that_carry_no_security_meaning() {
    assert!(post(&[
        ("accept", b"a"),
        ("accept", b"b"),
        ("user-agent", b"x"),
        ("user-agent", b"y")
    ])
    .is_ok());
}

#[test]
fn compares_header_names_without_case() {
    assert_eq!(
        post(&[("Authorization", b"x")]),
        Err(HeaderError::Duplicate("authorization".into()))
    );
}

#[test]
fn refuses_duplicate_of_configured_identity_header_written_in_other_case() {
    let headers: Vec<(&str, &[u8])> =
        vec![(":authority", AUTHORITY), ("x-id", b"a"), ("x-id", b"b")];
    let facts = RequestFacts {
        method: b"POST",
        authority: AUTHORITY,
        headers: &headers,
        ..Default::default()
    };
    assert_eq!(
        check_head(&facts, "X-Id"),
        Err(HeaderError::Duplicate("x-id".into()))
    );
}

// ---------------------------------------------------------------- destination

#[test]
fn refuses_host_that_differs_from_authority() {
    assert_eq!(
        reason(post(&[("host", b"evil.example")])),
        Some(Reason::DestinationNotPrivatelink)
    );
}

#[test]
fn accepts_host_equal_to_authority_in_other_case() {
    assert!(post(&[("host", b"Bedrock-Runtime.US-EAST-1.amazonaws.com")]).is_ok());
}

#[test]
fn refuses_host_with_trailing_dot_port_or_space() {
    for host in [
        &b"bedrock-runtime.us-east-1.amazonaws.com."[..],
        b"bedrock-runtime.us-east-1.amazonaws.com:443",
        b"bedrock-runtime.us-east-1.amazonaws.com ",
    ] {
        let headers: Vec<(&str, &[u8])> = vec![("host", host)];
        let facts = RequestFacts {
            method: b"POST",
            authority: AUTHORITY,
            headers: &headers,
            ..Default::default()
        };
        assert_eq!(check_head(&facts, IDENTITY), Err(HeaderError::HostMismatch));
    }
}

#[test]
fn refuses_authority_pair_that_differs_from_the_facts() {
    let headers: Vec<(&str, &[u8])> = vec![(":authority", b"evil.example")];
    let facts = RequestFacts {
        method: b"POST",
        authority: AUTHORITY,
        headers: &headers,
        ..Default::default()
    };
    assert_eq!(check_head(&facts, IDENTITY), Err(HeaderError::HostMismatch));
}

#[test]
fn refuses_empty_authority() {
    let facts = RequestFacts {
        method: b"POST",
        authority: b"",
        ..Default::default()
    };
    assert_eq!(
        reason(check_head(&facts, IDENTITY)),
        Some(Reason::DestinationNotPrivatelink)
    );
}

#[test]
fn refuses_non_utf8_host_as_a_mismatch_without_panicking() {
    assert_eq!(
        post(&[("host", b"\xc0\xa7")]),
        Err(HeaderError::HostMismatch)
    );
}

// ---------------------------------------------------------------- arbitrary values

#[test]
fn accepts_non_utf8_value_in_an_unrelated_header() {
    assert!(post(&[("user-agent", b"\xc0\xa7"), ("x-custom", b"\xa1\xb1\xff\0")]).is_ok());
}

// ---------------------------------------------------------------- content-length

fn with_length(value: &'static [u8]) -> Result<HeadInfo, HeaderError> {
    let headers: Vec<(&str, &[u8])> = vec![("content-length", value)];
    let facts = RequestFacts {
        method: b"POST",
        authority: AUTHORITY,
        headers: &headers,
        ..Default::default()
    };
    check_head(&facts, IDENTITY)
}

#[test]
fn refuses_content_length_garbage() {
    for v in [
        &b""[..],
        b"abc",
        b"-1",
        b"+5",
        b" 5",
        b"5 ",
        b"1e3",
        b"0x10",
        b"\xef\xbc\x91",
        b"18446744073709551616",
    ] {
        assert_eq!(
            with_length(v),
            Err(HeaderError::ContentLengthInvalid),
            "{v:?}"
        );
    }
    // A comma means the HTTP/1 codec folded two content-length headers into one.
    assert_eq!(
        with_length(b"1,2"),
        Err(HeaderError::Duplicate("content-length".into()))
    );
}

#[test]
fn accepts_content_length_up_to_u64_max() {
    assert_eq!(with_length(b"0").unwrap().content_length, Some(0));
    assert_eq!(with_length(b"007").unwrap().content_length, Some(7));
    assert_eq!(
        with_length(b"18446744073709551615").unwrap().content_length,
        Some(u64::MAX)
    );
}

#[test]
fn reports_absent_content_length_as_none() {
    let facts = RequestFacts {
        method: b"POST",
        authority: AUTHORITY,
        ..Default::default()
    };
    assert_eq!(check_head(&facts, IDENTITY).unwrap().content_length, None);
}

// ---------------------------------------------------------------- content-type, content-encoding

fn info(name: &'static str, value: &'static [u8]) -> HeadInfo {
    let headers: Vec<(&str, &[u8])> = vec![(name, value)];
    let facts = RequestFacts {
        method: b"POST",
        authority: AUTHORITY,
        headers: &headers,
        ..Default::default()
    };
    check_head(&facts, IDENTITY).unwrap()
}

#[test]
fn recognises_json_media_type_with_parameters_and_any_case() {
    for v in [
        &b"application/json"[..],
        b"Application/JSON",
        b"application/json; charset=utf-8",
        b" \tapplication/json\t ; charset=UTF-8",
    ] {
        assert!(info("content-type", v).content_type_json, "{v:?}");
    }
}

#[test]
fn refuses_near_miss_media_types_as_not_json() {
    for v in [
        &b"application/jsonx"[..],
        b"application/json-seq",
        b"text/json",
        b"application/x-amz-json-1.1",
        b"application/json\xff",
        b"",
        b"application/ json",
        b"application/json;x",
    ] {
        assert!(!info("content-type", v).content_type_json, "{v:?}");
    }
    let facts = RequestFacts {
        method: b"POST",
        authority: AUTHORITY,
        ..Default::default()
    };
    assert!(!check_head(&facts, IDENTITY).unwrap().content_type_json);
}

#[test]
fn treats_absent_or_identity_content_encoding_as_identity() {
    assert!(post(&[]).unwrap().content_encoding_identity);
    assert!(info("content-encoding", b"identity").content_encoding_identity);
    assert!(info("content-encoding", b"IDENTITY").content_encoding_identity);
}

#[test]
fn treats_any_other_content_encoding_as_not_identity() {
    for v in [&b"gzip"[..], b"identity, gzip", b"", b" identity", b"br"] {
        assert!(
            !info("content-encoding", v).content_encoding_identity,
            "{v:?}"
        );
    }
}

#[test]
fn refuses_content_type_folded_by_the_http1_codec() {
    // Envoy's HTTP/1 codec joins a repeated header into one comma-separated value.
    let headers = [("content-type", &b"application/json,text/plain"[..])];
    let facts = policies::RequestFacts {
        method: b"POST",
        path: b"/openai/v1/chat/completions",
        authority: b"bedrock-runtime.us-east-1.amazonaws.com",
        headers: &headers,
        ..Default::default()
    };
    let err = policies::request::check_head(&facts, "x-workload-identity").unwrap_err();
    assert_eq!(err.reason(), policies::Reason::HeaderInvalid);
}

#[test]
fn refuses_identity_header_folded_by_the_http1_codec() {
    let headers = [("x-workload-identity", &b"a.b.c,d.e.f"[..])];
    let facts = policies::RequestFacts {
        method: b"POST",
        path: b"/model/x.y/converse",
        authority: b"bedrock-runtime.us-east-1.amazonaws.com",
        headers: &headers,
        ..Default::default()
    };
    let err = policies::request::check_head(&facts, "x-workload-identity").unwrap_err();
    assert_eq!(err.reason(), policies::Reason::HeaderInvalid);
}
