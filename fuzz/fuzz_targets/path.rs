//! `classify(method, raw_path)` and `parse_path_model_id` on the model label.
//!
//! Input: `METHOD\nPATH`, or just `PATH` (method `POST`). Oracle: no panic, and whenever a
//! path-carried model id is accepted, an independent decoder (split the raw path on `/`,
//! percent-decode the label once: the AWS restJson1 rule) yields the same canonical id, which
//! uses only `[A-Za-z0-9._:/-]`. The SDK encoding of an accepted id must route back to it.
#![no_main]

use fuzz_support::{
    canonical_alphabet, has_dot_component, has_dot_segment, label_decode, raw_model_label,
    smithy_label_encode,
};
use libfuzzer_sys::fuzz_target;
use policies::request::{classify, parse_body_model_id, parse_path_model_id, ModelLocation};

fuzz_target!(|data: &[u8]| {
    let (method, path) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"POST"[..], data),
    };

    // The label parser on its own, over the raw bytes.
    if let Ok(model) = parse_path_model_id(path) {
        check_canonical(path, model.canonical());
    }

    let Ok(route) = classify(method, path) else {
        return;
    };
    // Whatever was routed: no ambiguous bytes anywhere in the raw path.
    assert!(
        path.iter()
            .all(|b| (0x21..=0x7e).contains(b) && !b"#;\\".contains(b)),
        "routed a path with a forbidden byte: {path:?}"
    );
    assert!(
        !has_dot_segment(path),
        "routed a path with a dot segment: {path:?}"
    );
    assert_eq!(
        route.operation.model_location() == ModelLocation::Path,
        route.model_segment.is_some()
    );
    let Some(segment) = route.model_segment else {
        return;
    };
    assert!(!path.contains(&b'?'), "model route with a query: {path:?}");
    assert_eq!(method, b"POST");
    assert_eq!(
        Some(segment),
        raw_model_label(path),
        "label is not the 3rd raw segment"
    );
    if let Ok(model) = parse_path_model_id(segment) {
        check_canonical(segment, model.canonical());
    }
});

fn check_canonical(raw_label: &[u8], canonical: &str) {
    let decoded = label_decode(raw_label).expect("accepted label has a malformed escape");
    assert_eq!(
        decoded,
        canonical.as_bytes(),
        "engine and the restJson1 decoder disagree on {raw_label:?}"
    );
    assert!(
        canonical_alphabet(canonical),
        "non-canonical id {canonical:?}"
    );
    assert!(!canonical.contains('%'));
    assert!(
        !has_dot_component(canonical),
        "dot component in {canonical:?}"
    );
    // Idempotence: the canonical text is itself a canonical body id.
    let again = parse_body_model_id(canonical).expect("canonical id re-parses");
    assert_eq!(again.canonical(), canonical);
    // Round trip: what an SDK sends for this id routes to the same id.
    let sdk_path = format!("/model/{}/invoke", smithy_label_encode(canonical));
    let route = classify(b"POST", sdk_path.as_bytes()).expect("SDK path routes");
    let label = route.model_segment.expect("SDK path has a label");
    let model = parse_path_model_id(label).expect("SDK label parses");
    assert_eq!(model.canonical(), canonical, "round trip changed the id");
}
