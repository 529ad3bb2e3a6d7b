"""Hot reload through extension config discovery, with signed bundles.

A real Envoy runs `envoy/hot-reload.yaml` (the filter's configuration comes from a watched
directory). Steady boto3 traffic flows through it while the bundle is swapped 24 times with
`bedrock-guard sign` + `bedrock-guard ecds --pin` (the VM configuration pins the team's key):
no request may fail for any reason but the policy in force, and each new policy must be
observed within 2 s. A signed but invalid bundle and a tampered bundle are each rejected by
Envoy (its ECDS `config_fail` stat increments) while the old verdicts continue.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.conftest import ACCESS_KEY, SECRET_KEY, WASM_PATH
from tests.harness.envoy import REPO_ROOT, EnvoyProcess, _walk, free_port
from tests.harness.mock_bedrock import MockBedrock

CLI = REPO_ROOT / "target" / "debug" / "bedrock-guard"
HOST = "bedrock-runtime.us-east-1.amazonaws.com"
MODEL_A = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MODEL_B = "amazon.titan-text-express-v1"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
SWAPS = 24
OBSERVE_WITHIN = 2.0


def cli(*args: str) -> str:
    proc = subprocess.run([str(CLI), *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def bundle(revision: int, allowed: str) -> dict:
    b = json.loads((REPO_ROOT / "policies" / "examples" / "demo.json").read_text())
    b["metadata"]["revision"] = str(revision)
    b["rules"] = [{"id": f"only-{revision}", "effect": "allow", "models": [allowed],
                   "operations": ["Converse"]}]
    return b


class Pusher:
    """Signs bundles with the team key and writes the ECDS resource Envoy watches."""

    def __init__(self, work: Path):
        self.work = work
        self.ecds = work / "ecds"
        self.ecds.mkdir()
        cli("keygen", "--out", str(work / "team"))
        self.kid = json.loads((work / "team.pub.jwk.json").read_text())["kid"]
        self.key = load_pem_private_key((work / "team.key.pem").read_bytes(), None)

    def push(self, b: dict) -> None:
        path = self.work / "bundle.json"
        path.write_text(json.dumps(b, indent=2))
        cli("sign", str(path), "--key", str(self.work / "team.key.pem"),
            "--out", str(self.work / "bundle.jws"))
        cli("ecds", str(path), "--out-dir", str(self.ecds), "--sig", str(self.work / "bundle.jws"),
            "--pin", str(self.work / "team.pub.pem"), "--wasm", str(WASM_PATH))

    def resource(self) -> dict:
        return json.loads((self.ecds / "bedrock_guard.json").read_text())

    def write_raw(self, response: dict) -> None:
        """Write a resource the CLI would refuse to write, atomically as the CLI does."""
        tmp = self.ecds / ".raw.tmp"
        tmp.write_text(json.dumps(response))
        tmp.rename(self.ecds / "bedrock_guard.json")

    def sign_raw(self, b: dict) -> str:
        """A valid detached JWS over `b` (even an invalid bundle), made without the CLI:
        RFC 8785 form of integers and ASCII strings is sorted, compact JSON."""
        canonical = json.dumps(b, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        enc = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
        header = enc(json.dumps({"alg": "EdDSA", "kid": self.kid,
                                 "typ": "bedrock-guard-bundle+jws"}).encode())
        signature = self.key.sign(f"{header}.{enc(canonical.encode())}".encode())
        return f"{header}..{enc(signature)}"


def with_plugin_config(response: dict, plugin_config: str) -> dict:
    r = json.loads(json.dumps(response))
    r["version_info"] = f"raw-{time.monotonic_ns()}"
    r["resources"][0]["typed_config"]["config"]["configuration"]["value"] = plugin_config
    return r


def render(work: Path, pki_dir: Path, listener: int, admin: int, upstream: int, ecds: Path) -> Path:
    cfg = yaml.safe_load((REPO_ROOT / "envoy" / "hot-reload.yaml").read_text())
    cfg["admin"]["address"]["socket_address"]["port_value"] = admin
    cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = listener
    for n in _walk(cfg):
        if "socket_address" in n and n["socket_address"].get("port_value") == 8443:
            n["socket_address"]["port_value"] = upstream
        if "trusted_ca" in n:
            n["trusted_ca"]["filename"] = str(pki_dir.resolve() / "ca.pem")
        if "path_config_source" in n:
            n["path_config_source"]["path"] = str(ecds / "bedrock_guard.json")
            n["path_config_source"]["watched_directory"]["path"] = str(ecds)
    path = work / "envoy.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def client(port: int):
    return boto3.client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=f"http://{HOST}",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(proxies={"http": f"http://127.0.0.1:{port}"}, connect_timeout=5,
                      read_timeout=10, retries={"total_max_attempts": 1}))


def outcome(c, model: str) -> str:
    """`ok`, a bedrock-guard reason code, or `ERROR ...` for anything else."""
    try:
        c.converse(modelId=model, messages=MESSAGES)
        return "ok"
    except ClientError as e:
        msg = e.response["Error"].get("Message", "")
        m = re.match(r"bedrock-guard: ([a-z_]+)", msg)
        if e.response["Error"]["Code"] == "AccessDeniedException" and m:
            return m.group(1)
        return f"ERROR {e.response['Error']['Code']}: {msg}"
    except Exception as e:  # noqa: BLE001 - any transport failure is a failed request
        return f"ERROR {type(e).__name__}: {e}"


def config_fail(proc: EnvoyProcess) -> int:
    stats = proc.stats()
    found = [v for k, v in stats.items()
             if k.startswith("extension_config_discovery.") and k.endswith("bedrock_guard.config_fail")]
    assert found, sorted(k for k in stats if k.startswith("extension_config_discovery"))
    return sum(found)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, pki_dir):
    if not CLI.is_file():
        subprocess.run(["cargo", "build", "-q", "-p", "bedrock-guard-policies", "--bin",
                        "bedrock-guard"], cwd=REPO_ROOT, check=True, timeout=600)
    work = tmp_path_factory.mktemp("hot-reload")
    pusher = Pusher(work)
    pusher.push(bundle(1, MODEL_A))
    mock = MockBedrock(pki_dir=pki_dir).start()
    listener, admin = free_port(), free_port()
    cfg = render(work, pki_dir, listener, admin, mock.port, pusher.ecds)
    proc = EnvoyProcess(cfg, admin, listener, work / "envoy.log").start()
    yield proc, pusher, mock
    proc.stop()
    mock.stop()


def wait_for_policy(c, allowed: str, refused: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < 10:
        if outcome(c, allowed) == "ok" and outcome(c, refused) == "model_not_allowed":
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"policy allowing {allowed} not observed within 10 s")


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
    before = config_fail(proc)
    bad = bundle(201, MODEL_B)
    bad["rules"][0]["operations"] = ["Invoke"]  # not an operation: a validation error
    plugin_config = json.dumps({"bundle": bad, "signature": pusher.sign_raw(bad)})
    pusher.write_raw(with_plugin_config(pusher.resource(), plugin_config))
    deadline = time.monotonic() + 10
    while config_fail(proc) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert config_fail(proc) > before
    assert "rules[0].operations[0]" in proc.log_text()
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
        before = config_fail(proc)
        pusher.write_raw(with_plugin_config(signed, plugin_config))
        deadline = time.monotonic() + 10
        while config_fail(proc) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert config_fail(proc) > before
        for _ in range(10):
            assert outcome(probe, MODEL_A) == "ok"
            assert outcome(probe, MODEL_B) == "model_not_allowed"
    log = proc.log_text()
    assert "bundle signature refused" in log
    assert "bundle is not signed" in log
