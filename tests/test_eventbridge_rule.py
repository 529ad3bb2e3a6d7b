"""The shipped EventBridge rule (envoy/observability/eventbridge-rule.json) routes deny alerts
for destination refusals and nothing else. Matching follows tests/harness/event_pattern.py; the
end-to-end test (test_e2e_eventbridge.py) applies the same rule to the entries Envoy sent."""

import json

import pytest

from tests.harness.event_pattern import envelope, load_rule, matches

DESTINATION = ["destination_not_privatelink"]
OTHERS = ["model_not_allowed", "model_denied", "identity_missing", "region_not_allowed",
          "account_not_allowed", "policy_unavailable"]


def entry(reason: str, *, source: str = "bedrock-guard",
          detail_type: str = "Bedrock request denied", mode: str = "enforce") -> dict:
    record = {"eventVersion": "1.0", "requestID": "r-1", "decision": "deny", "reason": reason,
              "mode": mode, "endpoint": "bedrock-runtime.us-east-1.amazonaws.com"}
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps(record),
            "EventBusName": "bedrock-guard-alerts"}


def test_every_refusal_reason_in_the_docs_is_classified_here():
    from tests.harness.envoy import REPO_ROOT
    text = (REPO_ROOT / "docs" / "reasons.md").read_text()
    documented = {line.split("`")[1] for line in text.splitlines()
                  if line.startswith("| `") and ("| 403 |" in line or "| 413 |" in line)}
    assert "model_not_allowed" in documented and "identity_missing" in documented
    destination = {r for r in documented if r.startswith("destination_")}
    assert destination == set(DESTINATION), "a new destination reason: check the rule"


@pytest.mark.parametrize("reason", DESTINATION)
def test_the_rule_matches_destination_refusals(reason):
    assert matches(load_rule(), envelope(entry(reason)))
    assert matches(load_rule(), envelope(entry(reason, mode="dry_run")))


@pytest.mark.parametrize("reason", OTHERS)
def test_the_rule_ignores_other_refusals(reason):
    assert not matches(load_rule(), envelope(entry(reason)))


def test_the_rule_ignores_other_sources_and_detail_types():
    assert not matches(load_rule(), envelope(entry(DESTINATION[0], source="acme.other")))
    assert not matches(load_rule(), envelope(entry(DESTINATION[0], detail_type="Other")))


def test_the_matcher_follows_eventbridge_semantics():
    pattern = {"detail": {"reason": ["a", {"prefix": "dest"}], "tags": ["x"]}}
    assert matches(pattern, {"detail": {"reason": "a", "tags": ["y", "x"]}})
    assert matches(pattern, {"detail": {"reason": "destination", "tags": "x"}})
    assert not matches(pattern, {"detail": {"reason": "A", "tags": "x"}}), "case-sensitive"
    assert not matches(pattern, {"detail": {"reason": "a"}}), "every named field must exist"
    assert not matches({"n": ["1"]}, {"n": 1}), "a string never equals a number"
    with pytest.raises(NotImplementedError):
        matches({"r": [{"suffix": "x"}]}, {"r": "x"})
