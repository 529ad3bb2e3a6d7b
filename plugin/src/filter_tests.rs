//! The HTTP context driven through its proxy-wasm callbacks with a recording fake host: the
//! request and response paths, the stats and the audit record, without Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use policies::audit::BundleInfo;
use policies::CompiledPolicy;
use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::Action;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::GuardHttp;
use crate::alerts::AlertQueue;
use crate::config::HoldBody;
use crate::fake_host::FakeHost;
use crate::identity::IdentityState;
use crate::metrics::Metrics;
use crate::Shared;

const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const TITAN: &str = "amazon.titan-text-express-v1";
const SIGV4: &str = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261130/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const P: &str = "bedrock_guard";

fn bundle() -> Value {
    json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": {"name": "unit", "revision": "7"},
        "endpoints": [{"host": HOST, "region": "us-east-1", "private_dns": true,
                       "cidrs": ["10.0.0.0/8"]}],
        "alerts": {"cluster": "alerts", "path": "/alerts", "batch_size": 100},
        "rules": [
            {"id": "titan", "effect": "allow", "models": [TITAN, "openai.gpt-oss-*"],
             "operations": ["InvokeModel", "Converse", "ChatCompletions"]},
        ]
    })
}

/// A bundle that requires a workload identity (keys fetched remotely, never fetched here).
fn identity_bundle(mode: &str) -> Value {
    let mut b = bundle();
    b["mode"] = json!(mode);
    b["identity"] = json!({
        "header": "x-workload-identity",
        "providers": [{
            "name": "oidc", "issuer": "https://issuer.example", "audiences": ["bedrock"],
            "algorithms": ["RS256"],
            "remote_jwks": {"cluster": "jwks", "path": "/keys"}
        }]
    });
    b
}

fn shared(bundle: &Value, anchor_id: Option<&str>) -> Rc<Shared> {
    shared_holding(bundle, anchor_id, HoldBody::StopIteration)
}

fn shared_holding(bundle: &Value, anchor_id: Option<&str>, hold_body: HoldBody) -> Rc<Shared> {
    let policy = CompiledPolicy::from_json(bundle.to_string().as_bytes()).unwrap();
    let info = Arc::new(BundleInfo::new(
        policy.name(),
        policy.revision(),
        "sha256:00",
    ));
    let identity = IdentityState::new(&policy).map(RefCell::new);
    let alerts = policy.alerts().map(|a| RefCell::new(AlertQueue::new(a)));
    let metrics = RefCell::new(Metrics::new(&policy));
    Rc::new(Shared {
        policy: Rc::new(policy),
        bundle: info,
        original_destination: false,
        hold_body,
        emf_namespace: None,
        identity,
        alerts,
        metrics,
        anchor_id: anchor_id.map(str::to_string),
    })
}

fn filter(host: &Rc<FakeHost>, shared: &Rc<Shared>) -> GuardHttp<Rc<FakeHost>> {
    GuardHttp::new(Rc::clone(host), 42, Some(Rc::clone(shared)))
}

/// A fake host, the unit bundle's shared state, and a filter that has read the head of an
/// allowed InvokeModel request for TITAN (no body): where most response-side tests start.
fn titan_headers_read() -> (Rc<FakeHost>, Rc<Shared>, GuardHttp<Rc<FakeHost>>) {
    let host = Rc::new(FakeHost::new());
    let shared = shared(&bundle(), None);
    let mut f = filter(&host, &shared);
    invoke(&host, TITAN, &[]);
    assert_eq!(f.on_http_request_headers(7, true), Action::Continue);
    (host, shared, f)
}

/// A fake host, the unit bundle's shared state, and a filter holding the head of a
/// ChatCompletions request (the model is in the body still to come).
fn chat_completions_held() -> (Rc<FakeHost>, Rc<Shared>, GuardHttp<Rc<FakeHost>>) {
    let host = Rc::new(FakeHost::new());
    let shared = shared(&bundle(), None);
    let mut f = filter(&host, &shared);
    chat_completions(&host);
    assert_eq!(f.on_http_request_headers(5, false), Action::Pause);
    (host, shared, f)
}

fn invoke(host: &FakeHost, model: &str, extra: &[(&str, &str)]) {
    let path = format!("/model/{model}/invoke");
    let mut pairs = vec![
        (":method", "POST"),
        (":path", path.as_str()),
        (":authority", HOST),
        (":scheme", "https"),
        ("content-type", "application/json"),
        ("authorization", SIGV4),
        ("x-request-id", "3f2a1c4e-9d8b-4a7f-8e6d-5c4b3a2f1e0d"),
    ];
    pairs.extend_from_slice(extra);
    host.request(&pairs);
}

/// The head of a ChatCompletions request (its model is in the body).
fn chat_completions(host: &FakeHost) {
    host.request(&[
        (":method", "POST"),
        (":path", "/openai/v1/chat/completions"),
        (":authority", HOST),
        (":scheme", "https"),
        ("content-type", "application/json"),
    ]);
}

/// Bedrock's request id in the fake upstream's answers (`x-amzn-RequestId`).
const BEDROCK_RID: &str = "0e9d8c7b-6a5f-4e3d-9c2b-1a0f9e8d7c6b";

fn answer_from(host: &FakeHost, address: &str) {
    host.response(&[
        (":status", "200"),
        ("content-type", "application/json"),
        ("X-Amzn-RequestId", BEDROCK_RID),
    ]);
    host.property_is("upstream.address", address);
}

/// The sum of every `requests` stat (each request is counted in exactly one).
fn decisions(host: &FakeHost) -> i64 {
    decided(host, "", "")
}

/// The sum of the `requests` stats with this decision and reason (any, when empty).
fn decided(host: &FakeHost, decision: &str, reason: &str) -> i64 {
    host.stats
        .borrow()
        .iter()
        .filter(|(n, _, _)| n.starts_with(&format!("{P}.requests.")))
        .filter(|(n, _, _)| decision.is_empty() || n.contains(&format!(".decision.{decision}.")))
        .filter(|(n, _, _)| reason.is_empty() || n.contains(&format!(".reason.{reason}.")))
        .map(|(_, _, v)| v)
        .sum()
}

fn queued_alerts(shared: &Shared) -> Vec<Value> {
    let mut queue = shared.alerts.as_ref().unwrap().borrow_mut();
    let Some(post) = queue.tick(u64::MAX) else {
        return Vec::new();
    };
    let batch: Vec<Value> = serde_json::from_str(&post.body).unwrap();
    batch.into_iter().map(|e| e["detail"].clone()).collect()
}

#[test]
fn an_allowed_request_continues_and_is_recorded_and_counted_once() {
    let host = Rc::new(FakeHost::new());
    host.property_is("source.address", "10.1.2.3:5555");
    let shared = shared(&bundle(), None);
    let mut f = filter(&host, &shared);
    invoke(&host, TITAN, &[]);
    assert_eq!(f.on_http_request_headers(7, false), Action::Continue);
    assert!(host.sent.borrow().is_empty());
    answer_from(&host, "10.0.0.5:443");
    assert_eq!(f.on_http_response_headers(2, true), Action::Continue);
    f.on_log();
    f.on_log();

    let audit = host.audit().unwrap();
    assert_eq!(audit["decision"], "allow", "{audit}");
    assert_eq!(audit["awsRegion"], "us-east-1");
    assert_eq!(audit["credentialType"], "sigv4");
    assert_eq!(audit["accessKeyId"], "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(audit["requestParameters"]["modelId"], TITAN);
    assert_eq!(audit["sourceIPAddress"], "10.1.2.3");
    assert_eq!(audit["status"], 200);
    // Bedrock's request id, read case-insensitively from the answer, next to Envoy's.
    assert_eq!(audit["upstreamRequestId"], BEDROCK_RID);
    assert_ne!(audit["requestID"], BEDROCK_RID);
    assert_eq!(host.stat(&format!("{P}.requests_total")), 1);
    assert_eq!(decided(&host, "allow", "allowed"), 1);
    assert_eq!(
        host.stat(&format!(
            "{P}.requests.operation.InvokeModel.model.amazon_titan-text-express-v1.decision.allow.reason.allowed.rule.titan.group.none"
        )),
        1
    );
    assert_eq!(decisions(&host), 1);
}

#[test]
fn a_refused_request_is_answered_locally_recorded_and_counted_once() {
    let host = Rc::new(FakeHost::new());
    let shared = shared(&bundle(), None);
    let mut f = filter(&host, &shared);
    invoke(&host, "meta.llama3-8b-instruct-v1:0", &[]);
    assert_eq!(f.on_http_request_headers(7, true), Action::Pause);
    let sent = host.sent.borrow().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status, 403);
    assert_eq!(
        sent[0].header("x-bedrock-guard-reason"),
        Some("model_not_allowed")
    );
    assert_eq!(
        sent[0].header("x-amzn-requestid"),
        Some("3f2a1c4e-9d8b-4a7f-8e6d-5c4b3a2f1e0d")
    );
    f.on_log();
    let audit = host.audit().unwrap();
    assert_eq!(audit["decision"], "deny");
    assert_eq!(audit["reason"], "model_not_allowed");
    assert_eq!(audit["status"], 403);
    assert_eq!(host.stat(&format!("{P}.requests_total")), 1);
    assert_eq!(decided(&host, "deny", "model_not_allowed"), 1);
    assert_eq!(decisions(&host), 1);
    let alerts = queued_alerts(&shared);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["reason"], "model_not_allowed");
}

/// Defect: a request let through whose identity header could not be removed was counted twice
/// (as let through, then as the refusal), and a dry-run one alerted twice.
#[test]
fn a_failed_identity_header_removal_is_one_refusal_counted_once() {
    let host = Rc::new(FakeHost::new());
    host.fail_header_removal.set(true);
    // Dry-run: the missing identity is a would-be refusal, so the request would leave.
    let shared = shared(&identity_bundle("dry-run"), None);
    let mut f = filter(&host, &shared);
    invoke(&host, TITAN, &[]);
    assert_eq!(f.on_http_request_headers(7, true), Action::Pause);
    assert_eq!(
        host.calls.borrow().as_slice(),
        ["remove x-workload-identity"]
    );
    let sent = host.sent.borrow().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].header("x-bedrock-guard-reason"),
        Some("policy_unavailable")
    );
    f.on_log();
    assert_eq!(host.stat(&format!("{P}.requests_total")), 1);
    assert_eq!(decided(&host, "deny", "policy_unavailable"), 1);
    assert_eq!(host.stat(&format!("{P}.dry_run_denials")), 0);
    assert_eq!(decisions(&host), 1);
    let audit = host.audit().unwrap();
    assert_eq!(audit["reason"], "policy_unavailable");
    assert_eq!(audit["mode"], "enforce");
    // The operation and model the request named stay in the record.
    assert_eq!(audit["requestParameters"]["modelId"], TITAN);
    let alerts = queued_alerts(&shared);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["reason"], "policy_unavailable");
}

#[test]
fn an_unmarkable_request_in_an_anchored_module_is_refused_once() {
    let host = Rc::new(FakeHost::new());
    host.fail_set_property.set(true);
    let shared = shared(&bundle(), Some("anchor-1"));
    let mut f = filter(&host, &shared);
    invoke(&host, TITAN, &[]);
    assert_eq!(f.on_http_request_headers(7, true), Action::Pause);
    assert_eq!(host.sent.borrow().len(), 1);
    f.on_log();
    assert_eq!(decided(&host, "deny", "policy_unavailable"), 1);
    assert_eq!(decisions(&host), 1);
}

#[test]
fn an_anchored_module_marks_what_it_lets_through() {
    let host = Rc::new(FakeHost::new());
    let shared = shared(&bundle(), Some("anchor-1"));
    let mut f = filter(&host, &shared);
    invoke(&host, TITAN, &[]);
    assert_eq!(f.on_http_request_headers(7, true), Action::Continue);
    assert_eq!(
        host.written.borrow().get(crate::trust::ANCHOR_PROPERTY),
        Some(&b"anchor-1".to_vec())
    );
    let host = Rc::new(FakeHost::new());
    let mut f = filter(&host, &shared);
    invoke(&host, "meta.llama3-8b-instruct-v1:0", &[]);
    assert_eq!(f.on_http_request_headers(7, true), Action::Pause);
    assert!(host
        .written
        .borrow()
        .get(crate::trust::ANCHOR_PROPERTY)
        .is_none());
}

/// Defect: the refusal sent when the answer came from outside the endpoint's ranges skipped
/// the decision stats (the request stayed counted as allowed).
#[test]
fn a_withheld_answer_is_counted_and_alerted_as_the_refusal_and_quarantines() {
    let host = Rc::new(FakeHost::new());
    let shared = shared(&bundle(), None);
    let mut f = filter(&host, &shared);
    invoke(&host, TITAN, &[]);
    assert_eq!(f.on_http_request_headers(7, true), Action::Continue);
    answer_from(&host, "203.0.113.9:443");
    assert_eq!(f.on_http_response_headers(2, false), Action::Pause);
    let sent = host.sent.borrow().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status, 403);
    assert_eq!(
        sent[0].header("x-bedrock-guard-reason"),
        Some("destination_not_privatelink")
    );
    f.on_log();
    assert_eq!(host.stat(&format!("{P}.requests_total")), 1);
    assert_eq!(decided(&host, "allow", "allowed"), 0);
    assert_eq!(decided(&host, "deny", "destination_not_privatelink"), 1);
    assert_eq!(
        host.stat(&format!(
            "{P}.requests.operation.InvokeModel.model.amazon_titan-text-express-v1.decision.deny.reason.destination_not_privatelink.rule.none.group.none"
        )),
        1
    );
    assert_eq!(host.stat(&format!("{P}.upstream_not_privatelink")), 1);
    assert_eq!(host.stat(&format!("{P}.destination_quarantined")), 1);
    let audit = host.audit().unwrap();
    assert_eq!(audit["reason"], "destination_not_privatelink");
    assert_eq!(audit["upstreamStatus"], 200);
    assert_eq!(audit["upstreamAddress"], "203.0.113.9:443");
    // What the upstream said is kept, also when its answer is withheld.
    assert_eq!(audit["upstreamRequestId"], BEDROCK_RID);
    assert_eq!(audit["requestParameters"]["modelId"], TITAN);
    let alerts = queued_alerts(&shared);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["reason"], "destination_not_privatelink");

    // The endpoint is quarantined: the next request to it never leaves.
    let mut next = filter(&host, &shared);
    invoke(&host, TITAN, &[]);
    assert_eq!(next.on_http_request_headers(7, true), Action::Pause);
    assert_eq!(host.sent.borrow().len(), 2);
    next.on_log();
    assert_eq!(decided(&host, "deny", "destination_not_privatelink"), 2);
}

#[test]
fn an_answer_from_inside_the_ranges_passes() {
    let (host, _, mut f) = titan_headers_read();
    answer_from(&host, "10.9.9.9:443");
    assert_eq!(f.on_http_response_headers(2, true), Action::Continue);
    assert!(host.sent.borrow().is_empty());
}

#[test]
fn a_body_carried_request_waits_for_its_body_then_is_decided() {
    for (model, verdict, sent) in [
        ("openai.gpt-oss-20b-1:0", "allow", 0),
        ("meta.llama3-8b-instruct-v1:0", "deny", 1),
    ] {
        let (host, _shared, mut f) = chat_completions_held();
        let body = json!({"model": model, "messages": []}).to_string();
        *host.request_body.borrow_mut() = body.as_bytes().to_vec();
        assert_eq!(f.on_http_request_body(10, false), Action::Pause);
        let expected = if sent == 0 {
            Action::Continue
        } else {
            Action::Pause
        };
        assert_eq!(f.on_http_request_body(body.len(), true), expected);
        assert_eq!(host.sent.borrow().len(), sent, "{model}");
        f.on_log();
        let audit = host.audit().unwrap();
        assert_eq!(audit["decision"], verdict, "{audit}");
        assert_eq!(audit["eventName"], "ChatCompletions");
        assert_eq!(audit["requestParameters"]["modelId"], model);
        assert_eq!(decisions(&host), 1);
    }
}

#[test]
fn an_oversized_or_unreadable_body_is_refused_once() {
    let (host, shared, mut f) = chat_completions_held();
    let limit = usize::try_from(shared.policy.max_body_bytes()).unwrap();
    assert_eq!(f.on_http_request_body(limit + 1, false), Action::Pause);
    assert_eq!(host.sent.borrow()[0].status, 413);
    // Envoy may still call with the rest of the body: nothing more happens.
    assert_eq!(f.on_http_request_body(limit + 2, true), Action::Continue);
    assert_eq!(host.sent.borrow().len(), 1);
    f.on_log();
    assert_eq!(decided(&host, "deny", "body_too_large"), 1);
    assert_eq!(decisions(&host), 1);

    let host = Rc::new(FakeHost::new());
    host.fail_request_body.set(true);
    let mut f = filter(&host, &shared);
    chat_completions(&host);
    f.on_http_request_headers(5, false);
    assert_eq!(f.on_http_request_body(20, true), Action::Pause);
    f.on_log();
    assert_eq!(decided(&host, "deny", "body_unparseable"), 1);
    assert_eq!(decisions(&host), 1);
}

/// `BEDROCK_GUARD_HOLD_BODY=buffer_filter`: the header phase lets a body-carried request's
/// head continue (the buffer filter after the guard holds it), the body phase still holds the
/// body until it is complete and decides on it; the default stops at the header phase.
#[test]
fn the_hold_body_setting_chooses_where_a_body_carried_request_is_held() {
    for (hold, at_headers) in [
        (HoldBody::StopIteration, Action::Pause),
        (HoldBody::BufferFilter, Action::Continue),
    ] {
        for (model, verdict) in [
            ("openai.gpt-oss-20b-1:0", "allow"),
            ("meta.llama3-8b-instruct-v1:0", "deny"),
        ] {
            let host = Rc::new(FakeHost::new());
            let shared = shared_holding(&bundle(), None, hold);
            let mut f = filter(&host, &shared);
            chat_completions(&host);
            assert_eq!(f.on_http_request_headers(5, false), at_headers, "{hold:?}");
            assert!(
                host.sent.borrow().is_empty(),
                "{hold:?}: decided before the body"
            );
            let body = json!({"model": model, "messages": []}).to_string();
            *host.request_body.borrow_mut() = body.as_bytes().to_vec();
            // Part of the body: held (StopIterationAndBuffer), whatever the setting.
            assert_eq!(f.on_http_request_body(10, false), Action::Pause, "{hold:?}");
            assert!(host.sent.borrow().is_empty());
            let last = f.on_http_request_body(body.len(), true);
            f.on_log();
            let audit = host.audit().unwrap();
            assert_eq!(audit["decision"], verdict, "{hold:?} {audit}");
            assert_eq!(audit["requestParameters"]["modelId"], model);
            assert_eq!(decisions(&host), 1);
            if verdict == "allow" {
                assert_eq!(last, Action::Continue, "{hold:?}");
                assert!(host.sent.borrow().is_empty());
            } else {
                assert_eq!(last, Action::Pause, "{hold:?}");
                let sent = host.sent.borrow();
                assert_eq!(sent.len(), 1);
                assert_eq!(sent[0].status, 403);
            }
        }
        // A path-carried request is decided at the header phase, as before.
        let host = Rc::new(FakeHost::new());
        let shared = shared_holding(&bundle(), None, hold);
        let mut f = filter(&host, &shared);
        invoke(&host, TITAN, &[]);
        assert_eq!(f.on_http_request_headers(7, false), Action::Continue);
        invoke(&host, "meta.llama3-8b-instruct-v1:0", &[]);
        let mut f = filter(&host, &shared);
        assert_eq!(f.on_http_request_headers(7, false), Action::Pause);
        assert_eq!(host.sent.borrow()[0].status, 403);
        // A body-carried request without a body is decided at once with either setting.
        let host = Rc::new(FakeHost::new());
        let mut f = filter(&host, &shared);
        chat_completions(&host);
        assert_eq!(f.on_http_request_headers(5, true), Action::Pause);
        assert_eq!(host.sent.borrow().len(), 1, "{hold:?}");
    }
}

/// With the buffer-filter setting an oversized body is still refused by the guard with 413,
/// as soon as what has arrived exceeds `limits.max_body_bytes` (before the end of the stream).
#[test]
fn an_oversized_body_is_refused_with_413_with_the_buffer_filter_setting() {
    let host = Rc::new(FakeHost::new());
    let shared = shared_holding(&bundle(), None, HoldBody::BufferFilter);
    let mut f = filter(&host, &shared);
    chat_completions(&host);
    assert_eq!(f.on_http_request_headers(5, false), Action::Continue);
    let limit = usize::try_from(shared.policy.max_body_bytes()).unwrap();
    assert_eq!(f.on_http_request_body(limit, false), Action::Pause);
    assert!(host.sent.borrow().is_empty());
    assert_eq!(f.on_http_request_body(limit + 1, false), Action::Pause);
    assert_eq!(host.sent.borrow()[0].status, 413);
    f.on_log();
    assert_eq!(decided(&host, "deny", "body_too_large"), 1);
}

#[test]
fn unreadable_headers_or_no_bundle_are_refused_never_let_through() {
    let host = Rc::new(FakeHost::new());
    let shared = shared(&bundle(), None);
    let mut f = filter(&host, &shared);
    // No request header map at all.
    assert_eq!(f.on_http_request_headers(0, true), Action::Pause);
    assert_eq!(
        host.sent.borrow()[0].header("x-bedrock-guard-reason"),
        Some("header_invalid")
    );
    assert_eq!(
        host.sent.borrow()[0].header("x-amzn-requestid"),
        Some("bedrock-guard-0000002a")
    );
    f.on_log();
    assert_eq!(decisions(&host), 1);

    let host = Rc::new(FakeHost::new());
    let mut f = GuardHttp::new(Rc::clone(&host), 1, None);
    invoke(&host, TITAN, &[]);
    assert_eq!(f.on_http_request_headers(7, true), Action::Pause);
    assert_eq!(
        host.sent.borrow()[0].header("x-bedrock-guard-reason"),
        Some("policy_unavailable")
    );
    // No bundle in force: the refusal is still counted and recorded, once.
    f.on_log();
    assert_eq!(host.stat(&format!("{P}.requests_total")), 1);
    assert_eq!(decided(&host, "deny", "policy_unavailable"), 1);
    assert_eq!(decisions(&host), 1);
    let audit = host.audit().unwrap();
    assert_eq!(audit["decision"], "deny", "{audit}");
    assert_eq!(audit["reason"], "policy_unavailable", "{audit}");
    assert_eq!(audit["status"], 403, "{audit}");
    assert_eq!(audit["bundleName"], Value::Null, "{audit}");
    assert_eq!(
        Some(audit["requestID"].as_str().unwrap()),
        host.sent.borrow()[0].header("x-amzn-requestid"),
        "{audit}"
    );
}

/// The identity token is hashed once (by the engine's authentication) and the record carries
/// that fingerprint, also for a token that does not verify; the token itself never appears.
#[test]
fn the_token_fingerprint_comes_from_the_one_hash() {
    let host = Rc::new(FakeHost::new());
    let shared = shared(&identity_bundle("enforce"), None);
    let mut f = filter(&host, &shared);
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJ4In0.c2ln";
    invoke(&host, TITAN, &[("x-workload-identity", token)]);
    assert_eq!(f.on_http_request_headers(8, true), Action::Pause);
    f.on_log();
    let audit = host.audit().unwrap();
    assert_eq!(audit["reason"], "identity_invalid", "{audit}");
    let digest = Sha256::digest(token.as_bytes());
    let expected: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    assert_eq!(audit["userIdentity"]["tokenFingerprint"], expected.as_str());
    assert!(!audit.to_string().contains(token));
}

#[test]
fn a_stream_response_is_read_for_the_record() {
    let (host, _, mut f) = titan_headers_read();
    host.response(&[
        (":status", "200"),
        ("content-type", "application/vnd.amazon.eventstream"),
    ]);
    host.property_is("upstream.address", "10.0.0.5:443");
    assert_eq!(f.on_http_response_headers(2, false), Action::Continue);
    // Garbage frames are counted, passed through, and never refused.
    *host.response_body.borrow_mut() = vec![0xff; 64];
    assert_eq!(f.on_http_response_body(64, true), Action::Continue);
    f.on_log();
    let audit = host.audit().unwrap();
    assert!(audit["streamErrors"].as_u64().unwrap() >= 1, "{audit}");
    assert_eq!(decided(&host, "allow", "allowed"), 1);
}

/// A stream cut before its end (an upstream reset, a route timeout, the client going away:
/// Envoy calls `on_log` without the body's end) is recorded with its counts so far; a frame
/// left incomplete is a stream error. The upstream's 200 stays its status.
#[test]
fn a_stream_cut_before_its_end_records_its_counts_so_far() {
    for (cut_mid_frame, errors) in [(false, 0), (true, 1)] {
        let (host, _, mut f) = titan_headers_read();
        host.response(&[
            (":status", "200"),
            ("content-type", "application/vnd.amazon.eventstream"),
        ]);
        host.property_is("upstream.address", "10.0.0.5:443");
        assert_eq!(f.on_http_response_headers(2, false), Action::Continue);
        let mut body = frame(b"{\"p\":\"abc\"}");
        if cut_mid_frame {
            body.extend_from_slice(&frame(b"{}")[..9]);
        }
        *host.response_body.borrow_mut() = body.clone();
        assert_eq!(f.on_http_response_body(body.len(), false), Action::Continue);
        f.on_log();
        let audit = host.audit().unwrap();
        assert_eq!(audit["decision"], "allow", "{audit}");
        assert_eq!(audit["status"], 200);
        assert_eq!(audit["upstreamStatus"], 200);
        assert_eq!(audit["streamErrors"], errors, "{audit}");
        assert_eq!(audit["streamExceptions"], 0, "{audit}");
        assert_eq!(decided(&host, "allow", "allowed"), 1);
        assert_eq!(
            host.stat(&format!("{P}.stream_malformed_frames")),
            errors,
            "{audit}"
        );
    }
}

/// Envoy's own answer after an upstream fault (503 for a reset, 504 for a route timeout) is
/// what the client got, not what the upstream said: the record's `upstreamStatus` stays null
/// and no `upstream_responses` class is counted. An upstream's own 503 still is.
#[test]
fn envoys_own_answer_to_an_upstream_fault_is_not_the_upstreams() {
    for (status, details, from_upstream) in [
        (
            "503",
            "upstream_reset_before_response_started{connection_termination}",
            false,
        ),
        ("504", "upstream_response_timeout", false),
        ("503", "via_upstream", true),
    ] {
        let (host, _, mut f) = titan_headers_read();
        host.response(&[(":status", status), ("content-type", "text/plain")]);
        host.property_is("upstream.address", "10.0.0.5:443");
        host.property_is("response.code_details", details);
        assert_eq!(f.on_http_response_headers(2, true), Action::Continue);
        f.on_log();
        let audit = host.audit().unwrap();
        let code: u16 = status.parse().unwrap();
        assert_eq!(audit["decision"], "allow", "{audit}");
        assert_eq!(audit["status"], code, "{audit}");
        let upstream_classes: i64 = host
            .stats
            .borrow()
            .iter()
            .filter(|(n, _, _)| n.starts_with(&format!("{P}.upstream_responses.")))
            .map(|(_, _, v)| v)
            .sum();
        if from_upstream {
            assert_eq!(audit["upstreamStatus"], code, "{audit}");
            assert_eq!(upstream_classes, 1);
        } else {
            assert_eq!(audit["upstreamStatus"], Value::Null, "{audit}");
            assert_eq!(audit["upstreamAddress"], Value::Null, "{audit}");
            assert_eq!(upstream_classes, 0);
        }
        assert_eq!(decided(&host, "allow", "allowed"), 1);
        assert_eq!(decisions(&host), 1);
    }
}

/// A body-carried request whose body never completed (the client went away mid-body) was never
/// decided and never forwarded: one record and one count, as a `body_unparseable` refusal with
/// no status (no answer was sent), never as allowed; no deny alert.
#[test]
fn a_body_carried_request_that_never_completes_is_counted_refused_never_allowed() {
    let (host, shared, mut f) = chat_completions_held();
    let half = br#"{"model": "openai.gpt-oss-20b-1:0", "messa"#;
    *host.request_body.borrow_mut() = half.to_vec();
    assert_eq!(f.on_http_request_body(half.len(), false), Action::Pause);
    f.on_log();
    f.on_log();
    let audit = host.audit().unwrap();
    assert_eq!(audit["decision"], "deny", "{audit}");
    assert_eq!(audit["reason"], "body_unparseable", "{audit}");
    assert_eq!(audit["eventName"], "ChatCompletions");
    assert_eq!(audit["status"], Value::Null, "{audit}");
    assert_eq!(audit["upstreamStatus"], Value::Null, "{audit}");
    assert!(host.sent.borrow().is_empty());
    assert_eq!(host.stat(&format!("{P}.requests_total")), 1);
    assert_eq!(decided(&host, "deny", "body_unparseable"), 1);
    assert_eq!(decisions(&host), 1);
    assert!(queued_alerts(&shared).is_empty());
}

/// A Converse answer carries its usage in the JSON body: read chunk by chunk as it passes
/// (every chunk continues), into the record and the `tokens` / `cache_tokens` families; the
/// invocation's latency is recorded by model.
#[test]
fn a_unary_answers_usage_is_read_from_its_body_as_it_passes() {
    let (host, _, mut f) = titan_headers_read();
    answer_from(&host, "10.0.0.5:443");
    assert_eq!(f.on_http_response_headers(3, false), Action::Continue);
    let body = br#"{"output":{"message":{"content":[{"text":"\"usage\": {}"}]}},"usage":{"inputTokens":25,"outputTokens":118,"totalTokens":143,"cacheReadInputTokens":1024,"cacheWriteInputTokens":7},"metrics":{"latencyMs":12}}"#;
    for (i, chunk) in body.chunks(9).enumerate() {
        *host.response_body.borrow_mut() = chunk.to_vec();
        let last = (i + 1) * 9 >= body.len();
        assert_eq!(f.on_http_response_body(chunk.len(), last), Action::Continue);
    }
    host.now_ms.set(host.now_ms.get() + 250);
    f.on_log();
    let audit = host.audit().unwrap();
    assert_eq!(audit["inputTokens"], 25, "{audit}");
    assert_eq!(audit["outputTokens"], 118, "{audit}");
    let model = "amazon_titan-text-express-v1";
    assert_eq!(
        host.stat(&format!(
            "{P}.tokens.direction.input.model.{model}.group.none"
        )),
        25
    );
    assert_eq!(
        host.stat(&format!(
            "{P}.tokens.direction.output.model.{model}.group.none"
        )),
        118
    );
    assert_eq!(
        host.stat(&format!("{P}.cache_tokens.direction.read.model.{model}")),
        1024
    );
    assert_eq!(
        host.stat(&format!("{P}.cache_tokens.direction.write.model.{model}")),
        7
    );
    assert_eq!(
        host.stat(&format!("{P}.invocation_latency_ms.model.{model}")),
        250
    );
}

/// InvokeModel's token-count headers stay the record's counts; a body's usage only adds the
/// cache counts. An error answer's body is not read, and a throttle has no invocation latency.
#[test]
fn headers_win_over_the_body_and_error_answers_are_not_read() {
    let (host, shared, mut f) = titan_headers_read();
    host.response(&[
        (":status", "200"),
        ("content-type", "application/json"),
        ("x-amzn-bedrock-input-token-count", "3"),
        ("x-amzn-bedrock-output-token-count", "4"),
    ]);
    host.property_is("upstream.address", "10.0.0.5:443");
    f.on_http_response_headers(4, false);
    *host.response_body.borrow_mut() =
        br#"{"usage":{"input_tokens":30,"output_tokens":40,"cache_read_input_tokens":5}}"#.to_vec();
    let n = host.response_body.borrow().len();
    assert_eq!(f.on_http_response_body(n, true), Action::Continue);
    f.on_log();
    let audit = host.audit().unwrap();
    assert_eq!(
        (audit["inputTokens"].clone(), audit["outputTokens"].clone()),
        (json!(3), json!(4))
    );
    let model = "amazon_titan-text-express-v1";
    assert_eq!(
        host.stat(&format!("{P}.cache_tokens.direction.read.model.{model}")),
        5
    );
    assert!(!host
        .stats
        .borrow()
        .iter()
        .any(|(n, _, _)| n.contains(".cache_tokens.direction.write.")));

    // A throttled answer: its JSON body (with a usage-shaped member) is not read.
    let host = Rc::new(FakeHost::new());
    let mut f = filter(&host, &shared);
    invoke(&host, TITAN, &[]);
    f.on_http_request_headers(7, true);
    host.response(&[
        (":status", "429"),
        ("content-type", "application/json"),
        (
            "x-amzn-errortype",
            "ThrottlingException:http://internal.amazon.com/coral/",
        ),
    ]);
    host.property_is("upstream.address", "10.0.0.5:443");
    f.on_http_response_headers(3, false);
    *host.response_body.borrow_mut() =
        br#"{"usage":{"inputTokens":30,"outputTokens":40}}"#.to_vec();
    let n = host.response_body.borrow().len();
    assert_eq!(f.on_http_response_body(n, true), Action::Continue);
    f.on_log();
    assert_eq!(host.audit().unwrap()["inputTokens"], Value::Null);
    let names: Vec<String> = host.stats.borrow().iter().map(|s| s.0.clone()).collect();
    assert!(
        names.iter().any(|n| n.contains(".upstream_throttled.")),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".tokens.") || n.contains(".invocation_latency_ms.")),
        "{names:?}"
    );
}

/// One event-stream frame with no headers and `payload` (CRCs computed).
fn frame(payload: &[u8]) -> Vec<u8> {
    let total = u32::try_from(16 + payload.len()).unwrap();
    let mut out = total.to_be_bytes().to_vec();
    out.extend_from_slice(&0u32.to_be_bytes());
    let prelude_crc = policies::eventstream::crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(payload);
    let crc = policies::eventstream::crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A stream's time to first token is from the request's headers to its first complete event
/// frame (a partial frame does not count), recorded once, by model.
#[test]
fn a_streams_time_to_first_token_is_its_first_complete_frame() {
    let (host, _, mut f) = titan_headers_read();
    host.response(&[
        (":status", "200"),
        ("content-type", "application/vnd.amazon.eventstream"),
    ]);
    host.property_is("upstream.address", "10.0.0.5:443");
    f.on_http_response_headers(2, false);
    let first = frame(b"{\"p\":\"abc\"}");
    let (head, tail) = first.split_at(10);
    host.now_ms.set(host.now_ms.get() + 40);
    *host.response_body.borrow_mut() = head.to_vec();
    assert_eq!(f.on_http_response_body(head.len(), false), Action::Continue);
    host.now_ms.set(host.now_ms.get() + 60);
    let mut rest = tail.to_vec();
    rest.extend(frame(b"{}"));
    *host.response_body.borrow_mut() = rest.clone();
    assert_eq!(f.on_http_response_body(rest.len(), false), Action::Continue);
    host.now_ms.set(host.now_ms.get() + 500);
    *host.response_body.borrow_mut() = frame(b"{}");
    f.on_http_response_body(16 + 2, true);
    f.on_log();
    let model = "amazon_titan-text-express-v1";
    assert_eq!(
        host.stat(&format!("{P}.time_to_first_token_ms.model.{model}")),
        100
    );
    assert_eq!(
        host.stat(&format!("{P}.invocation_latency_ms.model.{model}")),
        600
    );
}

/// With `BEDROCK_GUARD_EMF_NAMESPACE` set, every request's CloudWatch EMF line is published in
/// the filter state (`wasm.bedrock_guard_emf`), valid by the EMF rules: an answered Converse
/// with its usage, and a refusal by reason. Without it, nothing is written.
#[test]
fn emf_lines_are_published_when_turned_on_and_follow_the_specification() {
    let mut inner = Rc::try_unwrap(shared(&bundle(), None)).ok().unwrap();
    inner.emf_namespace = Some("BedrockGuard".into());
    let shared = Rc::new(inner);
    let host = Rc::new(FakeHost::new());
    let mut f = filter(&host, &shared);
    invoke(&host, TITAN, &[]);
    f.on_http_request_headers(7, true);
    answer_from(&host, "10.0.0.5:443");
    f.on_http_response_headers(3, false);
    *host.response_body.borrow_mut() =
        br#"{"usage":{"inputTokens":5,"outputTokens":6,"cacheWriteInputTokens":2}}"#.to_vec();
    let n = host.response_body.borrow().len();
    f.on_http_response_body(n, true);
    host.now_ms.set(host.now_ms.get() + 30);
    f.on_log();
    let emf = |host: &FakeHost| {
        let written = host.written.borrow();
        String::from_utf8(written.get(super::EMF_PROPERTY).unwrap().clone()).unwrap()
    };
    let start = 1_760_000_000_000;
    let v = crate::emf::tests::assert_valid_emf(&emf(&host), start);
    assert_eq!(v["ModelId"], TITAN);
    assert_eq!(v["_aws"]["Timestamp"], start);
    assert_eq!(v["Invocations"], 1);
    assert_eq!(v["InvocationLatency"], 30);
    assert_eq!(v["InputTokenCount"], 5);
    assert_eq!(v["CacheWriteInputTokenCount"], 2);

    let host = Rc::new(FakeHost::new());
    let mut f = filter(&host, &shared);
    invoke(&host, "meta.llama3-8b-instruct-v1:0", &[]);
    f.on_http_request_headers(7, true);
    f.on_log();
    let v = crate::emf::tests::assert_valid_emf(&emf(&host), start);
    assert_eq!(
        (v["ModelId"].clone(), v["GuardRefusals"].clone()),
        (json!("other"), json!(1))
    );
    assert_eq!(v["Reason"], "model_not_allowed");
    assert!(v.get("Invocations").is_none());

    let host = Rc::new(FakeHost::new());
    let plain = self::shared(&bundle(), None);
    let mut f = filter(&host, &plain);
    invoke(&host, TITAN, &[]);
    f.on_http_request_headers(7, true);
    f.on_log();
    assert!(!host.written.borrow().contains_key(super::EMF_PROPERTY));
}
