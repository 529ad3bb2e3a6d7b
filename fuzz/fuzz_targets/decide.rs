//! `decide` against the demo bundle (`policies/examples/demo.json`) with whole requests.
//!
//! Input: an HTTP/1-like text request, so seeds stay readable and mutations stay structured:
//!
//! ```text
//! METHOD PATH
//! name: value            (header names lower-cased like Envoy does; repeats kept)
//! x-fuzz-dst: 127.0.0.1  (optional: the original destination address, not a header)
//!
//! body                   (present when the blank line is)
//! ```
//!
//! `:authority` is the first `:authority` line, else the first `host` line. Lines end at `\n`
//! only, so a `\r` stays in the value. Oracle: no panic; an allow implies the path was
//! unambiguous (no `?` except for ListAsyncInvokes, no `#`, `;`, `\`, no dot segment, printable
//! ASCII), the models are canonical and are what AWS will read (the restJson1 label decoding of
//! the raw path, or serde_json's top-level member of the body), and the authority is an AWS host.
#![no_main]

use std::net::IpAddr;

use fuzz_support::{
    canonical_alphabet, demo_policy, has_dot_component, has_dot_segment, label_decode,
    raw_model_label, top_level_members,
};
use libfuzzer_sys::fuzz_target;
use policies::audit::AuditRecord;
use policies::identity::Caller;
use policies::request::{parse_body_model_id, ModelLocation};
use policies::{decide, Operation, RequestFacts};

struct Request {
    method: Vec<u8>,
    path: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    authority: Vec<u8>,
    original_destination: Option<IpAddr>,
    body: Option<Vec<u8>>,
}

fn parse(data: &[u8]) -> Request {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], Some(data[at + 2..].to_vec())),
        None => (data, None),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    let (method, path) = match request_line.iter().position(|&b| b == b' ') {
        Some(at) => (&request_line[..at], &request_line[at + 1..]),
        None => (&b"POST"[..], request_line),
    };
    let mut headers = Vec::new();
    let mut original_destination = None;
    for line in lines {
        // A pseudo-header's name starts with its own ':'.
        let from = usize::from(line.first() == Some(&b':'));
        let Some(colon) = line.iter().skip(from).position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..from + colon], &line[from + colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if name == "x-fuzz-dst" {
            original_destination = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            continue;
        }
        headers.push((name, value.to_vec()));
    }
    let find = |n: &str| {
        headers
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, v)| v.clone())
    };
    let authority = find(":authority")
        .or_else(|| find("host"))
        .unwrap_or_default();
    Request {
        method: method.to_vec(),
        path: path.to_vec(),
        headers,
        authority,
        original_destination,
        body,
    }
}

fuzz_target!(
    init: {
        let _ = demo_policy();
    },
    |data: &[u8]| {
        let req = parse(data);
        let headers: Vec<(&str, &[u8])> =
            req.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let facts = RequestFacts {
            method: &req.method,
            path: &req.path,
            authority: &req.authority,
            scheme: b"https",
            headers: &headers,
            body: req.body.as_deref(),
            original_destination: req.original_destination,
            caller: Caller::Anonymous,
            token: None,
        };
        let d = decide(demo_policy(), &facts);

        // Every decision is reportable.
        let error_body: serde_json::Value =
            serde_json::from_str(&d.error_body()).expect("error body is JSON");
        assert!(error_body["message"].is_string());
        let line = AuditRecord::from_decision(&d, 0).to_json_line();
        serde_json::from_str::<serde_json::Value>(&line).expect("audit line is JSON");
        // The demo bundle enforces: only an allow lets a request through.
        assert_eq!(d.lets_through(), d.is_allow(), "{d:?}");

        if !d.is_allow() {
            return;
        }
        let path = &req.path[..];
        let op = d.operation.expect("an allow names its operation");
        assert!(
            path.iter().all(|b| (0x21..=0x7e).contains(b) && !b"#;\\".contains(b)),
            "allowed a path with a forbidden byte: {path:?}"
        );
        assert!(!has_dot_segment(path), "allowed a dot segment: {path:?}");
        if path.contains(&b'?') {
            assert_eq!(op, Operation::ListAsyncInvokes, "allowed a query on {op}");
        }
        assert!(matches!(&req.method[..], b"POST" | b"GET"));
        let authority = String::from_utf8_lossy(&req.authority).to_ascii_lowercase();
        assert!(authority.contains(".amazonaws.com"), "allowed authority {authority:?}");
        for model in &d.models {
            // The bundle as a security team reads it (issue 9): the demo denies `global.*` and
            // `*claude-opus*` and lists no geographies (so only those serving us-east-1: `us`,
            // `global`); its only opaque allow is one exact ARN.
            let m = parse_body_model_id(model).expect("allowed id parses");
            let lower = model.to_ascii_lowercase();
            let base = m.profile_prefix().map(|p| {
                let id = m.resource_id().unwrap_or(model);
                id.strip_prefix(p).unwrap_or(id).trim_start_matches('.').to_ascii_lowercase()
            });
            for text in std::iter::once(&lower).chain(base.as_ref()) {
                assert!(!text.contains("claude-opus"), "allowed a case variant of a denied model: {model}");
                assert!(!text.starts_with("global."), "allowed a denied global profile: {model}");
            }
            if let Some(geo) = m.profile_prefix() {
                assert!(geo == "us", "allowed geography {geo} in {model}");
            }
            if m.is_opaque() {
                assert_eq!(
                    model,
                    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
                    "allowed an opaque resource no ARN pattern names"
                );
            }
            assert!(canonical_alphabet(model), "allowed non-canonical id {model:?}");
            assert!(!has_dot_component(model), "allowed dot component in {model:?}");
            let again = parse_body_model_id(model).expect("allowed id re-parses");
            assert_eq!(again.canonical(), model);
        }
        match op.model_location() {
            ModelLocation::Path => {
                assert!(!path.contains(&b'?'));
                let label = raw_model_label(path).expect("allowed model path has a label");
                let aws = label_decode(label).expect("allowed label decodes");
                assert_eq!(d.models.len(), 1);
                assert_eq!(aws, d.models[0].as_bytes(), "AWS would read another model");
            }
            ModelLocation::BodyField(name) => {
                let body = req.body.as_deref().expect("allowed body operation has a body");
                let members = top_level_members(body).expect("serde_json reads the body");
                let values: Vec<_> = members.iter().filter(|(k, _)| k == name).collect();
                assert_eq!(values.len(), 1);
                let value: String = serde_json::from_str(values[0].1.get()).expect("string");
                assert_eq!(d.models, [value], "AWS would read another model");
            }
            ModelLocation::BodyAnywhere(_) => {}
            ModelLocation::None => assert!(d.models.is_empty()),
        }
    }
);
