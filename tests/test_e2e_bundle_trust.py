"""Bundle trust: an anchored module, and what whoever writes the ECDS resource can no longer do.

A real Envoy runs `envoy/hot-reload-anchored.yaml`: the guard's configuration (module, VM
settings, bundle) comes from a watched directory, and a listener-level RBAC filter after the
guard admits only requests marked with the anchor's id. The module is the released
`dist/bedrock_guard.wasm` stamped by `bedrock-guard anchor` with the team's key, a minimum
revision and a bundle name. Each test plays a pusher who writes the ECDS resource directly
(as an xDS server or a compromised pipeline could) and shows the push refused by Envoy (its
ECDS `config_fail` increments, the guard's log says why) with the bundle in force unchanged:

* unsigned, signed by another key, or signed by another key that the resource pins in the VM
  configuration;
* a signed older revision (rollback), the same revision with other content, a revision below
  the anchor's minimum, another bundle name, another `vm_id`; the rollback also after a push
  that made Envoy create a new VM;
* a resource that swaps in another module (the unanchored one) is loaded by Envoy, and then
  every request is refused by the backstop, none reaches Bedrock.

It also shows the bundle in force in stats (revision, signed, anchored, key) and audit records
(`bundleKeyId`), with no digest in any stat name, and that counters survive a push that keeps
the module and VM settings.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from tests.conftest import WASM_PATH
from tests.harness.ecds import (Pusher, bundle, cli, client, config_fail, ensure_cli, outcome,
                                render, run_cli, wait_config_fail, wait_for_policy, wasm_config,
                                with_config, with_plugin_config)
from tests.harness.envoy import REPO_ROOT, EnvoyProcess, free_port
from tests.harness.mock_bedrock import MockBedrock
from tests.harness.stack import envoy_stack

MODEL_A = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MODEL_B = "amazon.titan-text-express-v1"
MIN_REVISION = 5
NAME = "trust-e2e"
P = "wasmcustom.bedrock_guard"


@pytest.fixture(scope="module")
def env(tmp_path_factory, pki_dir):
    ensure_cli()
    work = tmp_path_factory.mktemp("bundle-trust")
    anchored = work / "bedrock_guard.anchored.wasm"
    team = Pusher(work, anchored, pin=False)
    out = cli("anchor", "--wasm", str(WASM_PATH), "--pub", str(team.pub_path),
              "--min-revision", str(MIN_REVISION), "--bundle-name", NAME, "--out", str(anchored))
    anchor_id = re.search(r"anchor (anchor:[0-9a-f]{16})", out).group(1)
    team.push(bundle(MIN_REVISION, MODEL_A, NAME))
    mock = MockBedrock(pki_dir=pki_dir).start()
    listener, admin = free_port(), free_port()
    cfg = render(work, pki_dir, listener, admin, mock.port, team.ecds,
                 source="hot-reload-anchored.yaml", anchor_id=anchor_id)
    with envoy_stack(cfg, admin, listener, work) as proc:
        c = client(listener)
        wait_for_policy(c, MODEL_A, MODEL_B)
        yield {"proc": proc, "team": team, "mock": mock, "client": c, "work": work,
               "anchored": anchored, "anchor_id": anchor_id}
    mock.stop()


def signed_config(pusher: Pusher, b: dict) -> str:
    return json.dumps({"bundle": b, "signature": pusher.sign_raw(b)})


def refused_push(env, response: dict, log_says: str) -> None:
    """Write `response`; Envoy must reject it, the log must say why, and the policy in force
    (MODEL_A allowed, MODEL_B not) must stay."""
    proc, team, c = env["proc"], env["team"], env["client"]
    before = config_fail(proc)
    team.write_raw(response)
    wait_config_fail(proc, before)
    assert log_says in proc.log_text(), log_says
    for _ in range(5):
        assert outcome(c, MODEL_A) == "ok"
        assert outcome(c, MODEL_B) == "model_not_allowed"


def audit_records(proc: EnvoyProcess) -> list[dict]:
    return [json.loads(line) for line in proc.log_text().splitlines()
            if line.startswith('{"eventVersion"')]


def test_signed_bundle_in_force_shows_in_stats_and_audit(env):
    proc, team = env["proc"], env["team"]
    assert outcome(env["client"], MODEL_A) == "ok"
    stats = proc.stats(filter_regex="bedrock_guard")
    assert stats[f"{P}.bundle_revision"] == MIN_REVISION
    assert stats[f"{P}.bundle_signed"] == 1
    assert stats[f"{P}.bundle_anchored"] == 1
    key_stats = {k: v for k, v in stats.items() if k.startswith(f"{P}.bundle_key.")}
    assert key_stats == {f"{P}.bundle_key.{re.sub(r'[^A-Za-z0-9-]', '_', team.kid)}": 1}
    # No stat name carries a digest (each bundle would otherwise create a new series).
    assert not [k for k in stats if re.search(r"digest|[0-9a-f]{12}", k)], sorted(stats)
    rec = audit_records(proc)[-1]
    assert rec["bundleKeyId"] == team.kid
    assert rec["bundleRevision"] == str(MIN_REVISION)
    assert rec["bundleName"] == NAME
    assert f"anchored module ({env['anchor_id']})" in proc.log_text()


def test_unsigned_push_is_refused(env):
    team = env["team"]
    unsigned = bundle(MIN_REVISION + 50, MODEL_B, NAME)
    refused_push(env, with_plugin_config(team.pushed, json.dumps(unsigned)),
                 "bundle is not signed")


def test_push_signed_by_another_key_is_refused_even_when_it_pins_that_key(env):
    team, work = env["team"], env["work"]
    mallory = Pusher(work, env["anchored"], pin=False, key_name="mallory")
    b = bundle(MIN_REVISION + 51, MODEL_B, NAME)
    refused_push(env, with_plugin_config(team.pushed, signed_config(mallory, b)),
                 "bundle signature refused")
    # Mallory also pins her key in the VM configuration: an anchored module takes none.
    config = wasm_config(team.pushed)
    config["configuration"]["value"] = signed_config(mallory, b)
    jwk = json.loads((work / "mallory.pub.jwk.json").read_text())
    config["vm_config"]["configuration"] = {
        "@type": "type.googleapis.com/google.protobuf.StringValue",
        "value": json.dumps({"bundle_public_keys": [jwk]})}
    refused_push(env, with_config(team.pushed, config),
                 "may not pin bundle_public_keys")


def test_rollback_and_revision_reuse_are_refused(env):
    proc, team, c = env["proc"], env["team"], env["client"]
    # Revision 7 allows MODEL_A (the fixture's revision 5 did too); 6 is older.
    team.push(bundle(MIN_REVISION + 2, MODEL_A, NAME))
    wait_for_policy(c, MODEL_A, MODEL_B)
    assert proc.stats(filter_regex="bundle_revision")[f"{P}.bundle_revision"] == MIN_REVISION + 2
    older = bundle(MIN_REVISION + 1, MODEL_B, NAME)
    refused_push(env, with_plugin_config(team.pushed, signed_config(team, older)),
                 f"revision {MIN_REVISION + 1} is lower than revision {MIN_REVISION + 2}")
    other = bundle(MIN_REVISION + 2, MODEL_B, NAME)  # same revision, other content
    refused_push(env, with_plugin_config(team.pushed, signed_config(team, other)),
                 "a different bundle needs a higher revision")


def test_below_min_revision_is_refused_by_the_cli_and_by_the_module(env):
    team, work = env["team"], env["work"]
    low = bundle(MIN_REVISION - 1, MODEL_B, NAME)
    (work / "low.json").write_text(json.dumps(low))
    cli("sign", str(work / "low.json"), "--key", str(team.key_path), "--out",
        str(work / "low.jws"))
    proc = run_cli("ecds", str(work / "low.json"), "--out-dir", str(work / "elsewhere"),
                   "--sig", str(work / "low.jws"), "--wasm", str(env["anchored"]))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"below the anchor's min_revision {MIN_REVISION}" in proc.stderr, proc.stderr
    refused_push(env, with_plugin_config(team.pushed, signed_config(team, low)),
                 f"below the anchor's min_revision {MIN_REVISION}")


def test_other_bundle_name_and_other_vm_id_are_refused(env):
    team = env["team"]
    staging = bundle(MIN_REVISION + 60, MODEL_B, "staging")
    refused_push(env, with_plugin_config(team.pushed, signed_config(team, staging)),
                 'bundle name "staging" is not one the anchor admits')
    config = wasm_config(team.pushed)
    config["vm_config"]["vm_id"] = "fresh_namespace"
    config["configuration"]["value"] = signed_config(team, bundle(MIN_REVISION + 1, MODEL_B, NAME))
    refused_push(env, with_config(team.pushed, config), 'the anchor requires vm_id')


def test_counters_survive_a_push_that_keeps_module_and_vm_settings(env):
    proc, team, c = env["proc"], env["team"], env["client"]
    # Every push so far that Envoy accepted had the same module and VM settings.
    before = proc.stats(filter_regex="requests_total")[f"{P}.requests_total"]
    assert before >= 50, before  # the earlier tests' requests, all still counted
    team.push(bundle(MIN_REVISION + 8, MODEL_B, NAME))
    wait_for_policy(c, MODEL_B, MODEL_A)
    for _ in range(10):
        assert outcome(c, MODEL_B) == "ok"
    after = proc.stats(filter_regex="requests_total")[f"{P}.requests_total"]
    assert after >= before + 10, (before, after)
    team.push(bundle(MIN_REVISION + 9, MODEL_A, NAME))
    wait_for_policy(c, MODEL_A, MODEL_B)


def test_rollback_is_refused_after_envoy_creates_a_new_vm(env):
    proc, team, c = env["proc"], env["team"], env["client"]
    # Other VM settings: Envoy creates a new VM for this push. The floor (shared data of the
    # vm_id) outlives the old VM.
    config = wasm_config(team.pushed)
    config["vm_config"]["configuration"] = {
        "@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{}"}
    config["configuration"]["value"] = signed_config(team, bundle(MIN_REVISION + 10, MODEL_A, NAME))
    team.write_raw(with_config(team.pushed, config))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.stats(filter_regex="bundle_revision").get(f"{P}.bundle_revision") == MIN_REVISION + 10:
            break
        time.sleep(0.05)
    assert proc.stats(filter_regex="bundle_revision")[f"{P}.bundle_revision"] == MIN_REVISION + 10
    wait_for_policy(c, MODEL_A, MODEL_B)
    config["configuration"]["value"] = signed_config(team, bundle(MIN_REVISION + 10 - 1, MODEL_B, NAME))
    refused_push(env, with_config(team.pushed, config),
                 f"revision {MIN_REVISION + 9} is lower than revision {MIN_REVISION + 10}")


def test_swapping_in_another_module_is_stopped_by_the_backstop(env):
    proc, team, mock, c = env["proc"], env["team"], env["mock"], env["client"]
    # A signed, newer bundle, but on the released unanchored module: Envoy loads it (that
    # module checks nothing), and the listener's RBAC refuses everything it lets through.
    config = wasm_config(team.pushed)
    config["vm_config"]["code"]["local"]["filename"] = str(WASM_PATH)
    config["configuration"]["value"] = signed_config(team, bundle(MIN_REVISION + 30, MODEL_A, NAME))
    team.write_raw(with_config(team.pushed, config))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and outcome(c, MODEL_A) != "rbac":
        time.sleep(0.05)
    seen = len(mock.requests)
    results = [outcome(c, MODEL_A) for _ in range(10)]
    assert results == ["rbac"] * 10, results
    assert len(mock.requests) == seen, "a request reached Bedrock without the anchored guard"
    # The anchored module back, with a newer bundle: traffic flows again.
    team.push(bundle(MIN_REVISION + 31, MODEL_A, NAME))
    wait_for_policy(c, MODEL_A, MODEL_B)
    assert proc.alive()


def test_signed_bundle_needs_an_orderable_revision(env):
    team = env["team"]
    word = bundle(MIN_REVISION + 40, MODEL_B, NAME)
    word["metadata"]["revision"] = "2026-12-01"
    refused_push(env, with_plugin_config(team.pushed, signed_config(team, word)),
                 'metadata.revision "2026-12-01" must be a decimal integer')


def test_anchored_config_is_the_hot_reload_config_plus_the_backstop():
    """envoy/hot-reload-anchored.yaml must not drift from envoy/hot-reload.yaml: the same
    configuration with one RBAC filter between the guard and the router."""
    plain = yaml.safe_load((REPO_ROOT / "envoy" / "hot-reload.yaml").read_text())
    anchored = yaml.safe_load((REPO_ROOT / "envoy" / "hot-reload-anchored.yaml").read_text())
    hcm = lambda cfg: cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]  # noqa: E731
    filters = hcm(anchored)["typed_config"]["http_filters"]
    names = [f["name"] for f in filters]
    assert names == ["bedrock_guard", "envoy.filters.http.rbac", "envoy.filters.http.router"]
    rbac = filters.pop(1)["typed_config"]
    assert rbac["rules"]["action"] == "ALLOW"
    [policy] = rbac["rules"]["policies"].values()
    assert policy["permissions"] == [{"any": True}]
    assert policy["principals"] == [{"filter_state": {
        "key": "wasm.bedrock_guard_anchor",
        "string_match": {"exact": "anchor:0000000000000000"}}}]
    assert anchored == plain
