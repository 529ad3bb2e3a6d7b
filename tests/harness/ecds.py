"""Hot reload through extension config discovery: the `bedrock-guard` CLI as a security team
and a pusher use it (keygen, sign, anchor, ecds), an Envoy rendered from `envoy/hot-reload*.yaml`
for test ports, and a boto3 client whose outcomes are reduced to `ok` or a reason code."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from pathlib import Path

import yaml
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.harness.clients import bedrock_client
from tests.harness.envoy import REPO_ROOT, EnvoyProcess, _walk

CLI = REPO_ROOT / "target" / "debug" / "bedrock-guard"
HOST = "bedrock-runtime.us-east-1.amazonaws.com"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


def ensure_cli() -> None:
    if not CLI.is_file():
        subprocess.run(["cargo", "build", "-q", "-p", "bedrock-guard-cli"], cwd=REPO_ROOT,
                       check=True, timeout=600)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)


def cli(*args: str) -> str:
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def bundle(revision: int, allowed: str, name: str | None = None) -> dict:
    """The demo bundle at `revision`, allowing only `allowed` for Converse."""
    b = json.loads((REPO_ROOT / "policies" / "examples" / "demo.json").read_text())
    b["metadata"]["revision"] = str(revision)
    if name:
        b["metadata"]["name"] = name
    b["rules"] = [{"id": f"only-{revision}", "effect": "allow", "models": [allowed],
                   "operations": ["Converse"]}]
    return b


class Pusher:
    """Signs bundles with a team key and writes the ECDS resource Envoy watches."""

    def __init__(self, work: Path, wasm: Path, pin: bool, key_name: str = "team"):
        self.work = work
        self.wasm = wasm
        self.pin = pin
        self.ecds = work / "ecds"
        self.ecds.mkdir(exist_ok=True)
        self.key_path = work / f"{key_name}.key.pem"
        self.pub_path = work / f"{key_name}.pub.pem"
        if not self.key_path.exists():
            cli("keygen", "--out", str(work / key_name))
        self.kid = json.loads((work / f"{key_name}.pub.jwk.json").read_text())["kid"]
        self.key = load_pem_private_key(self.key_path.read_bytes(), None)

    def push(self, b: dict, *extra: str) -> None:
        path = self.work / "bundle.json"
        path.write_text(json.dumps(b, indent=2))
        cli("sign", str(path), "--key", str(self.key_path), "--out", str(self.work / "bundle.jws"))
        pin = ["--pin", str(self.pub_path)] if self.pin else []
        cli("ecds", str(path), "--out-dir", str(self.ecds), "--sig", str(self.work / "bundle.jws"),
            *pin, "--wasm", str(self.wasm), *extra)
        self.pushed = self.resource()

    def resource(self) -> dict:
        """What the watched file holds now (possibly a resource Envoy refused); `pushed` is
        the last one written by `push`."""
        return json.loads((self.ecds / "bedrock_guard.json").read_text())

    def write_raw(self, response: dict) -> None:
        """Write a resource the CLI would refuse to write, atomically as the CLI does."""
        response = json.loads(json.dumps(response))
        response["version_info"] = f"raw-{time.monotonic_ns()}"
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


def wasm_config(response: dict) -> dict:
    """The Wasm filter's `config` inside an ECDS response (a copy to edit)."""
    return json.loads(json.dumps(response))["resources"][0]["typed_config"]["config"]


def with_config(response: dict, config: dict) -> dict:
    r = json.loads(json.dumps(response))
    r["resources"][0]["typed_config"]["config"] = config
    return r


def with_plugin_config(response: dict, plugin_config: str) -> dict:
    config = wasm_config(response)
    config["configuration"]["value"] = plugin_config
    return with_config(response, config)


def render(work: Path, pki_dir: Path, listener: int, admin: int, upstream: int, ecds: Path,
           source: str = "hot-reload.yaml", anchor_id: str | None = None) -> Path:
    """`envoy/<source>` for test ports, with the ECDS directory `ecds` (and, for the anchored
    shape, the RBAC backstop's anchor id)."""
    cfg = yaml.safe_load((REPO_ROOT / "envoy" / source).read_text())
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
        if anchor_id and n.get("key") == "wasm.bedrock_guard_anchor":
            n["string_match"]["exact"] = anchor_id
    path = work / "envoy.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def client(port: int):
    """Through Envoy on `port`, no retries (`clients.bedrock_client`)."""
    return bedrock_client(port, host=HOST, read_timeout=10)


def outcome(c, model: str) -> str:
    """`ok`, a bedrock-guard reason code, `rbac` (Envoy's RBAC refused), or `ERROR ...`."""
    try:
        c.converse(modelId=model, messages=MESSAGES)
        return "ok"
    except ClientError as e:
        msg = e.response["Error"].get("Message", "")
        m = re.match(r"bedrock-guard: ([a-z_]+)", msg)
        if e.response["Error"]["Code"] == "AccessDeniedException" and m:
            return m.group(1)
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 403 and "RBAC" in str(e.response):
            return "rbac"
        return f"ERROR {e.response['Error']['Code']} {status}: {msg}"
    except Exception as e:  # noqa: BLE001 - any transport failure is a failed request
        return f"ERROR {type(e).__name__}: {e}"


def config_fail(proc: EnvoyProcess) -> int:
    stats = proc.stats()
    found = [v for k, v in stats.items()
             if k.startswith("extension_config_discovery.") and k.endswith("bedrock_guard.config_fail")]
    assert found, sorted(k for k in stats if k.startswith("extension_config_discovery"))
    return sum(found)


def bundle_rejected(proc: EnvoyProcess) -> int:
    """The guard's own count of configurations it refused in `on_configure` (every VM's)."""
    stats = proc.stats()
    key = "wasmcustom.bedrock_guard.bundle_rejected"
    assert key in stats, sorted(k for k in stats if k.startswith("wasmcustom."))
    return stats[key]


def wait_config_fail(proc: EnvoyProcess, before: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while config_fail(proc) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert config_fail(proc) > before, "Envoy did not reject the pushed resource"


def wait_for_policy(c, allowed: str, refused: str, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if outcome(c, allowed) == "ok" and outcome(c, refused) == "model_not_allowed":
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"policy allowing {allowed} not observed within {timeout} s: "
                         f"{outcome(c, allowed)}, {outcome(c, refused)}")
