"""Deny alerts through a real Envoy: refusals are POSTed in batches to the bundle's
`alerts.cluster`, asynchronously; a slow, failing or absent sink never slows or fails requests.

The sink is a local HTTP server on 127.0.0.1 behind an Envoy STATIC cluster added to the
rendered demo config."""

import http.client
import time

import pytest
import yaml

from tests.conftest import WASM_PATH
from tests.harness.alert_sink import AlertSink, sink_cluster
from tests.harness.envoy import free_port, render_config
from tests.harness.stack import envoy_stack

HOST = "bedrock-runtime.us-east-1.amazonaws.com"
DENIED_PATH = "/model/meta.llama3-8b-instruct-v1%3A0/converse"


def add_sink_cluster(config_path, port: int) -> None:
    cfg = yaml.safe_load(config_path.read_text())
    cfg["static_resources"]["clusters"].append(sink_cluster(port))
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.fixture(scope="module")
def alerting(tmp_path_factory, pki_dir, mock_server, demo_bundle):
    """Envoy whose bundle sends deny alerts to `sink` (batches of 5, flushed every second)."""
    sink = AlertSink()
    bundle = dict(demo_bundle)
    bundle["alerts"] = {"cluster": "deny_sink", "path": "/events", "batch_size": 5,
                        "flush_interval_seconds": 1}
    work = tmp_path_factory.mktemp("alerts")
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, mock_server.port, pki_dir, WASM_PATH, bundle, out_dir=work)
    add_sink_cluster(cfg, sink.port)
    with envoy_stack(cfg, admin, listener, work) as proc:
        yield proc, sink
    sink.stop()


def refused_request(port: int, request_id: str) -> tuple[int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.monotonic()
    conn.request("POST", f"http://{HOST}{DENIED_PATH}", body=b"{}",
                 headers={"content-type": "application/json", "x-request-id": request_id})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, time.monotonic() - started


def wait_for(predicate, timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def alert_stat(proc, name: str) -> int:
    stats = proc.stats()
    return sum(v for k, v in stats.items() if k.endswith(f"bedrock_guard.{name}"))


def test_each_refusal_is_posted_once_in_batches(alerting, mock):
    proc, sink = alerting
    sink.mode, sink.batches = "ok", []
    ids = [f"alert-{i:04d}-aaaa-bbbb" for i in range(7)]
    for rid in ids:
        status, _ = refused_request(proc.listener_port, rid)
        assert status == 403
    assert wait_for(lambda: len(sink.events()) >= 7), f"sink got {len(sink.events())} events"
    time.sleep(1.5)  # nothing more may arrive
    events = sink.events()
    assert sorted(e["detail"]["requestID"] for e in events) == sorted(ids)
    assert all(len(batch) <= 5 for batch in sink.batches)
    for e in events:
        assert e["source"] == "bedrock-guard"
        assert e["detail"]["reason"] == "model_not_allowed"
        assert e["detail"]["decision"] == "deny"
    assert mock.requests == []
    assert wait_for(lambda: alert_stat(proc, "alerts_sent") >= 7)


def test_failing_sink_never_fails_or_slows_requests(alerting, mock):
    proc, sink = alerting
    sink.mode, sink.batches = "fail", []
    before = alert_stat(proc, "alerts_failed")
    timings = [refused_request(proc.listener_port, f"fail-{i}") for i in range(6)]
    assert all(status == 403 for status, _ in timings)
    assert max(t for _, t in timings) < 1.0, timings
    assert wait_for(lambda: alert_stat(proc, "alerts_failed") >= before + 6)


def test_slow_sink_does_not_delay_requests(alerting):
    proc, sink = alerting
    sink.mode, sink.batches = "slow", []
    timings = [refused_request(proc.listener_port, f"slow-{i}") for i in range(12)]
    time.sleep(1.2)
    timings += [refused_request(proc.listener_port, f"slow2-{i}") for i in range(5)]
    assert all(status == 403 for status, _ in timings)
    assert max(t for _, t in timings) < 1.0, timings
    sink.mode = "ok"
