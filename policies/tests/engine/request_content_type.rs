//! The `content-type` of body-carried operations (issue 9, item 7).
//!
//! The engine reads a body-carried operation's body as UTF-8 JSON, so the request must declare
//! exactly that: `application/json`, optionally `; charset=utf-8`. Any other media type or
//! charset, and any spelling a parser could read another way (quoted, repeated, extra
//! parameters), is `body_unparseable` before the body is read, with a detail naming the
//! problem. Path-carried operations do not read the body and are not affected.

use policies::request::{check_head, json_content_type, ContentTypeError};
use policies::{
    decide, evaluate_head, CompiledPolicy, Decision, HeadOutcome, Operation, Reason, RequestFacts,
};
use serde_json::json;

use ContentTypeError as E;

const RUNTIME: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const AGENT: &str = "bedrock-agent-runtime.us-east-1.amazonaws.com";
const MODEL: &str = "openai.gpt-oss-20b-1:0";

fn policy() -> CompiledPolicy {
    let bundle = json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": { "name": "content-type", "revision": "1" },
        "endpoints": [
            { "host": RUNTIME, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] },
            { "host": AGENT, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] }
        ],
        "rules": [
            { "id": "chat", "effect": "allow", "models": [MODEL],
              "operations": ["ChatCompletions", "Converse"] }
        ]
    });
    CompiledPolicy::from_json(bundle.to_string().as_bytes()).expect("test bundle compiles")
}

// ---------------------------------------------------------------- the header value alone

/// Every spelling that is accepted: what botocore sends for every restJson1 body-carried
/// operation (`application/json`), and the `charset=utf-8` common HTTP clients add.
const ACCEPTED: &[&[u8]] = &[
    b"application/json",
    b"Application/JSON",
    b"APPLICATION/JSON",
    b"application/json; charset=utf-8",
    b"application/json;charset=utf-8",
    b"application/json; charset=UTF-8",
    b"application/json; Charset=Utf-8",
    b"application/json ;\tcharset=utf-8",
    b" application/json ",
    b"\tapplication/json\t; charset=utf-8 ",
    // RFC 9110 allows empty parameters; they carry nothing.
    b"application/json;",
    b"application/json; ; charset=utf-8;",
];

#[test]
fn accepts_application_json_with_at_most_a_utf8_charset() {
    for v in ACCEPTED {
        assert_eq!(
            json_content_type(Some(v)),
            Ok(()),
            "{}",
            String::from_utf8_lossy(v)
        );
    }
}

/// Every refused class, with the error it must give.
const REFUSED: &[(&[u8], ContentTypeError)] = &[
    // not JSON at all
    (b"text/plain", E::NotApplicationJson),
    (b"text/plain; charset=utf-8", E::NotApplicationJson),
    (b"application/x-www-form-urlencoded", E::NotApplicationJson),
    (b"application/octet-stream", E::NotApplicationJson),
    (b"", E::NotApplicationJson),
    (b" ", E::NotApplicationJson),
    // near misses of JSON: other media types a parser may read differently
    (b"text/json", E::NotApplicationJson),
    (b"application/jsonx", E::NotApplicationJson),
    (b"application/json-patch+json", E::NotApplicationJson),
    (b"application/merge-patch+json", E::NotApplicationJson),
    (b"application/json-seq", E::NotApplicationJson),
    (b"application/ld+json", E::NotApplicationJson),
    (b"application/x-amz-json-1.1", E::NotApplicationJson),
    (b"application/x-amz-json-1.0", E::NotApplicationJson),
    (b"application/*", E::NotApplicationJson),
    (b"*/*", E::NotApplicationJson),
    (b"application/ json", E::NotApplicationJson),
    (b"application /json", E::NotApplicationJson),
    (b"application/json\xff", E::NotApplicationJson),
    (b"application/json\x00", E::NotApplicationJson),
    (b"application/json charset=utf-8", E::NotApplicationJson),
    // another charset: the upstream could decode the bytes differently
    (b"application/json; charset=utf-16", E::CharsetNotUtf8),
    (b"application/json;charset=utf-16", E::CharsetNotUtf8),
    (b"application/json; charset=UTF-16LE", E::CharsetNotUtf8),
    (b"application/json; charset=utf-16be", E::CharsetNotUtf8),
    (b"application/json; charset=utf-32", E::CharsetNotUtf8),
    (b"application/json; charset=latin1", E::CharsetNotUtf8),
    (b"application/json; charset=iso-8859-1", E::CharsetNotUtf8),
    (b"application/json; charset=windows-1252", E::CharsetNotUtf8),
    (b"application/json; charset=us-ascii", E::CharsetNotUtf8),
    (b"application/json; charset=utf-7", E::CharsetNotUtf8),
    (b"application/json; charset=utf8", E::CharsetNotUtf8),
    (b"application/json; charset=utf-8x", E::CharsetNotUtf8),
    (b"application/json; charset=cp65001", E::CharsetNotUtf8),
    // quoted: equivalent by RFC 9110, but not to every reader, and no client sends it
    (b"application/json; charset=\"utf-8\"", E::CharsetQuoted),
    (b"application/json; charset=\"utf-16\"", E::CharsetQuoted),
    (b"application/json; charset=\"utf-8;x\"", E::CharsetQuoted),
    // repeated: which one wins is up to the reader
    (
        b"application/json; charset=utf-8; charset=utf-16",
        E::CharsetRepeated,
    ),
    (
        b"application/json; charset=utf-8; charset=utf-8",
        E::CharsetRepeated,
    ),
    (
        b"application/json; charset=utf-8; CHARSET=utf-8",
        E::CharsetRepeated,
    ),
    (
        b"application/json; charset=utf-16; charset=utf-8",
        E::CharsetNotUtf8,
    ),
    // other parameters: application/json defines none
    (b"application/json; foo=bar", E::UnknownParameter),
    (
        b"application/json; charset=utf-8; foo=bar",
        E::UnknownParameter,
    ),
    (b"application/json; encoding=utf-16", E::UnknownParameter),
    (b"application/json; charset*=utf-8''x", E::UnknownParameter),
    (b"application/json; boundary=x", E::UnknownParameter),
    (b"application/json; version=1", E::UnknownParameter),
    // malformed parameters
    (b"application/json;x", E::MalformedParameter),
    (b"application/json; charset", E::MalformedParameter),
    (b"application/json; charset=", E::MalformedParameter),
    (b"application/json; charset = utf-8", E::MalformedParameter),
    (b"application/json; charset =utf-8", E::MalformedParameter),
    (b"application/json; charset= utf-8", E::MalformedParameter),
    (b"application/json; =utf-8", E::MalformedParameter),
    (b"application/json; charset=utf 8", E::MalformedParameter),
    (
        b"application/json; charset=utf-8\xff",
        E::MalformedParameter,
    ),
    (
        b"application/json; chars\xc3\xa9t=utf-8",
        E::MalformedParameter,
    ),
];

#[test]
fn refuses_every_other_media_type_charset_and_parameter_with_its_own_error() {
    for (v, expected) in REFUSED {
        assert_eq!(
            json_content_type(Some(v)),
            Err(*expected),
            "{}",
            String::from_utf8_lossy(v)
        );
    }
}

#[test]
fn a_missing_content_type_is_its_own_error() {
    assert_eq!(json_content_type(None), Err(E::Missing));
}

#[test]
fn every_error_names_content_type_and_what_to_send() {
    for (_, e) in REFUSED {
        let text = e.to_string();
        assert!(text.starts_with("content-type "), "{text}");
    }
    assert_eq!(
        E::CharsetNotUtf8.to_string(),
        "content-type charset must be utf-8: the body is read as UTF-8 JSON"
    );
    assert!(E::Missing.to_string().contains("application/json"));
}

// ---------------------------------------------------------------- check_head's description

fn head_with(content_type: Option<&[u8]>) -> policies::request::HeadInfo {
    let headers: Vec<(&str, &[u8])> = content_type
        .map(|v| ("content-type", v))
        .into_iter()
        .collect();
    let facts = RequestFacts {
        method: b"POST",
        path: b"/openai/v1/chat/completions",
        authority: RUNTIME.as_bytes(),
        headers: &headers,
        ..Default::default()
    };
    check_head(&facts, "x-workload-identity").expect("head is well-formed")
}

#[test]
fn check_head_describes_the_content_type_consistently() {
    for v in ACCEPTED {
        let info = head_with(Some(v));
        assert!(info.content_type_json);
        assert_eq!(info.content_type_error, None);
        assert_eq!(info.content_type_refusal(), None);
    }
    for (v, expected) in REFUSED {
        // A comma would be read as a folded repeat (header_invalid) before this check.
        if v.contains(&b',') {
            continue;
        }
        let info = head_with(Some(v));
        assert!(!info.content_type_json, "{}", String::from_utf8_lossy(v));
        assert_eq!(info.content_type_error, Some(*expected));
        assert_eq!(info.content_type_refusal(), Some(*expected));
    }
    let info = head_with(None);
    assert!(!info.content_type_json);
    assert_eq!(info.content_type_refusal(), Some(E::Missing));
}

// ---------------------------------------------------------------- the engine

/// One request, as the proxy hands it in.
fn request(
    op_path: &str,
    authority: &str,
    content_type: Option<&[u8]>,
    body: &[u8],
    policy: &CompiledPolicy,
) -> (HeadOutcome, Decision) {
    let length = body.len().to_string();
    let mut headers: Vec<(&str, &[u8])> = vec![("content-length", length.as_bytes())];
    if let Some(v) = content_type {
        headers.push(("content-type", v));
    }
    let facts = RequestFacts {
        method: b"POST",
        path: op_path.as_bytes(),
        authority: authority.as_bytes(),
        headers: &headers,
        body: Some(body),
        ..Default::default()
    };
    (evaluate_head(policy, &facts), decide(policy, &facts))
}

const CHAT: &str = "/openai/v1/chat/completions";

fn chat_body() -> Vec<u8> {
    format!(r#"{{"model":"{MODEL}","messages":[]}}"#).into_bytes()
}

#[test]
fn an_allowed_chat_request_with_an_accepted_content_type_goes_on_to_its_body() {
    let p = policy();
    for v in ACCEPTED {
        let (head, d) = request(CHAT, RUNTIME, Some(v), &chat_body(), &p);
        assert!(
            matches!(head, HeadOutcome::NeedBody(_)),
            "{}: {head:?}",
            String::from_utf8_lossy(v)
        );
        assert_eq!(
            d.reason,
            Reason::Allowed,
            "{}: {d:?}",
            String::from_utf8_lossy(v)
        );
    }
}

#[test]
fn a_refused_content_type_is_body_unparseable_before_the_body_is_read() {
    let p = policy();
    for (v, expected) in REFUSED.iter().filter(|(v, _)| !v.contains(&b',')) {
        let (head, _) = request(CHAT, RUNTIME, Some(v), &chat_body(), &p);
        let HeadOutcome::Decided(d) = head else {
            panic!("{}: the body would be read", String::from_utf8_lossy(v));
        };
        assert_eq!(d.reason, Reason::BodyUnparseable, "{d:?}");
        assert_eq!(d.detail, expected.to_string());
        assert_eq!(d.operation, Some(Operation::ChatCompletions));
    }
    let (head, _) = request(CHAT, RUNTIME, None, &chat_body(), &p);
    let HeadOutcome::Decided(d) = head else {
        panic!("no content-type: the body would be read");
    };
    assert_eq!(d.reason, Reason::BodyUnparseable);
    assert_eq!(d.detail, E::Missing.to_string());
}

/// A path (and host) for every operation that carries its model in the body.
fn body_carried_path(op: Operation) -> (&'static str, &'static str) {
    match op {
        Operation::StartAsyncInvoke => ("/async-invoke", RUNTIME),
        Operation::ChatCompletions => (CHAT, RUNTIME),
        Operation::Responses => ("/openai/v1/responses", RUNTIME),
        Operation::AnthropicMessages => ("/anthropic/v1/messages", RUNTIME),
        Operation::InvokeInlineAgent => ("/agents/session-1", AGENT),
        Operation::Retrieve => ("/knowledgebases/KB12345678/retrieve", AGENT),
        Operation::RetrieveAndGenerate => ("/retrieveAndGenerate", AGENT),
        Operation::RetrieveAndGenerateStream => ("/retrieveAndGenerateStream", AGENT),
        Operation::Rerank => ("/rerank", AGENT),
        Operation::OptimizePrompt => ("/optimize-prompt", AGENT),
        other => panic!("{other} is not body-carried: extend this table"),
    }
}

#[test]
fn every_body_carried_operation_refuses_utf16_latin1_and_text_plain() {
    let p = policy();
    let ops: Vec<Operation> = Operation::ALL
        .iter()
        .copied()
        .filter(|op| op.needs_body())
        .collect();
    assert!(ops.len() >= 10, "{ops:?}");
    for op in ops {
        let (path, host) = body_carried_path(op);
        for (v, expected) in [
            (&b"application/json; charset=utf-16"[..], E::CharsetNotUtf8),
            (b"application/json; charset=latin1", E::CharsetNotUtf8),
            (b"text/plain", E::NotApplicationJson),
            (b"application/x-amz-json-1.1", E::NotApplicationJson),
        ] {
            let (head, _) = request(path, host, Some(v), b"{}", &p);
            let HeadOutcome::Decided(d) = head else {
                panic!("{op}: the body would be read");
            };
            assert_eq!(d.reason, Reason::BodyUnparseable, "{op}: {d:?}");
            assert_eq!(d.detail, expected.to_string(), "{op}");
            assert_eq!(d.operation, Some(op));
        }
        for v in [&b"application/json"[..], b"application/json; charset=utf-8"] {
            let (head, _) = request(path, host, Some(v), b"{}", &p);
            assert!(
                matches!(head, HeadOutcome::NeedBody(_)),
                "{op} {}: {head:?}",
                String::from_utf8_lossy(v)
            );
        }
    }
}

#[test]
fn a_path_carried_operation_does_not_read_the_body_and_ignores_its_content_type() {
    let p = policy();
    let path = format!("/model/{}/converse", MODEL.replace(':', "%3A"));
    let (head, d) = request(
        &path,
        RUNTIME,
        Some(b"text/plain; charset=utf-16"),
        b"x",
        &p,
    );
    assert!(matches!(head, HeadOutcome::Decided(_)), "{head:?}");
    assert_eq!(d.reason, Reason::Allowed, "{d:?}");
}

#[test]
fn a_utf8_byte_order_mark_before_the_body_is_refused() {
    // The body is JSON text in UTF-8 without a BOM (RFC 8259 section 8.1); the body reader
    // refuses anything before the opening brace.
    let p = policy();
    for prefix in [&b"\xef\xbb\xbf"[..], b"\xfe\xff", b"\xff\xfe"] {
        let mut body = prefix.to_vec();
        body.extend_from_slice(&chat_body());
        let (_, d) = request(CHAT, RUNTIME, Some(b"application/json"), &body, &p);
        assert_eq!(d.reason, Reason::BodyUnparseable, "{prefix:?}: {d:?}");
    }
}

#[test]
fn a_utf16_body_is_refused_even_under_a_json_content_type() {
    let p = policy();
    let utf16: Vec<u8> = String::from_utf8(chat_body())
        .expect("ASCII")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let (_, d) = request(CHAT, RUNTIME, Some(b"application/json"), &utf16, &p);
    assert_eq!(d.reason, Reason::BodyUnparseable, "{d:?}");
}
