"""End to end: the filter fails closed.

**A VM that panics.** The plugin's `test-panic` build (cargo feature, never shipped:
`tests/test_module_contents.py` checks the released module) panics when a request carries
`x-bedrock-guard-test-panic`. It is built in `make build`'s wasm target dir, so only the plugin
crate is compiled again (the feature changes nothing else), then copied out; the shipped module
is `dist/`'s, which this does not touch. It runs in the demo config with one worker, so every
request meets the same VM:

* the marked request is answered by Envoy itself with a 503 and never reaches the upstream;
  Envoy stays up (admin `/ready`, the process) and logs the panic;
* the access log still writes its line for that request: `-`, because the filter never set its
  audit record (no record is invented for a request the filter did not decide);
* what happens next is Envoy's `failure_policy`:
  - `FAIL_RELOAD` (what every shipped config uses, with `reload_config.backoff.base_interval`
    1 s; run here exactly as envoy/demo.yaml ships it): the next request after the reload
    back-off (measured from the last load) gets a fresh VM that loads the bundle again and is
    decided normally: an allowed request reaches the upstream, a refused one gets its reason. A
    request inside the back-off still gets the 503 (`vm_reload_backoff`);
  - `FAIL_CLOSED` (set here for the test): the VM stays failed, every later request on that
    worker gets the same 503 (allowed ones too) and nothing reaches the upstream, until Envoy
    restarts or the filter configuration is pushed again (a new VM).

**An invalid bundle at start-up.** Nothing has been in force under the VM id since the process
started, so there is nothing for Envoy to keep: the filter accepts the configuration holding no
policy, and every request is refused by the filter, 403 `policy_unavailable`, with its audit
record and its count in the `requests` family, and none reaches the upstream:

* inline in a static bootstrap (demo, sidecars), five kinds (not JSON, empty, no endpoints, an
  allow rule without models, an unknown mode): Envoy starts and serves; its log names the fault
  and says every request is refused; `bundle_rejected` counts it;
* as the first ECDS resource (`hot-reload.yaml`): the same, with no `config_fail`; the first
  valid push is then applied and requests are decided (an allowed one goes through, a denied
  one is refused with its reason and its audit record); from then on the same invalid
  resource is rejected (`config_fail`) and the bundle in force stays.

**A bad ECDS push of the module** (a file that is not wasm, cut short, missing, or a module
whose VM refuses to start) is rejected by Envoy (`config_fail`); the module and bundle in force
keep deciding. Bad bundle pushes after a good one are `tests/test_e2e_hot_reload.py`'s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import BEDROCK_HOST, DEMO_BUNDLE
from tests.harness.assertions import (
    assert_client_error_refusal, assert_mock_saw_nothing, single_forwarded,
)
from tests.harness.audit_log import NO_RECORD, AuditLog, parse_line
from tests.harness.clients import bedrock_client
from tests.harness.ledger import close_books
from tests.harness.envoy import REPO_ROOT, free_port, render_config, wasm_plugin_config
from tests.harness.mock_bedrock import REPLY_TEXT
from tests.harness.stack import envoy_stack

MARKER = "x-bedrock-guard-test-panic"
PANIC_SOURCE = REPO_ROOT / "plugin" / "src" / "test_panic.rs"
ALLOWED = "anthropic.claude-3-5-sonnet-20240620-v1:0"  # rule claude-and-titan
DENIED = "anthropic.claude-opus-4-20250514-v1:0"  # deny rule no-opus
UNLISTED = "meta.llama3-8b-instruct-v1:0"  # no rule allows it


def panic_message() -> str:
    import re
    found = re.search(r'panic!\("(bedrock-guard test-panic:[^"]*)"', PANIC_SOURCE.read_text())
    assert found, "plugin/src/test_panic.rs no longer panics with a `bedrock-guard test-panic:` text"
    return found.group(1)


@pytest.fixture(scope="session")
def panic_module(tmp_path_factory) -> Path:
    """The `test-panic` build of the plugin, in `make build`'s target dir (the dependencies and
    the standard library are already built there: only the plugin crate is compiled again;
    the next `make build` compiles it back, and `dist/` is never touched)."""
    target = Path(subprocess.run([str(REPO_ROOT / "scripts" / "cargo-wasm.sh"), "target-dir"],
                                 cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                                 timeout=60).stdout.strip())
    t0 = time.monotonic()
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "cargo-wasm.sh"), "build", "--release", "-q",
         "-p", "bedrock-guard-plugin", "--features", "test-panic"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"test-panic build: {time.monotonic() - t0:.1f} s")
    built = target / "wasm32-wasip1" / "release" / "bedrock_guard.wasm"
    module = tmp_path_factory.mktemp("panic-module") / "bedrock_guard_test_panic.wasm"
    shutil.copyfile(built, module)
    assert panic_message().encode() in module.read_bytes(), "control: the panic build has it"
    return module


class Stack:
    """Envoy (demo config, one worker, audit access log on its own stdout file) in front of the
    session's mock, with `module`, `bundle`, and the demo's failure policy unless
    `failure_policy` overrides it."""

    def __init__(self, work: Path, pki_dir, mock, module: Path, bundle: dict | str | None,
                 failure_policy: str | None = None):
        self.work, self.mock = work, mock
        listener, admin = free_port(), free_port()
        cfg_path = render_config(listener, admin, mock.port, pki_dir, module,
                                 bundle if isinstance(bundle, dict) else None, out_dir=work)
        cfg = yaml.safe_load(cfg_path.read_text())
        plugin = wasm_plugin_config(cfg)
        self.shipped_policy = (plugin["failure_policy"], plugin.get("reload_config"))
        if failure_policy:
            plugin["failure_policy"] = failure_policy
            if failure_policy != "FAIL_RELOAD":
                plugin.pop("reload_config", None)
        if isinstance(bundle, str):
            plugin["configuration"]["value"] = bundle
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.cfg_path, self.listener, self.admin = cfg_path, listener, admin
        self.audit = AuditLog(work / "envoy-stdout.log")

    def __enter__(self):
        self._cm = envoy_stack(self.cfg_path, self.admin, self.listener, self.work,
                               split_logs=True, concurrency=1)
        self.envoy = self._cm.__enter__()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)

    def client(self, *, marked: bool = False):
        hooks = []
        if marked:
            def add_marker(request, **kwargs):
                request.headers[MARKER] = "1"
            hooks.append(("before-send.bedrock-runtime.*", add_marker))
        return bedrock_client(self.listener, hooks=hooks)

    def serving(self) -> None:
        assert self.envoy.alive(), "Envoy exited:\n" + self.envoy.log_tail()
        status, body = self.envoy.admin("GET", "/ready")
        assert (status, body.strip()) == (200, b"LIVE"), (status, body)

    def app_log(self) -> str:
        return self.envoy.app_log_text()


def converse(client, model: str = ALLOWED):
    return client.converse(modelId=model,
                           messages=[{"role": "user", "content": [{"text": "hello"}]}])


def assert_vm_refusal(exc: ClientError) -> None:
    """Envoy's own answer for a request whose wasm VM has failed (not the filter's deny)."""
    meta = exc.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 503, exc.response
    headers = meta["HTTPHeaders"]
    assert "x-bedrock-guard-reason" not in headers, headers
    # Envoy's own empty 503 (Envoy 1.40 also closes the connection).
    assert headers.get("content-length") == "0" and headers.get("server") == "envoy", headers


def allowed_goes_through(stack: Stack) -> None:
    stack.mock.reset()
    mark = stack.audit.mark()
    out = converse(stack.client())
    assert out["output"]["message"]["content"][0]["text"] == REPLY_TEXT
    single_forwarded(stack.mock)
    [rec] = stack.audit.take(1, since=mark)
    assert (rec["decision"], rec["reason"], rec["status"]) == ("allow", "allowed", 200), rec


def refused_with(stack: Stack, model: str, reason: str) -> None:
    stack.mock.reset()
    mark = stack.audit.mark()
    with pytest.raises(ClientError) as e:
        converse(stack.client(), model)
    assert_client_error_refusal(e.value, reason)
    assert_mock_saw_nothing(stack.mock)
    [rec] = stack.audit.take(1, since=mark)
    assert (rec["decision"], rec["reason"]) == ("deny", reason), rec


def panics(stack: Stack) -> None:
    """A marked (otherwise allowed) request: Envoy's 503, nothing upstream, a `-` access-log
    line, the panic in Envoy's log, and Envoy still serving."""
    stack.mock.reset()
    mark = stack.audit.mark()
    with pytest.raises(ClientError) as e:
        converse(stack.client(marked=True))
    assert_vm_refusal(e.value)
    assert_mock_saw_nothing(stack.mock)
    assert stack.audit.take_raw(1, since=mark) == [NO_RECORD]
    stack.serving()


def vm_closed(stack: Stack, model: str = ALLOWED) -> None:
    stack.mock.reset()
    mark = stack.audit.mark()
    with pytest.raises(ClientError) as e:
        converse(stack.client(), model)
    assert_vm_refusal(e.value)
    assert_mock_saw_nothing(stack.mock)
    assert stack.audit.take_raw(1, since=mark) == [NO_RECORD]


def counters(stack: Stack) -> dict[str, int]:
    stats = stack.envoy.stats()
    return {k.rsplit(".", 1)[1]: v for k, v in stats.items()
            if k.startswith("wasm.bedrock_guard.vm_reload")}


# -- a VM that panics ---------------------------------------------------------------------------

def test_fail_closed_a_panicked_vm_refuses_and_stays_closed(tmp_path, pki_dir, mock,
                                                            panic_module, demo_bundle):
    with Stack(tmp_path, pki_dir, mock, panic_module, demo_bundle,
               failure_policy="FAIL_CLOSED") as stack:
        allowed_goes_through(stack)  # control: the panic build decides like the shipped one
        panics(stack)
        log = stack.app_log()
        assert panic_message() in log
        assert "Function: proxy_on_request_headers failed: Uncaught RuntimeError" in log
        # FAIL_CLOSED: the failed VM is not replaced; allowed and refused alike get the 503.
        for model in (ALLOWED, DENIED, ALLOWED):
            vm_closed(stack, model)
        stack.serving()
        assert counters(stack).get("vm_reload_success", 0) == 0


def test_fail_reload_the_next_request_is_decided_normally(tmp_path, pki_dir, mock, panic_module,
                                                          demo_bundle):
    # The shipped policy, as envoy/demo.yaml (and every shipped config) sets it. Envoy's reload
    # back-off is jittered: between 1 and 1.5 times the base, counted from the last load
    # (start-up, then each reload).
    with Stack(tmp_path, pki_dir, mock, panic_module, demo_bundle) as stack:
        policy, reload = stack.shipped_policy
        assert policy == "FAIL_RELOAD", policy
        base = float(reload["backoff"]["base_interval"].rstrip("s"))
        past_backoff = base * 1.5 + 0.6
        allowed_goes_through(stack)
        time.sleep(max(0.0, stack.started + past_backoff - time.monotonic()))
        before = counters(stack)
        panics(stack)
        assert panic_message() in stack.app_log()
        # The next request reloads the VM (which loads the bundle again) and is decided.
        allowed_goes_through(stack)
        reloaded = counters(stack)
        assert reloaded["vm_reload_success"] == before["vm_reload_success"] + 1, (before, reloaded)

        # A second panic right after that reload: inside the back-off the VM stays closed.
        panics(stack)
        vm_closed(stack, DENIED)
        assert counters(stack)["vm_reload_backoff"] > reloaded["vm_reload_backoff"]
        time.sleep(past_backoff)
        allowed_goes_through(stack)
        refused_with(stack, DENIED, "model_denied")
        refused_with(stack, UNLISTED, "model_not_allowed")
        assert counters(stack)["vm_reload_success"] == reloaded["vm_reload_success"] + 1
        stack.serving()


# -- an invalid bundle at start-up ------------------------------------------------------------

def _bundle_kinds(demo: dict) -> dict[str, tuple[str, str]]:
    """(configuration value, what Envoy's log must say) for each kind of invalid bundle."""
    no_endpoints = json.loads(json.dumps(demo))
    no_endpoints["endpoints"] = []
    modelless = json.loads(json.dumps(demo))
    modelless["rules"].insert(0, {"id": "any-converse", "effect": "allow",
                                  "operations": ["Converse"]})
    unknown = json.loads(json.dumps(demo))
    unknown["mode"] = "permissive"
    return {
        "not-json": ('{"apiVersion": "bedrock-guard/v1", ', "bundle refused"),
        "empty": ("", "bundle refused"),
        "no-endpoints": (json.dumps(no_endpoints), "endpoints"),
        "allow-without-models": (json.dumps(modelless), "rules[0].models"),
        "unknown-mode": (json.dumps(unknown), "mode"),
    }


OPERATIONS = {
    "Converse": lambda c: converse(c),
    "ConverseStream": lambda c: list(c.converse_stream(
        modelId=ALLOWED, messages=[{"role": "user", "content": [{"text": "hi"}]}])["stream"]),
    "InvokeModel": lambda c: c.invoke_model(
        modelId=ALLOWED, body=json.dumps({"anthropic_version": "bedrock-2023-05-31",
                                          "max_tokens": 8,
                                          "messages": [{"role": "user", "content": "hi"}]})),
    "ListAsyncInvokes": lambda c: c.list_async_invokes(),
}


def _refuses_every_operation(listener: int, audit: AuditLog, mock) -> list[dict]:
    """Each operation of `OPERATIONS` refused by the filter itself, 403 `policy_unavailable`
    (AWS-shaped, so SDKs do not retry), nothing upstream, one audit record each."""
    c = bedrock_client(listener)
    mark = audit.mark()
    for name, call in OPERATIONS.items():
        with pytest.raises(ClientError) as e:
            call(c)
        assert_client_error_refusal(e.value, "policy_unavailable")
    assert_mock_saw_nothing(mock)
    records = audit.take(len(OPERATIONS), since=mark)
    for rec in records:
        assert (rec["decision"], rec["reason"], rec["status"]) == (
            "deny", "policy_unavailable", 403), rec
        assert rec["bundleName"] is None and rec["bundleDigest"] is None, rec
    return records


@pytest.mark.parametrize("kind", ["not-json", "empty", "no-endpoints", "allow-without-models",
                                  "unknown-mode"])
def test_static_config_with_an_invalid_bundle_refuses_every_request(tmp_path, pki_dir, mock,
                                                                     demo_bundle, kind):
    """The bundle inline in the bootstrap (demo, sidecars): nothing was ever in force, so the
    filter accepts the configuration holding no policy. Envoy starts and serves; every request
    is refused `policy_unavailable` with its audit record and counted; nothing reaches the
    upstream; the log names the bundle's fault and says every request is refused."""
    from tests.conftest import WASM_PATH

    value, needle = _bundle_kinds(demo_bundle)[kind]
    with Stack(tmp_path, pki_dir, mock, WASM_PATH, value) as stack:
        stack.serving()
        log = stack.app_log()
        assert "bedrock-guard: bundle refused:" in log and needle in log, log[-2000:]
        assert "every request is refused (policy_unavailable)" in log, log[-2000:]
        before = stack.envoy.stats()
        assert before.get("wasmcustom.bedrock_guard.bundle_rejected", 0) >= 1, before
        records = _refuses_every_operation(stack.listener, stack.audit, mock)
        close_books(records, before, stack.envoy.stats(), sent=len(OPERATIONS))


@pytest.mark.parametrize("kind", ["not-json", "allow-without-models"])
def test_ecds_config_with_an_invalid_first_bundle_refuses_every_request(tmp_path, pki_dir, mock,
                                                                        demo_bundle, kind):
    """Hot reload (ECDS), the first resource invalid: Envoy starts and the filter holds no
    policy, so every request is refused `policy_unavailable` with its record. The first valid
    push then takes effect; from then on an invalid push is rejected (`config_fail`) and the
    bundle in force stays."""
    from tests.conftest import WASM_PATH
    from tests.harness import ecds

    ecds.ensure_cli()
    pusher = ecds.Pusher(tmp_path, WASM_PATH, pin=False)
    pusher.push(demo_bundle)
    value, needle = _bundle_kinds(demo_bundle)[kind]
    pusher.write_raw(ecds.with_plugin_config(pusher.pushed, value))
    listener, admin = free_port(), free_port()
    cfg = ecds.render(tmp_path, pki_dir, listener, admin, mock.port, pusher.ecds)
    with envoy_stack(cfg, admin, listener, tmp_path, split_logs=True) as proc:
        audit = AuditLog(tmp_path / "envoy-stdout.log")
        deadline = time.monotonic() + 30
        while ecds.bundle_rejected(proc) < 1:  # the resource may arrive just after /ready
            assert time.monotonic() < deadline, proc.app_log_text()[-2000:]
            time.sleep(0.05)
        assert ecds.config_fail(proc) == 0, "the first resource is accepted, holding no policy"
        log = proc.app_log_text()
        assert "bedrock-guard: bundle refused:" in log and needle in log, log[-2000:]
        before = proc.stats()
        records = _refuses_every_operation(listener, audit, mock)
        close_books(records, before, proc.stats(), sent=len(OPERATIONS))

        c = bedrock_client(listener)
        pusher.push(demo_bundle)  # recovery: the first valid bundle is applied
        deadline = time.monotonic() + 60  # compiling the module again takes seconds under load
        while True:
            try:
                converse(c)
                break
            except ClientError as e:
                assert_client_error_refusal(e, "policy_unavailable")
                assert time.monotonic() < deadline, (
                    "the valid push was not applied", proc.app_log_text()[-3000:])
                time.sleep(0.1)
        while not audit.lines()[-1].startswith('{"eventVersion"') or \
                '"reason":"allowed"' not in audit.lines()[-1]:  # the allowed request's record
            assert time.monotonic() < deadline
            time.sleep(0.01)
        mock.reset()
        mark = audit.mark()
        with pytest.raises(ClientError) as e:
            converse(c, DENIED)
        assert_client_error_refusal(e.value, "model_denied")
        [rec] = audit.take(1, since=mark)
        assert (rec["decision"], rec["reason"]) == ("deny", "model_denied")
        assert_mock_saw_nothing(mock)

        # Now a bundle is in force: an invalid resource is rejected and the bundle stays.
        failed = ecds.config_fail(proc)
        pusher.write_raw(ecds.with_plugin_config(pusher.pushed, value + " "))
        ecds.wait_config_fail(proc, failed)
        mock.reset()
        assert converse(c)["output"]["message"]["content"][0]["text"] == REPLY_TEXT
        single_forwarded(mock)

        # The start-up bytes themselves: Envoy cached its canary's yes for them and admits them
        # unasked; the filter agrees (no policy) instead of failing: refused, never let through.
        pusher.write_raw(ecds.with_plugin_config(pusher.pushed, value))
        deadline = time.monotonic() + 30
        while True:
            mark = audit.mark()
            out = ecds.outcome(c, ALLOWED)
            audit.take_raw(1, since=mark)  # each polling request's own line, before counting
            if out == "policy_unavailable":
                break
            assert time.monotonic() < deadline, proc.app_log_text()[-3000:]
            time.sleep(0.05)
        mock.reset()
        before = proc.stats()
        records = _refuses_every_operation(listener, audit, mock)
        close_books(records, before, proc.stats(), sent=len(OPERATIONS))
        assert ecds.config_fail(proc) == failed + 1


def _module_kinds(work: Path, good: Path) -> dict[str, dict]:
    """Edits of the ECDS resource's Wasm `config` that give Envoy a module it cannot run."""
    garbage = work / "garbage.wasm"
    garbage.write_bytes(b"\0asm\x01\0\0\0" + os.urandom(4096))  # a wasm header, then noise
    truncated = work / "truncated.wasm"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = work / "not-wasm.wasm"
    text.write_text("this is not a WebAssembly module\n")

    def module(path: Path):
        return lambda cfg: cfg["vm_config"]["code"]["local"].update(filename=str(path))

    def env(cfg):  # a module that refuses to start: an unknown body-hold mode
        cfg["vm_config"]["environment_variables"] = {
            "key_values": {"BEDROCK_GUARD_HOLD_BODY": "sometimes"}}

    def missing(cfg):
        cfg["vm_config"]["code"]["local"]["filename"] = str(work / "no-such-module.wasm")

    return {"garbage": module(garbage), "truncated": module(truncated), "text": module(text),
            "missing-file": missing, "vm-start-fails": env}


@pytest.mark.parametrize("kind", ["garbage", "truncated", "text", "missing-file",
                                  "vm-start-fails"])
def test_ecds_push_of_a_bad_module_keeps_the_last_good_one(tmp_path, pki_dir, mock, demo_bundle,
                                                          kind):
    """A module push Envoy cannot run (not wasm, cut short, missing, or one whose VM refuses
    to start) is rejected (`config_fail`); the module and bundle in force keep deciding: an
    allowed request goes through, a denied one is refused with its reason and record."""
    from tests.conftest import WASM_PATH
    from tests.harness import ecds

    ecds.ensure_cli()
    pusher = ecds.Pusher(tmp_path, WASM_PATH, pin=False)
    pusher.push(demo_bundle)
    listener, admin = free_port(), free_port()
    cfg = ecds.render(tmp_path, pki_dir, listener, admin, mock.port, pusher.ecds)
    with envoy_stack(cfg, admin, listener, tmp_path, split_logs=True) as proc:
        audit = AuditLog(tmp_path / "envoy-stdout.log")
        c = bedrock_client(listener)
        deadline = time.monotonic() + 30
        while True:
            try:
                converse(c)
                break
            except ClientError:
                assert time.monotonic() < deadline, proc.app_log_text()[-2000:]
                time.sleep(0.1)
        failed = ecds.config_fail(proc)
        config = ecds.wasm_config(pusher.pushed)
        _module_kinds(tmp_path, WASM_PATH)[kind](config)
        pusher.write_raw(ecds.with_config(pusher.pushed, config))
        ecds.wait_config_fail(proc, failed, timeout=30)
        before = proc.stats()
        mock.reset()
        mark = audit.mark()
        assert converse(c)["output"]["message"]["content"][0]["text"] == REPLY_TEXT
        single_forwarded(mock)
        mock.reset()
        with pytest.raises(ClientError) as e:
            converse(c, DENIED)
        assert_client_error_refusal(e.value, "model_denied")
        assert_mock_saw_nothing(mock)
        records = audit.take(2, since=mark)
        assert [(r["decision"], r["reason"]) for r in records] == [
            ("allow", "allowed"), ("deny", "model_denied")], records
        close_books(records, before, proc.stats(), sent=2)
        assert proc.alive()
