"""Hot reload through extension config discovery, with signed bundles.

A real Envoy runs `envoy/hot-reload.yaml` (the filter's configuration comes from a watched
directory). Steady boto3 traffic flows through it while the bundle is swapped 24 times with
`bedrock-guard sign` + `bedrock-guard ecds --pin` (the VM configuration pins the team's key):
no request may fail for any reason but the policy in force, and each new policy must be
observed within 2 s. A signed but invalid bundle and a tampered bundle are each rejected by
Envoy (its ECDS `config_fail` stat increments) while the old verdicts continue.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.conftest import WASM_PATH
from tests.harness.ecds import (Pusher, bundle, bundle_rejected, client, config_fail, ensure_cli,
                                outcome, render, wait_config_fail, wait_for_policy,
                                with_plugin_config)
from tests.harness.envoy import free_port
from tests.harness.mock_bedrock import MockBedrock
from tests.harness.stack import envoy_stack

MODEL_A = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MODEL_B = "amazon.titan-text-express-v1"
SWAPS = 24
OBSERVE_WITHIN = 2.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory, pki_dir):
    ensure_cli()
    work = tmp_path_factory.mktemp("hot-reload")
    pusher = Pusher(work, WASM_PATH, pin=True)
    pusher.push(bundle(1, MODEL_A))
    mock = MockBedrock(pki_dir=pki_dir).start()
    listener, admin = free_port(), free_port()
    cfg = render(work, pki_dir, listener, admin, mock.port, pusher.ecds)
    with envoy_stack(cfg, admin, listener, work) as proc:
        yield proc, pusher, mock
    mock.stop()


def test_swaps_under_traffic_fail_nothing_and_apply_within_two_seconds(setup):
    proc, pusher, mock = setup
    probe = client(proc.listener_port)
    wait_for_policy(probe, MODEL_A, MODEL_B)

    results: list[str] = []
    stop = threading.Event()

    def traffic():
        c = client(proc.listener_port)
        deadline = time.monotonic() + 180
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 20000:
            results.append(outcome(c, MODEL_A if len(results) % 2 == 0 else MODEL_B))

    worker = threading.Thread(target=traffic)
    worker.start()
    delays = []
    try:
        for i in range(SWAPS):
            allowed, refused = (MODEL_B, MODEL_A) if i % 2 == 0 else (MODEL_A, MODEL_B)
            pusher.push(bundle(100 + i, allowed))
            delays.append(wait_for_policy(probe, allowed, refused))
            time.sleep(0.25)  # let the steady traffic run under each policy
    finally:
        stop.set()
        worker.join(timeout=30)

    print(f"\n{SWAPS} swaps; observed after max {max(delays):.2f}s, mean "
          f"{sum(delays) / len(delays):.2f}s; {len(results)} steady requests")
    failures = [r for r in results if r not in ("ok", "model_not_allowed")]
    assert failures == [], failures[:5]
    # The steady traffic really ran across the swaps, under both policies.
    assert len(results) >= 100, len(results)
    assert results.count("ok") >= SWAPS and results.count("model_not_allowed") >= SWAPS
    assert max(delays) <= OBSERVE_WITHIN, delays
    assert all(r.signature_ok for r in mock.requests)
    assert proc.alive()


def test_signed_but_invalid_bundle_is_rejected_and_old_policy_stays(setup):
    proc, pusher, _ = setup
    pusher.push(bundle(200, MODEL_A))
    probe = client(proc.listener_port)
    wait_for_policy(probe, MODEL_A, MODEL_B)
    before, rejected = config_fail(proc), bundle_rejected(proc)
    bad = bundle(201, MODEL_B)
    bad["rules"][0]["operations"] = ["Invoke"]  # not an operation: a validation error
    plugin_config = json.dumps({"bundle": bad, "signature": pusher.sign_raw(bad)})
    pusher.write_raw(with_plugin_config(pusher.resource(), plugin_config))
    wait_config_fail(proc, before)
    assert "rules[0].operations[0]" in proc.log_text()
    # The guard counts the refusal itself (the dashboard's "rejected pushes").
    assert bundle_rejected(proc) > rejected
    for _ in range(20):
        assert outcome(probe, MODEL_A) == "ok"
        assert outcome(probe, MODEL_B) == "model_not_allowed"


def test_tampered_or_unsigned_bundle_is_rejected_and_old_policy_stays(setup):
    proc, pusher, _ = setup
    pusher.push(bundle(300, MODEL_A))
    probe = client(proc.listener_port)
    wait_for_policy(probe, MODEL_A, MODEL_B)
    signed = pusher.resource()
    config = json.loads(signed["resources"][0]["typed_config"]["config"]["configuration"]["value"])
    config["bundle"]["rules"][0]["models"].append(MODEL_B)  # tampered after signing
    for plugin_config in (json.dumps(config), json.dumps(config["bundle"])):  # tampered, unsigned
        before, rejected = config_fail(proc), bundle_rejected(proc)
        pusher.write_raw(with_plugin_config(signed, plugin_config))
        wait_config_fail(proc, before)
        assert bundle_rejected(proc) > rejected
        for _ in range(10):
            assert outcome(probe, MODEL_A) == "ok"
            assert outcome(probe, MODEL_B) == "model_not_allowed"
    log = proc.log_text()
    assert "bundle signature refused" in log
    assert "bundle is not signed" in log
