//! Property tests for the request module (security.md §7.4):
//! (a) no panic on arbitrary bytes; (b) agreement with an independent "what AWS decodes"
//! oracle; (c) round trip of botocore-encoded ids; (d) single-byte mutations never diverge
//! from the oracle. Plus a differential check of the JSON reader against serde_json.

use proptest::prelude::*;
use proptest::sample::Index;

use policies::request::{
    check_head, classify, extract_body_models, parse_body_model_id, parse_path_model_id,
    ModelLocation, Operation,
};
use policies::RequestFacts;

const OPS: [&str; 6] = [
    "invoke",
    "invoke-with-response-stream",
    "converse",
    "converse-stream",
    "count-tokens",
    "invoke-with-bidirectional-stream",
];

// ---------------------------------------------------------------- the oracle

/// A deliberately simple, separate implementation of the Smithy label rule: split the raw path
/// on `/`, require exactly `["", "model", seg, op]`, decode `seg` once. It knows nothing about
/// what the guard refuses; it only says what AWS would read as the model id.
fn oracle(path: &[u8]) -> Option<String> {
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    if parts.len() != 4 || !parts[0].is_empty() || parts[1] != b"model" {
        return None;
    }
    if !OPS.iter().any(|op| op.as_bytes() == parts[3]) {
        return None;
    }
    let seg = parts[2];
    let mut out = Vec::new();
    let mut i = 0;
    while i < seg.len() {
        if seg[i] == b'%' {
            let hi = (*seg.get(i + 1)? as char).to_digit(16)?;
            let lo = (*seg.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(seg[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What the guard reads as the model id of `POST <path>`, if it accepts the path at all.
fn guard(path: &[u8]) -> Option<String> {
    let m = classify(b"POST", path).ok()?;
    let seg = m.model_segment?;
    parse_path_model_id(seg)
        .ok()
        .map(|r| r.canonical().to_owned())
}

/// Percent-encode like botocore (`SAFE_CHARS = '-._~'`), optionally leaving `:` raw as some
/// clients do.
fn encode(id: &str, keep_colon: bool) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_colon && b == b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------- generators

/// Path fragments that exercise every rule: separators, escapes of every interesting byte,
/// dots, reserved characters, non-ASCII, the literal segments. Benign fragments are drawn more
/// often so that a fair share of paths is accepted and reaches the comparison.
fn path_soup() -> impl Strategy<Value = Vec<u8>> {
    let benign: Vec<&'static [u8]> = vec![
        b"a",
        b"Z",
        b"0",
        b"-",
        b"_",
        b".",
        b":",
        b"%3A",
        b"%3a",
        b"%2F",
        b"%2f",
        b"%41",
        b"%2E",
        b"us.",
        b"anthropic.claude",
        b"arn:aws:bedrock:us-east-1:123456789012:",
        b"arn%3Aaws%3Abedrock%3A%3A%3A",
        b"inference-profile",
        b"foundation-model",
        b"custom-model",
    ];
    let hostile: Vec<&'static [u8]> = vec![
        b"/",
        b"/model/",
        b"model",
        b"invoke",
        b"converse",
        b"count-tokens",
        b"%25",
        b"%253A",
        b"%5C",
        b"%00",
        b"%20",
        b"%G1",
        b"%4",
        b"%",
        b"..",
        b"~",
        b"+",
        b"?",
        b"#",
        b";",
        b"\\",
        b" ",
        b"\xc3\xa9",
        b"\xff",
        b"=",
        b"&",
        b"%2e%2E",
        b"%EF%BC%9A",
    ];
    let token = prop_oneof![
        4 => prop::sample::select(benign),
        1 => prop::sample::select(hostile),
    ];
    prop::collection::vec(token, 0..14).prop_map(|parts| parts.concat())
}

/// Paths shaped like `/model/<soup>/<op>` so that most cases reach the model parser.
fn model_path_soup() -> impl Strategy<Value = Vec<u8>> {
    (path_soup(), prop::sample::select(OPS.to_vec())).prop_map(|(seg, op)| {
        let mut p = b"/model/".to_vec();
        p.extend_from_slice(&seg);
        p.push(b'/');
        p.extend_from_slice(op.as_bytes());
        p
    })
}

/// Plain ids from the documented grammar: lower case (an id with a `.` and an upper-case
/// letter is `model_invalid`), and bare opaque names without a `.`, in any case.
fn plain_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "([a-z-]{2,8}\\.)?[a-z0-9_-]{1,12}(\\.[a-z0-9_-]{1,12}){1,3}(:[a-z0-9]{1,4}){0,2}",
        "[A-Za-z0-9_-]{1,24}",
    ]
}

fn arn_id() -> impl Strategy<Value = String> {
    let partition = prop::sample::select(vec!["aws", "aws-cn", "aws-us-gov", "aws-iso-b"]);
    // Types whose ids Bedrock writes in lower case, as one path component.
    let lower_type = prop::sample::select(vec![
        "foundation-model",
        "inference-profile",
        "application-inference-profile",
        "provisioned-model",
        "custom-model-deployment",
        "imported-model",
    ]);
    // Types whose ids may carry upper case and several components.
    let any_case_type = prop::sample::select(vec![
        "prompt",
        "prompt-router",
        "default-prompt-router",
        "agent-alias",
    ]);
    let component = "[A-Za-z0-9_:.-]{1,16}".prop_filter("dot component", |c| c != "." && c != "..");
    let lower_component =
        "[a-z0-9_:.-]{1,16}".prop_filter("dot component", |c| c != "." && c != "..");
    let resource_id = prop::collection::vec(component, 1..4).prop_map(|c| c.join("/"));
    let custom_id = prop::collection::vec(lower_component.clone(), 1..4).prop_map(|c| c.join("/"));
    let region = "([a-z0-9-]{1,20})?";
    let account = "([0-9]{12})?";
    prop_oneof![
        (
            partition.clone(),
            region,
            account,
            lower_type,
            lower_component
        )
            .prop_map(|(p, r, a, t, id)| format!("arn:{p}:bedrock:{r}:{a}:{t}/{id}")),
        (partition.clone(), region, account, custom_id)
            .prop_map(|(p, r, a, id)| format!("arn:{p}:bedrock:{r}:{a}:custom-model/{id}")),
        (
            partition,
            region,
            account,
            any_case_type,
            resource_id.clone()
        )
            .prop_map(|(p, r, a, t, id)| format!("arn:{p}:bedrock:{r}:{a}:{t}/{id}")),
        ("[a-z0-9-]{1,20}", "[0-9]{12}", resource_id)
            .prop_map(|(r, a, id)| format!("arn:aws:sagemaker:{r}:{a}:endpoint/{id}")),
    ]
}

fn model_id() -> impl Strategy<Value = String> {
    prop_oneof![plain_id(), arn_id()]
}

/// Bytes that look like JSON often enough to reach deep states of the reader.
fn json_soup() -> impl Strategy<Value = Vec<u8>> {
    let tokens: Vec<&'static [u8]> = vec![
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b" ",
        b"\"model\"",
        b"\"modelArn\"",
        b"\"mod\\u0065l\"",
        b"\"Model\"",
        b"\"a.b\"",
        b"\\",
        b"\\u",
        b"d800",
        b"dc00",
        b"0041",
        b"\\n",
        b"true",
        b"null",
        b"-",
        b"0",
        b"1",
        b".",
        b"e",
        b"+",
        b"\xc3",
        b"\xa9",
        b"\xff",
        b"\xef\xbb\xbf",
        b"\0",
        b"x",
    ];
    prop::collection::vec(prop::sample::select(tokens), 0..40).prop_map(|parts| parts.concat())
}

fn json_key() -> impl Strategy<Value = &'static str> + Clone {
    prop::sample::select(vec![
        "a", "b", "role", "content", "model", "modelArn", "x\"y", "é", "\u{1}",
    ])
}

/// Valid JSON documents (no duplicate keys by construction: serde_json maps are unique).
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let key = json_key();
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        (-1.0e300f64..1.0e300).prop_map(|f| serde_json::json!(f)),
        ".{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(6, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// Every `modelArn` string in document order (serde_json maps iterate in the order they are
/// written), or `None` when one of them is not a string. Recursion is fine here: the
/// generated documents are at most seven levels deep.
fn model_arns(v: &serde_json::Value) -> Option<Vec<String>> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) -> Option<()> {
        match v {
            serde_json::Value::Array(items) => items.iter().try_for_each(|i| walk(i, out)),
            serde_json::Value::Object(map) => {
                map.iter()
                    .try_for_each(|(k, child)| match (k.as_str(), child) {
                        ("modelArn", serde_json::Value::String(s)) => {
                            out.push(s.clone());
                            Some(())
                        }
                        ("modelArn", _) => None,
                        _ => walk(child, out),
                    })
            }
            _ => Some(()),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out).map(|()| out)
}

fn locations() -> Vec<ModelLocation> {
    vec![
        ModelLocation::BodyField("model"),
        ModelLocation::BodyField("modelId"),
        Operation::RetrieveAndGenerate.model_location(),
        ModelLocation::Path,
        ModelLocation::None,
    ]
}

// ---------------------------------------------------------------- (a) never panic

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn classify_never_panics_on_arbitrary_bytes(method in prop::collection::vec(any::<u8>(), 0..8), path in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = classify(&method, &path);
    }

    #[test]
    fn classify_never_panics_on_path_soup(path in path_soup(), get in any::<bool>()) {
        let _ = classify(if get { b"GET" } else { b"POST" }, &path);
    }

    #[test]
    fn parse_path_model_id_never_panics(raw in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_path_model_id(&raw);
    }

    #[test]
    fn parse_body_model_id_never_panics(text in ".{0,200}") {
        let _ = parse_body_model_id(&text);
    }

    #[test]
    fn extract_body_models_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..300)) {
        for location in locations() {
            let _ = extract_body_models(&body, location);
        }
    }

    #[test]
    fn extract_body_models_never_panics_on_json_soup(body in json_soup()) {
        for location in locations() {
            let _ = extract_body_models(&body, location);
        }
    }

    #[test]
    fn check_head_never_panics(
        method in prop::collection::vec(any::<u8>(), 0..8),
        authority in prop::collection::vec(any::<u8>(), 0..20),
        pairs in prop::collection::vec((prop::sample::select(vec![
            ":authority", "host", "authorization", "content-length", "content-type", "content-encoding",
            "connection", "upgrade", "x-workload-identity", "user-agent", "X-Workload-Identity", "",
        ]), prop::collection::vec(any::<u8>(), 0..24)), 0..10),
    ) {
        let headers: Vec<(&str, &[u8])> = pairs.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let facts = RequestFacts { method: &method, authority: &authority, headers: &headers, ..Default::default() };
        let _ = check_head(&facts, "x-workload-identity");
        let _ = check_head(&facts, "");
    }
}

// ---------------------------------------------------------------- (b) the guard agrees with the oracle

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn accepted_model_path_decodes_exactly_as_the_oracle(path in model_path_soup()) {
        if let Some(id) = guard(&path) {
            prop_assert_eq!(oracle(&path), Some(id));
        }
    }

    #[test]
    fn accepted_arbitrary_path_decodes_exactly_as_the_oracle(path in path_soup()) {
        if let Some(id) = guard(&path) {
            prop_assert_eq!(oracle(&path), Some(id));
        }
    }

    #[test]
    fn canonical_id_is_a_fixed_point(path in model_path_soup()) {
        if let Some(id) = guard(&path) {
            let again = parse_body_model_id(&id).map(|r| r.canonical().to_owned());
            prop_assert_eq!(again, Ok(id));
        }
    }
}

// ---------------------------------------------------------------- (c) round trip

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn botocore_encoded_id_round_trips(id in model_id(), op in prop::sample::select(OPS.to_vec())) {
        let path = format!("/model/{}/{op}", encode(&id, false));
        prop_assert_eq!(guard(path.as_bytes()), Some(id.clone()));
        prop_assert_eq!(parse_body_model_id(&id).map(|r| r.canonical().to_owned()), Ok(id));
    }

    #[test]
    fn id_with_raw_colons_round_trips(id in model_id()) {
        let path = format!("/model/{}/converse", encode(&id, true));
        prop_assert_eq!(guard(path.as_bytes()), Some(id));
    }

    #[test]
    fn id_with_lowercase_escapes_round_trips(id in model_id()) {
        let path = format!("/model/{}/converse", encode(&id, false).to_lowercase());
        // Lowercasing touches the id's letters too; only escapes must keep their meaning.
        if id.bytes().all(|b| !b.is_ascii_uppercase()) {
            prop_assert_eq!(guard(path.as_bytes()), Some(id));
        }
    }
}

// ---------------------------------------------------------------- (d) mutations never diverge

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn single_byte_replacement_is_refused_or_agrees_with_the_oracle(
        id in model_id(), keep_colon in any::<bool>(), at in any::<Index>(), byte in any::<u8>(),
    ) {
        let mut path = format!("/model/{}/converse", encode(&id, keep_colon)).into_bytes();
        let i = at.index(path.len());
        path[i] = byte;
        if let Some(got) = guard(&path) {
            prop_assert_eq!(oracle(&path), Some(got));
        }
    }

    #[test]
    fn single_byte_insertion_or_deletion_is_refused_or_agrees_with_the_oracle(
        id in model_id(), at in any::<Index>(), byte in any::<u8>(), insert in any::<bool>(),
    ) {
        let mut path = format!("/model/{}/invoke", encode(&id, false)).into_bytes();
        let i = at.index(path.len());
        if insert { path.insert(i, byte); } else { path.remove(i); }
        if let Some(got) = guard(&path) {
            prop_assert_eq!(oracle(&path), Some(got));
        }
    }
}

// ---------------------------------------------------------------- JSON: differential against serde_json

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Every document serde_json writes (unique keys, depth ≤ 7) is accepted, and the model the
    /// reader returns is exactly the top-level `model` string serde_json sees.
    #[test]
    fn reader_agrees_with_serde_json_on_valid_documents(
        members in prop::collection::btree_map(json_key(), json_value(), 0..6), pretty in any::<bool>(),
    ) {
        let map: serde_json::Map<String, serde_json::Value> = members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let doc = serde_json::Value::Object(map.clone());
        let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap();
        let got = extract_body_models(text.as_bytes(), ModelLocation::BodyField("model"));
        match map.get("model") {
            Some(serde_json::Value::String(s)) => prop_assert_eq!(got, Ok(vec![s.clone()])),
            Some(_) => prop_assert!(got.is_err()),
            None => prop_assert!(got.is_err()),
        }
        let anywhere = extract_body_models(text.as_bytes(), Operation::Rerank.model_location());
        prop_assert_eq!(anywhere.ok(), model_arns(&doc));
    }

    /// Whatever the strict reader accepts, serde_json parses too, with the same top-level model.
    #[test]
    fn accepted_soup_is_valid_json_with_the_same_model(body in json_soup()) {
        if let Ok(models) = extract_body_models(&body, ModelLocation::BodyField("model")) {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(value) => prop_assert_eq!(value.get("model").and_then(|m| m.as_str()), models.first().map(String::as_str)),
                // RFC 8259 leaves number range to implementations; serde_json refuses overflow.
                Err(e) => prop_assert!(e.to_string().contains("number out of range"), "{}", e),
            }
        }
    }
}
