//! `cargo bench -p bedrock-guard-policies --bench decide` (run by `make bench`): the engine's
//! per-request work, natively, with the rule count growing from 10 to 10,000.
//!
//! For each bundle size it times, per request: `evaluate` (the whole head decision the filter
//! asks for: route, destination, credential, model canonicalisation, rules) of an allowed
//! Converse whose model matches the LAST allow rule (the worst case for a linear scan), the
//! same for a refused model (every rule tried), and building plus serialising the audit record
//! for the allowed one. The rules are a realistic mix: each allows a few literal model ids and
//! one wildcard family for a few operations; every tenth is a deny rule.
//!
//! Prints one JSON object per line (`bench/bench.py` collects them) and a table. Times are the
//! median of 9 batches; native code, so V8 in Envoy runs the same work some tens of percent
//! slower.

use std::hint::black_box;
use std::time::Instant;

use policies::audit::AuditRecord;
use policies::{evaluate, CompiledPolicy, HeadOutcome, Reason, RequestFacts};
use serde_json::json;

const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const SIGV4: &[u8] = b"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261130/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn bundle(rules: usize) -> CompiledPolicy {
    let mut list = Vec::with_capacity(rules);
    for i in 0..rules {
        if i % 10 == 9 {
            list.push(json!({"id": format!("deny-{i}"), "effect": "deny",
                             "models": [format!("vendor{i}.blocked-*")]}));
        } else {
            list.push(json!({
                "id": format!("allow-{i}"), "effect": "allow",
                "operations": ["Converse", "ConverseStream", "InvokeModel"],
                "models": [format!("vendor{i}.model-a-v1:0"), format!("vendor{i}.model-b-v1:0"),
                           format!("vendor{i}.family-*")]
            }));
        }
    }
    let b = json!({
        "apiVersion": "bedrock-guard/v1", "kind": "PolicyBundle",
        "metadata": {"name": format!("bench-{rules}"), "revision": "1"},
        "endpoints": [{"host": HOST, "region": "us-east-1", "private_dns": true,
                       "cidrs": ["10.0.0.0/8"]}],
        "rules": list
    });
    CompiledPolicy::from_json(b.to_string().as_bytes()).expect("bench bundle compiles")
}

/// Median nanoseconds per call of `f` over 9 batches of `n` calls.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let mut batches: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[4]
}

fn main() {
    println!("engine decision per request (native, median of 9 batches)");
    println!(
        "{:>7} {:>12} {:>12} {:>14}",
        "rules", "allow ns", "refuse ns", "audit rec ns"
    );
    for rules in [10usize, 1_000, 10_000] {
        let policy = bundle(rules);
        // The last allow rule's literal model, and a model no rule allows.
        let last = (0..rules).rev().find(|i| i % 10 != 9).unwrap_or(0);
        let allowed = format!("/model/vendor{last}.model-b-v1%3A0/converse");
        let refused = "/model/unknown.model-v1%3A0/converse".to_string();
        let headers: [(&str, &[u8]); 4] = [
            ("authorization", SIGV4),
            ("content-type", b"application/json"),
            ("x-amz-date", b"20261130T000000Z"),
            ("host", HOST.as_bytes()),
        ];
        let facts = |path: &'static str| RequestFacts {
            method: b"POST",
            path: path.as_bytes(),
            authority: HOST.as_bytes(),
            scheme: b"https",
            headers: &headers,
            ..RequestFacts::default()
        };
        let allowed: &'static str = Box::leak(allowed.into_boxed_str());
        let refused: &'static str = Box::leak(refused.into_boxed_str());
        let check = evaluate(&policy, &facts(allowed));
        assert!(
            matches!(&check.outcome, HeadOutcome::Decided(d) if d.reason == Reason::Allowed),
            "{:?}",
            check.outcome
        );
        let check = evaluate(&policy, &facts(refused));
        assert!(
            matches!(&check.outcome, HeadOutcome::Decided(d) if d.reason == Reason::ModelNotAllowed)
        );
        let n = if rules >= 10_000 { 200 } else { 20_000 };
        let allow_ns = time(n, || {
            black_box(evaluate(black_box(&policy), black_box(&facts(allowed))));
        });
        let refuse_ns = time(n, || {
            black_box(evaluate(black_box(&policy), black_box(&facts(refused))));
        });
        let evaluation = evaluate(&policy, &facts(allowed));
        let record_ns = time(20_000, || {
            let record = AuditRecord::from_evaluation(&policy, black_box(&evaluation), 1);
            black_box(record.to_json_line());
        });
        println!("{rules:>7} {allow_ns:>12.0} {refuse_ns:>12.0} {record_ns:>14.0}");
        println!(
            "{}",
            json!({"bench": "engine_decision", "rules": rules, "allow_ns": allow_ns,
                   "refuse_ns": refuse_ns, "audit_record_ns": record_ns})
        );
    }
}
