"""CloudWatch Embedded Metric Format lines from a real Envoy (docs/operations.md, "CloudWatch
names"): with `BEDROCK_GUARD_EMF_NAMESPACE` in the VM's environment and a second access log
writing `%FILTER_STATE(wasm.bedrock_guard_emf:PLAIN)%`, every request leaves one EMF line; each
is checked against the specification's rules and against what the request did."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY, DEMO_BUNDLE, SECRET_KEY, WASM_PATH
from tests.harness.audit_log import THROTTLE, ScriptedMock, boto_client
from tests.harness.envoy import free_port, render_config, wasm_plugin_config, walk
from tests.harness.mock_bedrock import cache_tokens_for, usage_for
from tests.harness.stack import envoy_stack

NAMESPACE = "BedrockGuard/e2e"
LITERAL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
DENIED = "meta.llama3-8b-instruct-v1:0"

UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
         "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
         "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
         "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
         "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def assert_valid_emf(line: str, t0: float, t1: float) -> dict:
    """The EMF specification's rules for one log event."""
    doc = json.loads(line)
    assert isinstance(doc, dict), line
    aws = doc["_aws"]
    ts = aws["Timestamp"]
    assert isinstance(ts, int) and not isinstance(ts, bool), line
    assert t0 * 1000 - 1000 <= ts <= t1 * 1000 + 1000, (ts, t0, t1)  # ms, not s
    directives = aws["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives, line
    for d in directives:
        assert isinstance(d["Namespace"], str) and 1 <= len(d["Namespace"]) <= 255
        for dims in d["Dimensions"]:
            assert isinstance(dims, list) and len(dims) <= 30, line
            for name in dims:
                assert isinstance(doc[name], str), (name, line)  # dimension values: strings
        metrics = d["Metrics"]
        assert isinstance(metrics, list) and len(metrics) <= 100, line
        names = [m["Name"] for m in metrics]
        assert len(names) == len(set(names)), line
        for m in metrics:
            v = doc[m["Name"]]
            assert (isinstance(v, (int, float)) and not isinstance(v, bool)) or (
                isinstance(v, list) and len(v) <= 100), line
            assert m.get("Unit", "None") in UNITS, line
    return doc


@pytest.fixture(scope="module")
def stack(tmp_path_factory, pki_dir):
    work = tmp_path_factory.mktemp("emf")
    mock = ScriptedMock(pki_dir=pki_dir).start()
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, mock.port, pki_dir, WASM_PATH,
                        json.loads(DEMO_BUNDLE.read_text()), out_dir=work)
    doc = yaml.safe_load(cfg.read_text())
    plugin = wasm_plugin_config(doc)
    plugin["vm_config"]["environment_variables"] = {
        "key_values": {"BEDROCK_GUARD_EMF_NAMESPACE": NAMESPACE}}
    emf_log = work / "emf.log"
    hcms = [n for n in walk(doc) if "route_config" in n and "access_log" in n]
    assert len(hcms) == 1
    hcms[0]["access_log"].append({
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(emf_log),
            "log_format": {"text_format_source": {
                "inline_string": "%FILTER_STATE(wasm.bedrock_guard_emf:PLAIN)%\n"}},
        },
    })
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        with envoy_stack(cfg, admin, listener, work, split_logs=True) as envoy:
            yield SimpleNamespace(envoy=envoy, mock=mock, emf_log=emf_log)
    finally:
        mock.stop()


def lines(path, n: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = path.read_text().splitlines() if path.exists() else []
        if len(got) >= n:
            return got
        time.sleep(0.1)
    pytest.fail(f"{len(got)} EMF lines, {n} expected", pytrace=False)


def test_every_request_leaves_a_valid_emf_line_with_awss_names(stack):
    c = boto_client(stack, ACCESS_KEY, SECRET_KEY)[0]
    msgs = [{"role": "user", "content": [{"text": "Say hello."}, {"cachePoint": {"type": "default"}}]}]
    t0 = time.time()
    c.converse(modelId=LITERAL, messages=msgs)
    list(c.converse_stream(modelId=LITERAL,
                           messages=[{"role": "user", "content": [{"text": "hi"}]}])["stream"])
    with pytest.raises(ClientError):
        c.converse(modelId=DENIED, messages=[{"role": "user", "content": [{"text": "x"}]}])
    with pytest.raises(ClientError):
        c.converse(modelId=LITERAL, messages=[{"role": "user", "content": [{"text": THROTTLE}]}])
    t1 = time.time()
    docs = [assert_valid_emf(line, t0, t1) for line in lines(stack.emf_log, 4)]
    assert len(docs) == 4
    for d in docs:
        assert {x["Namespace"] for x in d["_aws"]["CloudWatchMetrics"]} == {NAMESPACE}
    converse, stream, refused, throttled = docs
    ups = stack.mock.requests

    n, m = usage_for(ups[0].body_len)
    cache = cache_tokens_for(ups[0].body_len)
    assert converse["ModelId"] == LITERAL
    assert (converse["Invocations"], converse["InvocationClientErrors"],
            converse["InvocationServerErrors"]) == (1, 0, 0)
    assert converse["InputTokenCount"] == n and converse["OutputTokenCount"] == m
    assert converse["CacheReadInputTokenCount"] == cache["cacheReadInputTokens"]
    assert converse["CacheWriteInputTokenCount"] == cache["cacheWriteInputTokens"]
    assert 0 <= converse["InvocationLatency"] <= (t1 - t0) * 1000 + 50
    assert "TimeToFirstToken" not in converse

    n, m = usage_for(ups[1].body_len)
    assert (stream["InputTokenCount"], stream["OutputTokenCount"]) == (n, m)
    assert 0 <= stream["TimeToFirstToken"] <= stream["InvocationLatency"]

    assert refused["ModelId"] == "other" and refused["GuardRefusals"] == 1
    assert refused["Reason"] == "model_not_allowed" and "Invocations" not in refused
    assert refused["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ModelId", "Reason"]]

    assert throttled["InvocationThrottles"] == 1 and "Invocations" not in throttled
