"""`bedrock-guard iam` (docs/iam.md): the policies it writes are valid IAM, and wherever IAM can
decide a case of `policies/examples/*.cases.json`, the policies decide it as the engine does.

* Every document is linted with parliament (pinned in tests/requirements.txt). Two kinds of
  finding are accepted, each checked rather than waved through: UNKNOWN_ACTION for the actions
  newer than parliament's bundled IAM data (AWS documents them: docs/iam.md), and
  RESOURCE_MISMATCH where every resource of the statement has a resource format of the action
  in parliament's own data (parliament wants every alternative resource type of InvokeModel in
  one statement).
* Every case is run through `bedrock-guard explain --json` (the engine). A case IAM can decide
  is then turned into the IAM authorisations Bedrock makes (the action of the operation on the
  model's ARN in the endpoint's region; for an inference profile, also the destination
  foundation model with `bedrock:InferenceProfileArn`) and evaluated against the generated
  policies with `harness/iam_eval.py`. The two verdicts must agree.

A case is one IAM can decide when the engine decided it on the model and the operation (the
rule steps, or the model ARN's region or account), its operation is authorised on the model
alone, and the generator did not report its operation or its rules as beyond IAM
(`cannot_express`). The classes left out are counted and printed.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.harness import iam_eval
from tests.harness.envoy import REPO_ROOT
from tests.harness.iam_eval import Request, Unsupported, evaluate

EXAMPLES = REPO_ROOT / "policies" / "examples"
BUNDLES = sorted(p for p in EXAMPLES.glob("*.json") if not p.name.endswith(".cases.json"))
# A VPC endpoint id for endpoints named by service name (the bundle cannot carry one).
EXTRA_VPCE = "vpce-0fedcba9876543210"
# Actions AWS documents that parliament 1.6.4's bundled data (2025-04) predates.
NEWER_ACTIONS = {"bedrock:CountTokens", "bedrock:CallWithBearerToken"}
DECIDED_ON_MODEL = {"enforced deny rules", "allow rules", "dry-run deny rules", "allowed",
                    "model ARNs"}
# The model behind an application inference profile is not in the request.
HIDDEN_MODEL = "example.hidden-model-v1"


def generate(cli: Path, bundle: Path) -> dict:
    proc = subprocess.run([str(cli), "iam", str(bundle), "--scp", "--vpce-id", EXTRA_VPCE],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- the evaluator itself ---------------------------------------------------------------------------

def test_resource_wildcards_follow_iam_segment_rules():
    fm = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert iam_eval.resource_matches("arn:aws:bedrock:*::foundation-model/anthropic.*", fm)
    # `*` in the resource segment spans ':' and '/'.
    assert iam_eval.resource_matches("arn:aws:bedrock:us-east-1::foundation-model*", fm)
    # `?` is exactly one character.
    assert iam_eval.resource_matches("arn:aws:bedrock:us-east-?::foundation-model/*", fm)
    assert not iam_eval.resource_matches("arn:aws:bedrock:us-east-??::foundation-model/*", fm)
    assert not iam_eval.resource_matches("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1?", fm)
    # A `*` inside a segment does not cross a colon; one that ends a segment may.
    assert not iam_eval.resource_matches("arn:aws:bedrock:us-*-1:123456789012:inference-profile/x",
                                         "arn:aws:bedrock:us-east:1:123456789012:inference-profile/x")
    assert not iam_eval.resource_matches("arn:aws:bedrock:*:123456789012:inference-profile/x",
                                         "arn:aws:bedrock:us-east-1:999999999999:inference-profile/x")
    # Case-sensitive resources, case-insensitive actions.
    assert not iam_eval.resource_matches("arn:aws:bedrock:*::foundation-model/Anthropic.*", fm)
    assert iam_eval.action_matches("bedrock:invokemodel", "bedrock:InvokeModel")
    assert iam_eval.action_matches("bedrock:Invoke*", "bedrock:InvokeModelWithResponseStream")
    assert not iam_eval.action_matches("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
    with pytest.raises(Unsupported):
        iam_eval.resource_matches("arn:aws:*:us-east-1::foundation-model/x", fm)


def test_arn_like_checks_each_segment_separately():
    # The IAM User Guide's own example: StringLike would match, ArnLike does not.
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    assert not iam_eval.arn_like("arn:aws:someservice:*:111122223333:finance/*", value)
    assert iam_eval.arn_like("arn:aws:someservice:*:999999999999:store/*", value)


def test_deny_wins_and_conditions():
    policy = {"Statement": [
        {"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": "*"},
        {"Effect": "Deny", "Action": "bedrock:*", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:SourceVpce": ["vpce-11112222"]},
                       "Null": {"bedrock:InferenceProfileArn": "true"}}},
    ]}
    fm = "arn:aws:bedrock:us-east-1::foundation-model/x"
    assert evaluate(policy, Request("bedrock:InvokeModel", fm, {"aws:SourceVpce": "vpce-11112222"})) == "Allow"
    # No aws:SourceVpce at all: StringNotEquals holds, so the deny applies.
    assert evaluate(policy, Request("bedrock:InvokeModel", fm, {})) == "Deny"
    assert evaluate(policy, Request("bedrock:InvokeModel", fm, {"aws:sourcevpce": "vpce-99998888"})) == "Deny"
    # The Null exemption.
    assert evaluate(policy, Request("bedrock:InvokeModel", fm, {
        "bedrock:InferenceProfileArn": "arn:aws:bedrock:us-east-1:1:inference-profile/us.x"})) == "Allow"
    assert evaluate(policy, Request("bedrock:Converse", fm, {"aws:SourceVpce": "vpce-11112222"})) == "ImplicitDeny"
    with pytest.raises(Unsupported):
        evaluate({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                                 "Condition": {"StringLike": {"k": "v"}}}]},
                 Request("bedrock:InvokeModel", fm))


# -- lint ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.stem)
def test_policies_lint_clean_with_parliament(cli, bundle):
    from parliament import analyze_policy_string, is_arn_match
    from parliament.statement import get_arn_format, get_privilege_info

    out = generate(cli, bundle)
    assert set(out["policies"]) == {"identity_policy", "vpc_endpoint_policy",
                                    "service_control_policy"}
    for name, doc in out["policies"].items():
        statements = doc["Statement"]
        assert statements and doc["Version"] == "2012-10-17"
        findings = analyze_policy_string(json.dumps(doc), ignore_private_auditors=True).findings
        for f in findings:
            if f.issue == "UNKNOWN_ACTION":
                assert f.location["string"] in NEWER_ACTIONS, (name, f.issue, f.detail)
                continue
            assert f.issue == "RESOURCE_MISMATCH", (name, f.issue, f.detail)
            # Each resource of every statement with these actions fits one of the action's
            # formats (parliament's finding names the statement by its position only).
            for stmt, d in ((s, d) for s in statements for d in f.detail
                            if d["action"] in s["Action"]):
                service, action = d["action"].split(":")
                info = get_privilege_info(service, action)
                formats = [(rt["resource_type"],
                            get_arn_format(rt["resource_type"], info["service_resources"]))
                           for rt in info["resource_types"] if rt["resource_type"]]
                for r in stmt["Resource"]:
                    assert r == "*" or any(is_arn_match(t, fmt, r) for t, fmt in formats), (name, r)
        if name == "service_control_policy":
            assert all(s["Effect"] == "Deny" for s in statements)
            assert any(s["Action"] == ["bedrock:PutModelInvocationLoggingConfiguration"]
                       for s in statements)


# -- agreement with the engine ---------------------------------------------------------------------

def explain(cli: Path, bundle: Path, case: dict, work: Path) -> dict:
    from tests.test_e2e_explain_agrees import case_request
    req = case_request(case["request"], json.loads(bundle.read_text()))
    args = [str(cli), "explain", str(bundle), "--json", "--method", req.method, "--path", req.path]
    if req.authority_given:
        args += ["--authority", req.authority]
    for name, value in req.headers:
        args += ["--header", f"{name}: {value}"]
    if req.body is not None:
        (work / "body").write_bytes(req.body)
        args += ["--body", str(work / "body")]
    if req.destination is not None:
        args += ["--destination", req.destination]
    caller = case["request"].get("caller")
    if caller:
        args += ["--caller-sub", caller["subject"]]
        args += [a for g in caller.get("groups", []) for a in ("--caller-group", g)]
        args += [a for k, v in (caller.get("claims") or {}).items()
                 for a in ("--caller-claim", f"{k}={v}")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {**json.loads(proc.stdout), "authority": req.authority, "body": req.body}


def model_pattern_matches(pattern: str, model: str) -> bool:
    return iam_eval.action_matches(pattern, model)  # `*`/`?` over the whole id, any case


def undecidable(case: dict, explained: dict, bundle: dict, out: dict) -> str | None:
    """Why IAM cannot decide this case (a class), or None."""
    step = explained.get("step")
    if step not in DECIDED_ON_MODEL:
        return f"decided before the rules ({step})"
    op = explained["operation"]
    actions = out["actions"][op]
    if actions["other"] or not actions["model"]:
        return "operation authorised on more than the model"
    if case["request"].get("token"):
        return "jwt_principals"
    models = explained["models"]
    for entry in out["cannot_express"]:
        if entry["class"] == "operation_granularity" and op in entry["operations"]:
            return "operation_granularity"
    for rule in bundle.get("rules", []):
        if "principals" in rule and (
                "models" not in rule
                or any(model_pattern_matches(p, m) for p in rule["models"] for m in models)):
            return "jwt_principals"
    return None


def authorisations(explained: dict, bundle: dict, out: dict) -> list[Request]:
    endpoint = next(e for e in bundle["endpoints"] if e["host"] == explained["authority"])
    region = endpoint["region"]
    partition = "aws"
    vpce = next((v for v in out["vpc_endpoint_ids"] if endpoint["host"].startswith(v + "-")),
                EXTRA_VPCE)
    account = (bundle.get("accounts") or ["111122223333"])[0]
    context = {"aws:SourceVpce": vpce, "aws:PrincipalAccount": account}
    org = (bundle.get("aws") or {}).get("principal_org_id")
    if org:
        context["aws:PrincipalOrgID"] = org
    model_actions = out["actions"][explained["operation"]]["model"]
    if len(model_actions) == 1:
        action = model_actions[0]
    else:  # streaming or not is the body's `stream`
        body = json.loads(explained["body"] or b"{}")
        action = ("bedrock:InvokeModelWithResponseStream" if body.get("stream") is True
                  else "bedrock:InvokeModel")
    requests = []
    for model in explained["models"]:
        if model.startswith("arn:"):
            requests.append(Request(action, model, context))
            rtype, _, rid = model.split(":", 5)[5].partition("/")
            if rtype == "inference-profile" and rid.count(".") >= 2:
                base = rid.split(".", 1)[1]
                fm = f"arn:{partition}:bedrock:{region}::foundation-model/{base}"
            elif rtype in ("inference-profile", "application-inference-profile"):
                fm = f"arn:{partition}:bedrock:{region}::foundation-model/{HIDDEN_MODEL}"
            else:
                continue
            requests.append(Request(action, fm, {**context, "bedrock:InferenceProfileArn": model}))
        elif model.count(".") >= 2:
            profile = f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model}"
            base = model.split(".", 1)[1]
            requests.append(Request(action, profile, context))
            requests.append(Request(action, f"arn:{partition}:bedrock:{region}::foundation-model/{base}",
                                    {**context, "bedrock:InferenceProfileArn": profile}))
        else:
            requests.append(Request(action, f"arn:{partition}:bedrock:{region}::foundation-model/{model}",
                                    context))
    return requests


def test_iam_agrees_with_the_engine_wherever_it_can_decide(cli, tmp_path):
    decided = 0
    left_out: Counter = Counter()
    verdicts: Counter = Counter()
    for case_file in sorted(EXAMPLES.glob("*.cases.json")):
        bundle_path = case_file.with_name(case_file.name.removesuffix(".cases.json") + ".json")
        bundle = json.loads(bundle_path.read_text())
        out = generate(cli, bundle_path)
        doc = json.loads(case_file.read_text())
        for case in doc["cases"] if isinstance(doc, dict) else doc:
            explained = explain(cli, bundle_path, case, tmp_path)
            assert explained["verdict"] == case["expect"]["verdict"], case["name"]
            why = undecidable(case, explained, bundle, out)
            if why:
                left_out[why] += 1
                continue
            iam = "allow" if iam_eval.authorized(out["policies"],
                                                 authorisations(explained, bundle, out)) else "deny"
            assert iam == explained["verdict"], (case_file.name, case["name"], explained["reason"])
            decided += 1
            verdicts[iam] += 1
    print(f"\nIAM decided {decided} cases ({dict(verdicts)}); left out: {dict(left_out)}")
    # Not vacuous: both verdicts, and most model-decided cases.
    assert decided >= 20 and verdicts["allow"] >= 5 and verdicts["deny"] >= 5


def test_the_policies_would_refuse_what_the_bundle_refuses(cli):
    """Near misses through the evaluator: a denied model, a model in no rule, another region,
    another endpoint, an API key."""
    bundle_path = EXAMPLES / "demo.json"
    out = generate(cli, bundle_path)
    p = out["policies"]
    ctx = {"aws:SourceVpce": "vpce-0a1b2c3d4e5f67890", "aws:PrincipalAccount": "123456789012"}
    ok = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0"
    assert iam_eval.authorized(p, [Request("bedrock:InvokeModel", ok, ctx)])
    assert not iam_eval.authorized(p, [Request("bedrock:InvokeModel", ok.replace("us-east-1", "us-west-2"), ctx)])
    assert not iam_eval.authorized(p, [Request("bedrock:InvokeModel", ok, {**ctx, "aws:SourceVpce": "vpce-99998888"})])
    assert not iam_eval.authorized(p, [Request("bedrock:InvokeModel", ok, {**ctx, "aws:PrincipalAccount": "999999999999"})])
    opus = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-20250514-v1:0"
    assert evaluate(p["identity_policy"], Request("bedrock:InvokeModel", opus, ctx)) == "Deny"
    assert evaluate(p["service_control_policy"], Request("bedrock:CallWithBearerToken", "*", ctx)) == "Deny"
    assert evaluate(p["service_control_policy"], Request(
        "bedrock:PutModelInvocationLoggingConfiguration", "*", ctx)) == "Deny"
