//! Properties of the decision engine over arbitrary request bytes.

use policies::{decide, CompiledPolicy, Mode, Reason, RequestFacts};
use proptest::prelude::*;

const DEMO: &[u8] = include_bytes!("../../examples/demo.json");
const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";

fn demo() -> CompiledPolicy {
    CompiledPolicy::from_json(DEMO).expect("demo bundle compiles")
}

fn facts_decide(
    policy: &CompiledPolicy,
    method: &[u8],
    path: &[u8],
    authority: &[u8],
    body: &[u8],
) -> policies::Decision {
    let headers: [(&str, &[u8]); 1] = [("content-type", b"application/json")];
    let facts = RequestFacts {
        method,
        path,
        authority,
        scheme: b"https",
        headers: &headers,
        body: Some(body),
        original_destination: None,
        caller: Default::default(),
        token: None,
    };
    decide(policy, &facts)
}

/// A path that often looks like a catalogue route.
fn path_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80),
        "/model/[a-zA-Z0-9.:%/*?-]{0,60}/(invoke|converse|count-tokens|converse-stream)"
            .prop_map(String::into_bytes),
        Just(b"/openai/v1/chat/completions".to_vec()),
        Just(b"/async-invoke".to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn never_panics_and_never_allows_an_unknown_destination(
        method in prop_oneof![Just(b"POST".to_vec()), Just(b"GET".to_vec()), proptest::collection::vec(any::<u8>(), 0..8)],
        path in path_strategy(),
        authority in proptest::collection::vec(any::<u8>(), 0..300),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let policy = demo();
        let d = facts_decide(&policy, &method, &path, &authority, &body);
        let lower = authority.to_ascii_lowercase();
        let host = lower.strip_suffix(b":443").unwrap_or(&lower);
        if policy.endpoint(std::str::from_utf8(host).unwrap_or("")).is_none() {
            prop_assert!(!d.is_allow(), "{:?}", d);
        }
        prop_assert_eq!(d.mode, Mode::Enforce);
        prop_assert!(d.is_allow() == (d.reason == Reason::Allowed));
    }

    #[test]
    fn allowed_requests_carry_operation_rule_and_models(
        model in "[a-z0-9.:-]{1,40}",
    ) {
        let policy = demo();
        let path = format!("/model/{model}/converse");
        let d = facts_decide(&policy, b"POST", path.as_bytes(), HOST.as_bytes(), b"");
        if d.is_allow() {
            prop_assert!(d.operation.is_some());
            prop_assert!(d.rule_id.is_some());
            prop_assert_eq!(d.models.len(), 1);
        }
    }
}
