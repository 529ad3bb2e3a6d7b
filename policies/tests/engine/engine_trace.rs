//! The engine's own trace of a decision (`engine::decide_traced`, issue 13 item 2): the step
//! that decided, and for every rule whether the engine tried it and what it found. The trace
//! must tell the same story as the decision: named cases per class, then every case of the
//! example case files and arbitrary requests checked against the invariants in `consistent`.

use std::net::IpAddr;
use std::sync::Arc;

use policies::bundle::schema::Effect;
use policies::engine::{decide_traced, RuleTrace, Step, TracedRule, DECISION_STEPS};
use policies::identity::{Caller, Principal};
use policies::{decide, CompiledPolicy, Decision, Mode, Reason, RequestFacts};
use proptest::prelude::*;
use serde_json::{json, Value};

const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const AGENT_HOST: &str = "bedrock-agent-runtime.us-east-1.amazonaws.com";
const SONNET: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const RERANK_ARN: &str = "arn:aws:bedrock:us-east-1::foundation-model/amazon.rerank-v1:0";

fn bundle(rules: Value) -> Value {
    json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": { "name": "trace", "revision": "1" },
        "endpoints": [
            { "host": HOST, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] },
            { "host": AGENT_HOST, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] }
        ],
        "rules": rules
    })
}

fn compile(v: &Value) -> CompiledPolicy {
    CompiledPolicy::from_json(v.to_string().as_bytes()).expect("bundle compiles")
}

/// rules[0..=2] allow, rules[3] an enforced deny, rules[4] a dry-run deny.
fn policy() -> CompiledPolicy {
    compile(&bundle(json!([
        { "id": "claude", "effect": "allow", "models": ["anthropic.*", "us.anthropic.*"],
          "operations": ["Converse", "InvokeInlineAgent"] },
        { "id": "rerank", "effect": "allow", "models": ["amazon.rerank-*"],
          "operations": ["InvokeInlineAgent"] },
        { "id": "lists", "effect": "allow", "operations": ["ListAsyncInvokes", "GetAsyncInvoke"] },
        { "id": "no-opus", "effect": "deny", "models": ["*opus*"] },
        { "id": "watch-haiku", "effect": "deny", "mode": "dry-run", "models": ["*haiku*"] }
    ])))
}

/// rules[0] allows the `ml` group, rules[1] denies `interns` everything.
fn identity_policy() -> CompiledPolicy {
    let mut v = bundle(json!([
        { "id": "ml", "effect": "allow", "principals": { "groups": ["ml"] },
          "models": ["anthropic.*"], "operations": ["Converse"] },
        { "id": "interns", "effect": "deny", "principals": { "groups": ["interns"] }, "models": ["*"] }
    ]));
    v["identity"] = json!({ "providers": [{
        "name": "idp", "issuer": "https://idp.example", "audiences": ["bedrock"],
        "algorithms": ["RS256"], "remote_jwks": { "cluster": "idp", "path": "/jwks" }
    }]});
    compile(&v)
}

fn caller(groups: &[&str]) -> Caller {
    Caller::Verified(Arc::new(Principal {
        issuer: "https://idp.example".into(),
        subject: "svc".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        claims: serde_json::Map::new(),
    }))
}

/// A request, owned, so a test can build one and then borrow it as `RequestFacts`.
#[derive(Clone, Default)]
struct Req {
    method: String,
    path: String,
    authority: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    destination: Option<IpAddr>,
    caller: Caller,
}

impl Req {
    fn converse(model: &str) -> Req {
        Req {
            method: "POST".into(),
            path: format!(
                "/model/{}/converse",
                model.replace(':', "%3A").replace('/', "%2F")
            ),
            authority: HOST.into(),
            ..Req::default()
        }
    }

    fn get(path: &str) -> Req {
        Req {
            method: "GET".into(),
            path: path.into(),
            authority: HOST.into(),
            ..Req::default()
        }
    }

    fn inline_agent(body: Value) -> Req {
        Req {
            method: "POST".into(),
            path: "/agents/s1".into(),
            authority: AGENT_HOST.into(),
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: Some(body.to_string().into_bytes()),
            ..Req::default()
        }
    }

    fn by(mut self, caller: Caller) -> Req {
        self.caller = caller;
        self
    }

    /// The engine's decision with its trace, checked against `decide` and the invariants.
    fn traced(&self, policy: &CompiledPolicy) -> (Decision, RuleTrace) {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let facts = RequestFacts {
            method: self.method.as_bytes(),
            path: self.path.as_bytes(),
            authority: self.authority.as_bytes(),
            scheme: b"https",
            headers: &headers,
            body: self.body.as_deref(),
            original_destination: self.destination,
            caller: self.caller.clone(),
            token: None,
        };
        let (decision, trace) = decide_traced(policy, &facts);
        consistent(policy, &decision, &trace, &decide(policy, &facts));
        (decision, trace)
    }
}

fn rule(trace: &RuleTrace, index: usize) -> &TracedRule {
    trace.rule(index).expect("the trace lists every rule")
}

/// Positions of the request's models, by name.
fn at(decision: &Decision, models: &[&str]) -> Vec<usize> {
    models
        .iter()
        .map(|m| {
            decision
                .models
                .iter()
                .position(|d| d == m)
                .unwrap_or_else(|| panic!("{m} is not among {:?}", decision.models))
        })
        .collect()
}

/// What every trace must say about its decision.
fn consistent(policy: &CompiledPolicy, d: &Decision, t: &RuleTrace, plain: &Decision) {
    let at = format!("{d:?}\n{t:#?}");
    // The traced decision is the filter's.
    assert_eq!(d, plain, "decide_traced and decide disagree\n{at}");
    // The step that decided lists the reason, and names a row of DECISION_STEPS.
    let step = t.step.expect("a decided request has a deciding step");
    assert!(
        step.reasons().contains(&d.reason),
        "{step} cannot decide {}\n{at}",
        d.reason
    );
    assert_eq!(DECISION_STEPS[step as usize].0, step.name());
    assert_eq!(t.rules_reached(), step.is_rule_step(), "{at}");
    // Every rule is listed once, in bundle order.
    assert_eq!(t.rules.len(), policy.rule_count(), "{at}");
    assert!(
        t.rules.iter().enumerate().all(|(i, r)| r.index == i),
        "{at}"
    );
    // `order` names each tried rule once: every deny rule tried before any allow rule.
    let mut seen = t.order.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen.len(),
        t.order.len(),
        "a rule listed twice in order\n{at}"
    );
    for r in &t.rules {
        assert_eq!(r.tried, t.order.contains(&r.index), "{at}");
    }
    let effects: Vec<Effect> = t.tried().map(|r| r.effect).collect();
    assert!(
        effects
            .windows(2)
            .all(|w| !(w[0] == Effect::Allow && w[1] == Effect::Deny)),
        "an allow rule tried before a deny rule\n{at}"
    );
    // The rule that decided is the decision's rule.
    let decided = t.decided_by.map(|i| rule(t, i));
    assert_eq!(decided.map(|r| r.id.as_str()), d.rule_id.as_deref(), "{at}");
    assert_eq!(
        t.rules.iter().filter(|r| r.decided).count(),
        usize::from(decided.is_some())
    );
    if !t.rules_reached() {
        assert!(t.order.is_empty() && decided.is_none(), "{at}");
    }
    match step {
        Step::EnforcedDenyRules => {
            let r = decided.expect("an enforced deny rule decided");
            assert!(
                r.effect == Effect::Deny && r.mode == Mode::Enforce && r.matched,
                "{at}"
            );
            assert_eq!(
                t.order.last(),
                Some(&r.index),
                "the enforced deny ends the trace\n{at}"
            );
        }
        Step::AllowRules => assert!(decided.is_none(), "{at}"),
        Step::DryRunDenyRules => {
            let r = decided.expect("a dry-run deny rule decided");
            assert!(
                r.effect == Effect::Deny && r.mode == Mode::DryRun && r.matched,
                "{at}"
            );
            assert_eq!(d.mode, Mode::DryRun);
        }
        Step::Allowed => {
            let r = decided.expect("an allow rule decided");
            assert!(r.effect == Effect::Allow && r.matched, "{at}");
        }
        _ => {}
    }
    if step > Step::EnforcedDenyRules {
        // No enforced deny decided, so every deny rule was tried and none enforced matched.
        for r in t.rules.iter().filter(|r| r.effect == Effect::Deny) {
            assert!(r.tried, "{at}");
            assert!(!(r.matched && r.mode == Mode::Enforce), "{at}");
        }
    }
    // Each finding agrees with the conclusion drawn from it.
    for r in t.tried() {
        let conditions = r.operation_matches != Some(false) && r.principals_match != Some(false);
        assert_eq!(r.operation_matches.is_some(), r.names_operations, "{at}");
        assert_eq!(r.principals_match.is_some(), r.names_principals, "{at}");
        assert_eq!(r.models_matched.is_some(), r.names_models, "{at}");
        let matched = match (r.effect, &r.models_matched) {
            (Effect::Deny, None) => conditions,
            (Effect::Deny, Some(m)) => conditions && !m.is_empty(),
            // A request naming no model: a rule without models, or one naming operations.
            (Effect::Allow, _) if d.models.is_empty() && t.rules_reached() => {
                conditions && (!r.names_models || r.names_operations)
            }
            (Effect::Allow, None) => false,
            (Effect::Allow, Some(m)) => conditions && r.models_tried.iter().any(|i| m.contains(i)),
        };
        assert_eq!(r.matched, matched, "rules[{}]\n{at}", r.index);
    }
    for r in t.rules.iter().filter(|r| !r.tried) {
        assert!(
            !r.matched && !r.decided && r.models_tried.is_empty(),
            "{at}"
        );
        assert!(
            r.operation_matches.is_none() && r.models_matched.is_none(),
            "{at}"
        );
    }
}

// ---- named cases ---------------------------------------------------------------------------

#[test]
fn an_enforced_deny_decides_and_no_later_rule_is_tried() {
    let (d, t) = Req::converse("anthropic.claude-opus-4-20250514-v1:0").traced(&policy());
    assert_eq!(
        (d.reason, d.rule_id.as_deref()),
        (Reason::ModelDenied, Some("no-opus"))
    );
    assert_eq!(t.step, Some(Step::EnforcedDenyRules));
    assert_eq!(t.order, [3]);
    assert_eq!(t.decided_by, Some(3));
    let deny = rule(&t, 3);
    assert!(deny.matched && deny.decided);
    assert_eq!(deny.models_matched, Some(vec![0]));
    assert_eq!(deny.operation_matches, None);
    // Neither the dry-run deny nor any allow rule was tried (claude would have allowed it).
    assert!([0, 1, 2, 4].iter().all(|&i| !rule(&t, i).tried));
}

#[test]
fn a_dry_run_deny_decides_after_the_allow_rules_let_the_request_pass() {
    let (d, t) = Req::converse("anthropic.claude-3-haiku-20240307-v1:0").traced(&policy());
    assert_eq!((d.reason, d.mode), (Reason::ModelDenied, Mode::DryRun));
    assert_eq!(t.step, Some(Step::DryRunDenyRules));
    assert_eq!(t.order, [3, 4, 0]);
    assert_eq!(t.decided_by, Some(4));
    assert_eq!(rule(&t, 4).mode, Mode::DryRun);
    let claude = rule(&t, 0);
    assert!(claude.matched && !claude.decided);
}

#[test]
fn a_dry_run_deny_match_does_not_decide_a_request_no_rule_allows() {
    let (d, t) = Req::converse("meta.haiku-lookalike-v1:0").traced(&policy());
    assert_eq!(d.reason, Reason::ModelNotAllowed);
    assert_eq!(t.step, Some(Step::AllowRules));
    assert_eq!(t.order, [3, 4, 0, 1, 2]);
    assert_eq!(t.decided_by, None);
    assert!(rule(&t, 4).matched && !rule(&t, 4).decided);
    assert_eq!(rule(&t, 1).operation_matches, Some(false));
    assert_eq!(rule(&t, 0).models_matched, Some(vec![]));
}

#[test]
fn every_model_needs_an_allow_rule_and_the_first_models_rule_is_reported() {
    let body = json!({
        "foundationModel": SONNET, "inputText": "hi",
        "knowledgeBases": [{ "retrievalConfiguration": { "vectorSearchConfiguration": {
            "rerankingConfiguration": { "bedrockRerankingConfiguration": { "modelConfiguration": {
                "modelArn": RERANK_ARN } } } } } }]
    });
    let (d, t) = Req::inline_agent(body).traced(&policy());
    assert!(d.is_allow(), "{d:?}");
    let models = at(&d, &[SONNET, RERANK_ARN]);
    assert_eq!(t.step, Some(Step::Allowed));
    // claude allowed the foundation model and was tried for the reranker too; rerank then
    // allowed the reranker; lists was never needed.
    assert_eq!(t.order, [3, 4, 0, 1]);
    let claude = rule(&t, 0);
    assert_eq!(claude.models_matched, Some(vec![models[0]]));
    let mut tried = claude.models_tried.clone();
    tried.sort_unstable();
    let mut both = models.clone();
    both.sort_unstable();
    assert_eq!(tried, both);
    assert_eq!(rule(&t, 1).models_tried, [models[1]]);
    assert_eq!(rule(&t, 1).models_matched, Some(vec![models[1]]));
    let reported = if models[0] < models[1] { 0 } else { 1 };
    assert_eq!(t.decided_by, Some(reported), "the rule of the first model");
    assert!(!rule(&t, 2).tried);
}

#[test]
fn a_second_model_no_rule_allows_refuses_after_every_allow_rule_was_tried_for_it() {
    let other = "arn:aws:bedrock:us-east-1::foundation-model/cohere.rerank-v3-5:0";
    let body = json!({
        "foundationModel": SONNET, "inputText": "hi",
        "knowledgeBases": [{ "retrievalConfiguration": { "vectorSearchConfiguration": {
            "rerankingConfiguration": { "bedrockRerankingConfiguration": { "modelConfiguration": {
                "modelArn": other } } } } } }]
    });
    let (d, t) = Req::inline_agent(body).traced(&policy());
    assert_eq!(d.reason, Reason::ModelNotAllowed, "{d:?}");
    let cohere = at(&d, &[other])[0];
    assert_eq!(t.step, Some(Step::AllowRules));
    for i in 0..3 {
        assert!(rule(&t, i).models_tried.contains(&cohere), "rules[{i}]");
    }
    assert_eq!(t.decided_by, None);
}

#[test]
fn principals_are_reported_for_the_caller_the_engine_decided_for() {
    let p = identity_policy();
    let (d, t) = Req::converse(SONNET).by(caller(&["ml"])).traced(&p);
    assert!(d.is_allow());
    let interns = rule(&t, 1);
    assert_eq!(interns.principals_match, Some(false));
    assert_eq!(interns.models_matched, Some(vec![0]));
    assert!(!interns.matched);
    assert_eq!(rule(&t, 0).principals_match, Some(true));
    assert_eq!(t.decided_by, Some(0));

    let (d, t) = Req::converse(SONNET)
        .by(caller(&["ml", "interns"]))
        .traced(&p);
    assert_eq!(d.rule_id.as_deref(), Some("interns"));
    assert_eq!(rule(&t, 1).principals_match, Some(true));
    assert!(!rule(&t, 0).tried);

    let (d, t) = Req::converse(SONNET).by(caller(&[])).traced(&p);
    assert_eq!(d.reason, Reason::ModelNotAllowed);
    let ml = rule(&t, 0);
    assert_eq!(
        (
            ml.principals_match,
            ml.operation_matches,
            ml.models_matched.clone()
        ),
        (Some(false), Some(true), Some(vec![0]))
    );
}

#[test]
fn an_operation_naming_no_model_is_allowed_by_a_rule_without_models() {
    let (d, t) = Req::get("/async-invoke").traced(&policy());
    assert_eq!(d.rule_id.as_deref(), Some("lists"));
    assert_eq!(t.order, [3, 4, 0, 1, 2]);
    // The deny rules name models, so they cannot match a request naming none.
    assert_eq!(rule(&t, 3).models_matched, Some(vec![]));
    assert!(!rule(&t, 3).matched);
    assert_eq!(rule(&t, 0).operation_matches, Some(false));
    assert_eq!(rule(&t, 2).models_matched, None);
    assert!(rule(&t, 2).decided);

    let path = "/async-invoke/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aasync-invoke%2Fabcdef123456";
    let no_rule = compile(&bundle(json!([
        { "id": "claude", "effect": "allow", "models": ["anthropic.*"], "operations": ["Converse"] }
    ])));
    let (d, t) = Req::get(path).traced(&no_rule);
    assert_eq!(d.reason, Reason::OperationNotAllowed);
    assert_eq!(t.step, Some(Step::AllowRules));
    assert!(rule(&t, 0).tried && !rule(&t, 0).matched);
}

#[test]
fn a_request_refused_before_the_rules_has_an_empty_trace_naming_the_step() {
    let p = policy();
    let cases = [
        (Req::converse("x"), "/model/x/fine-tune", Step::Route),
        (Req::converse(SONNET), "", Step::Destination),
        (
            Req::converse("x"),
            "/model/x%252Fy/converse",
            Step::ModelIdAndBodyHead,
        ),
        (
            Req::converse("arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-x"),
            "",
            Step::ModelArns,
        ),
        (
            Req::converse("eu.anthropic.claude-opus-x"),
            "",
            Step::Geography,
        ),
    ];
    for (mut req, path, step) in cases {
        if !path.is_empty() {
            req.path = path.into();
        }
        if step == Step::Destination {
            req.authority = "evil.example".into();
        }
        let (d, t) = req.traced(&p);
        assert_eq!(t.step, Some(step), "{d:?}");
        assert!(!t.rules_reached() && t.order.is_empty());
        assert!(t.rules.iter().all(|r| !r.tried), "{t:?}");
    }
    let (d, t) = Req::converse(SONNET).traced(&identity_policy());
    assert_eq!(
        (d.reason, t.step),
        (Reason::IdentityMissing, Some(Step::Identity))
    );
    assert!(t.order.is_empty());
}

// ---- every example case, and arbitrary requests ----------------------------------------------

const EXAMPLES: &[(&str, &str)] = &[
    (
        include_str!("../../examples/demo.json"),
        include_str!("../../examples/demo.cases.json"),
    ),
    (
        include_str!("../../examples/identity.json"),
        include_str!("../../examples/identity.cases.json"),
    ),
];

/// A case's request as `bedrock-guard test` reads it (docs/cli.md "test"); a `caller` is taken
/// as verified. Cases with a `token` would need its keys: the example files have none.
fn case_request(policy: &CompiledPolicy, r: &Value) -> Req {
    assert!(
        r.get("token").is_none(),
        "example cases give callers, not tokens"
    );
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    match &r["headers"] {
        Value::Object(map) => {
            for (name, value) in map {
                let values = match value {
                    Value::Array(vs) => vs.clone(),
                    v => vec![v.clone()],
                };
                for v in values {
                    headers.push((
                        name.to_ascii_lowercase(),
                        v.as_str().unwrap().as_bytes().to_vec(),
                    ));
                }
            }
        }
        Value::Array(lines) => {
            for line in lines {
                let (name, value) = line.as_str().unwrap().split_once(':').unwrap();
                headers.push((
                    name.trim().to_ascii_lowercase(),
                    value.trim().as_bytes().to_vec(),
                ));
            }
        }
        _ => {}
    }
    let body = match &r["body"] {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        other => {
            if !headers.iter().any(|(n, _)| n == "content-type") {
                headers.push(("content-type".into(), b"application/json".to_vec()));
            }
            Some(other.to_string().into_bytes())
        }
    };
    let authority = match r["authority"].as_str() {
        Some(a) => a.to_string(),
        None => match headers.iter().find(|(n, _)| n == "host") {
            Some((_, v)) => String::from_utf8(v.clone()).unwrap(),
            None => policy.endpoints()[0].host.clone(),
        },
    };
    let caller = match &r["caller"] {
        Value::Null => Caller::Anonymous,
        c => Caller::Verified(Arc::new(Principal {
            issuer: String::new(),
            subject: c["subject"].as_str().unwrap().into(),
            groups: c["groups"]
                .as_array()
                .map(|g| g.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                .unwrap_or_default(),
            claims: c["claims"].as_object().cloned().unwrap_or_default(),
        })),
    };
    Req {
        method: r["method"].as_str().unwrap_or("POST").into(),
        path: r["path"].as_str().unwrap().into(),
        authority,
        headers,
        body,
        destination: r["destination"].as_str().map(|d| d.parse().unwrap()),
        caller,
    }
}

#[test]
fn every_example_case_has_a_trace_that_agrees_with_its_decision() {
    let mut steps = std::collections::BTreeSet::new();
    for (bundle, cases) in EXAMPLES {
        let p = CompiledPolicy::from_json(bundle.as_bytes()).unwrap();
        let cases: Value = serde_json::from_str(cases).unwrap();
        let cases = cases["cases"].as_array().unwrap();
        assert!(!cases.is_empty());
        for case in cases {
            let (d, t) = case_request(&p, &case["request"]).traced(&p);
            let expect = &case["expect"];
            assert_eq!(
                if d.is_allow() { "allow" } else { "deny" },
                expect["verdict"],
                "{}: {d:?}",
                case["name"]
            );
            if let Some(rule) = expect["rule"].as_str() {
                assert_eq!(d.rule_id.as_deref(), Some(rule), "{}", case["name"]);
            }
            steps.insert(t.step.unwrap());
        }
    }
    // Between them, the example cases are decided at every step of the engine.
    for step in Step::ALL {
        assert!(
            steps.contains(&step),
            "no example case decided at {step}: {steps:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn traces_agree_with_decisions_on_arbitrary_requests(
        model in "(us\\.|eu\\.|global\\.)?(anthropic|amazon|meta|cohere)\\.[a-z0-9-]{0,12}(opus|haiku|rerank)?[a-z0-9:-]{0,6}",
        op in prop_oneof![Just("converse"), Just("invoke"), Just("fine-tune")],
        groups in proptest::collection::vec(prop_oneof![Just("ml"), Just("interns"), Just("web")], 0..3),
        identity in any::<bool>(),
    ) {
        let path = format!("/model/{}/{op}", model.replace(':', "%3A"));
        let req = Req { path, ..Req::converse("x") };
        if identity {
            req.by(caller(&groups)).traced(&identity_policy());
        } else {
            req.traced(&policy());
        }
    }
}
