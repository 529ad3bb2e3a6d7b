"""Faults of the deny-alert sink (issue 14, item 1): down (connection refused), slow (answers
after the filter's 5 s POST timeout), answering 5xx, and (the same class) answering 4xx and
resetting the connection after reading the batch, through a real Envoy.

One Envoy (module-scoped, `--concurrency 2`, audit log on its own stdout file) with the demo
bundle plus `alerts` (format `json`, POSTed to `harness/alert_sink.py` behind the `deny_sink`
cluster; batches of `BATCH` events, flushed every second, `QUEUE_CAPACITY` events held per
worker). For each fault the test sends a burst mixing allowed requests (the mock must get each
one once) and refused ones (two reasons; the mock must get none), then:

* every request is decided at full speed: no answer waits for the sink (each < 1 s, where the
  sink takes 5 s to fail or never answers);
* the books close (`harness/fault_traffic.Burst`: one audit record per request agreeing with
  its answer, the stats agree with the records, RSS growth bounded);
* what was lost is counted exactly: once the queues drain, `alerts_failed` + `alerts_dropped`
  grew by the number of refusals and `alerts_sent` by none; the sink holds exactly the
  `alerts_failed` events it was handed (none when down), each a refusal of this burst, never an
  allowed request; a json sink is not retried (`alerts_retried` unchanged);
* the queue stayed bounded: at most `QUEUE_CAPACITY` events per worker were ever accepted while
  the sink was slow (more when it fails fast: a failed POST frees its slots at once), and the
  rest were dropped and counted;
* when the sink is back, the next refusals arrive, exactly once each, counted as sent.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.conftest import DEMO_BUNDLE, WASM_PATH
from tests.harness.alert_sink import SINK_CLUSTER, AlertSink, sink_cluster
from tests.harness.audit_log import AuditLog
from tests.harness.envoy import REPO_ROOT, EnvoyProcess, free_port, render_config
from tests.harness.fault_traffic import Burst, median
from tests.harness.mock_bedrock import MockBedrock
from tests.harness.pki import ensure_pki
from tests.harness.stack import envoy_stack

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
LLAMA = "meta.llama3-8b-instruct-v1:0"  # no rule allows it: model_not_allowed
OPUS = "anthropic.claude-opus-4-20250514-v1:0"  # the demo's `no-opus` deny rule

POST_TIMEOUT = 5  # plugin/src/alerts.rs
BATCH = 10
QUEUE_CAPACITY = 10
WORKERS = 2
ALERT_STATS = ("alerts_sent", "alerts_failed", "alerts_dropped", "alerts_retried")


class Stack:
    def __init__(self, envoy: EnvoyProcess, audit: AuditLog, mock: MockBedrock, sink: AlertSink):
        self.envoy, self.audit, self.mock, self.sink = envoy, audit, mock, sink

    def alerts(self) -> dict[str, int]:
        stats = self.envoy.stats("alerts_")
        return {name: sum(v for k, v in stats.items() if k.endswith(f"bedrock_guard.{name}"))
                for name in ALERT_STATS}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    pki = ensure_pki(REPO_ROOT / ".build" / "pki")
    work = tmp_path_factory.mktemp("faults-alerts")
    bundle = json.loads(DEMO_BUNDLE.read_text())
    bundle["metadata"]["name"] = "faults-alerts"
    bundle["alerts"] = {"cluster": SINK_CLUSTER, "path": "/events", "batch_size": BATCH,
                        "flush_interval_seconds": 1, "queue_capacity": QUEUE_CAPACITY}
    sink = AlertSink()
    mock = MockBedrock(pki_dir=pki).start()
    try:
        listener, admin = free_port(), free_port()
        cfg = render_config(listener, admin, mock.port, pki, WASM_PATH, bundle, out_dir=work)
        doc = yaml.safe_load(cfg.read_text())
        doc["static_resources"]["clusters"].append(sink_cluster(sink.port))
        cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
        with envoy_stack(cfg, admin, listener, work, split_logs=True) as envoy:
            yield Stack(envoy, AuditLog(envoy.log_path), mock, sink)
    finally:
        sink.stop()
        mock.stop()


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in before}


def wait_counted(stack: Stack, before: dict[str, int], refusals: int, timeout: float) -> dict:
    """The alert stats' growth once sent + failed + dropped accounts for `refusals` events (the
    queues are empty), checked again after a further flush interval (nothing more is counted)."""
    deadline = time.monotonic() + timeout
    while True:
        d = delta(before, stack.alerts())
        done = d["alerts_sent"] + d["alerts_failed"] + d["alerts_dropped"]
        if done >= refusals or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    time.sleep(1.5)
    again = delta(before, stack.alerts())
    assert again == d, f"alert stats still moving after the queues drained: {d} -> {again}"
    return d


def traffic(burst: Burst, allowed: int, refused: int) -> None:
    """`allowed` Claude requests interleaved with `refused` ones (model_not_allowed and the
    demo's explicit Opus deny), all decided at once."""
    total = allowed + refused
    for i in range(total):
        if i * allowed // total != (i + 1) * allowed // total:
            assert burst.send(CLAUDE).outcome == "allowed"
        elif i % 2:
            assert burst.send(LLAMA).reason == "model_not_allowed"
        else:
            sent = burst.send(OPUS)
            assert sent.outcome != "allowed" and sent.reason == REFUSED_OPUS, sent


REFUSED_OPUS = "model_denied"


FAULTS = ["down", "slow", "5xx", "4xx", "reset"]


@pytest.mark.parametrize("fault", FAULTS)
def test_alert_sink_fault(stack, fault):
    sink = stack.sink
    burst = Burst(stack.envoy, stack.audit, f"alerts-{fault}")
    before = stack.alerts()
    batches_before = len(sink.batches)
    if fault == "down":
        sink.down()
    elif fault == "slow":
        sink.slow_seconds = POST_TIMEOUT + 2
        sink.mode = "slow"
    elif fault == "reset":
        sink.mode = "reset"
    else:
        sink.fail_status = 503 if fault == "5xx" else 403
        sink.mode = "fail"
    try:
        start = time.monotonic()
        traffic(burst, allowed=20, refused=60)
        took = time.monotonic() - start
        refused = [s for s in burst.sent if s.outcome != "allowed"]
        latencies = burst.latencies()
        print(f"\n{fault}: {len(burst.sent)} requests in {took:.2f}s, median "
              f"{median(latencies) * 1000:.1f} ms, slowest {latencies[-1] * 1000:.1f} ms")
        # Decided at full speed: nothing waited for the sink.
        assert latencies[-1] < 1.0, latencies[-5:]
        # A slow sink may need two POST timeouts per worker to drain: a tick can take a partial
        # batch (flush interval reached) and leave the rest of the queue for the next POST.
        d = wait_counted(stack, before, len(refused), timeout=2 * (POST_TIMEOUT + 1) + 3)
    finally:
        sink.up()
        sink.mode = "ok"
    print(f"{fault}: alert stats grew by {d}")
    received = [e for batch in sink.batches[batches_before:] for e in batch]
    # Exactly what was lost is counted: nothing delivered, every refusal failed or dropped.
    assert d["alerts_sent"] == 0, d
    assert d["alerts_failed"] + d["alerts_dropped"] == len(refused), (d, len(refused))
    assert d["alerts_retried"] == 0, d  # json sinks are not retried (max_attempts is 1)
    ids = [e["detail"]["requestID"] for e in received]
    assert len(ids) == len(set(ids)), "an event was handed to the sink twice"
    assert set(ids) <= {s.rid for s in refused}, "an alert for a request that was not refused"
    assert len(received) == (0 if fault == "down" else d["alerts_failed"]), (len(received), d)
    # Bounded: the queue held at most QUEUE_CAPACITY events per worker. A slow sink keeps its
    # POST (and its events) in flight for the whole timeout, longer than the burst took: only
    # that many were ever accepted. A sink that fails at once frees the slots every flush.
    accepted = d["alerts_failed"]
    if fault == "slow":
        assert took < POST_TIMEOUT - 1, took
        bound = WORKERS * QUEUE_CAPACITY
    else:
        bound = WORKERS * QUEUE_CAPACITY * (int(took) + 2)
    assert accepted <= bound, (accepted, bound)
    assert d["alerts_dropped"] >= len(refused) - bound, (d, bound)
    if fault == "slow":
        assert d["alerts_dropped"] > 0, d  # the bound was reached and enforced
    # The sink is back: the next refusals arrive, once each, and are counted as sent.
    before_ok = stack.alerts()
    batches_ok = len(sink.batches)
    mark = len(burst.sent)
    traffic(burst, allowed=2, refused=6)
    fresh = {s.rid for s in burst.sent[mark:] if s.outcome != "allowed"}
    d_ok = wait_counted(stack, before_ok, len(fresh), timeout=5)
    got = [e["detail"]["requestID"] for b in sink.batches[batches_ok:] for e in b]
    assert sorted(got) == sorted(fresh), (got, fresh)
    assert d_ok == {"alerts_sent": len(fresh), "alerts_failed": 0, "alerts_dropped": 0,
                    "alerts_retried": 0}, d_ok
    records = burst.close(stack.mock)
    by_id = {r["requestID"]: r for r in records}
    for e in [e for b in sink.batches[batches_before:] for e in b]:
        # Each alert is the refusal's own audit record.
        rec = by_id[e["detail"]["requestID"]]
        assert (e["detail"]["decision"], e["detail"]["reason"]) == (rec["decision"], rec["reason"])
