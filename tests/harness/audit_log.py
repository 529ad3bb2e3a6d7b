"""Read the filter's audit records (Envoy's access log on stdout) and run a private stack for them.

The demo config's access log writes `%FILTER_STATE(wasm.bedrock_guard_audit:PLAIN)%` and a
newline to Envoy's stdout for every request: one JSON object per line, or `-` when the filter
never saw the request (Envoy's codec answered before any filter ran). `AuditStack` starts its
own mock Bedrock and Envoy so the lines (and the stats) belong to one test module only, with
Envoy's application log sent elsewhere (`--log-path`), so the stdout file holds nothing but the
access log, and a short access-log flush interval, so a line shows up within milliseconds
(Envoy's default is 10 s).

`AuditLog.take(n)` waits for exactly `n` new lines and fails on fewer, on more (after a settle
time longer than the flush interval), and on any line that is not a strict JSON object of
printable ASCII.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import time
from pathlib import Path
from typing import Callable

import yaml

from .clients import SentRequests, bedrock_client
from .envoy import EnvoyProcess, free_port, render_config
from .mock_bedrock import REPLY_TEXT, MockBedrock, RecordedRequest, _error, _json_reply
from .stack import ACCESS_LOG_FLUSH_MS, envoy_stack

# Every key of a record, in the order the engine writes them (policies/src/audit.rs).
AUDIT_KEYS = (
    "eventVersion", "eventTime", "eventSource", "requestID", "eventName", "awsRegion",
    "sourceIPAddress", "userIdentity", "accessKeyId", "credentialType", "requestParameters",
    "endpoint", "vpcEndpointId", "decision", "reason", "detail", "ruleId", "mode", "bundleName",
    "bundleRevision", "bundleDigest", "bundleKeyId", "status", "upstreamStatus", "upstreamAddress",
    "upstreamRequestId", "latencyMs",
    "inputTokens", "outputTokens", "streamErrors", "streamExceptions", "streamExceptionType",
)
NO_RECORD = "-"  # what %FILTER_STATE(...)% prints when the filter set nothing
FLUSH_MS = ACCESS_LOG_FLUSH_MS  # Envoy's access-log flush interval (`split_logs=True`)
SETTLE_SECONDS = 0.25  # well past FLUSH_MS: a line that has not appeared by then is not coming

# Magic strings in a request body that make `ScriptedMock` misbehave like Bedrock can.
THROTTLE = "__mock_throttle__"  # 429 ThrottlingException
SERVER_ERROR = "__mock_error500__"  # 500 InternalServerException
ECHO = "__mock_echo__"  # the reply carries `ScriptedMock.completion_marker`


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ValueError(f"duplicate keys {sorted(dup)}")
    return dict(pairs)


def parse_line(line: str) -> dict:
    """One audit line, strictly: printable ASCII, one JSON object, no duplicate key, exactly
    the known keys in the known order."""
    bad = [c for c in line if not " " <= c <= "~"]
    assert not bad, f"audit line has non-printable or non-ASCII characters {bad!r}: {line!r}"
    try:
        doc = json.loads(line, object_pairs_hook=_no_duplicates)
    except ValueError as e:
        raise AssertionError(f"audit line is not one strict JSON object ({e}): {line!r}") from None
    assert isinstance(doc, dict), f"audit line is not a JSON object: {line!r}"
    assert tuple(doc) == AUDIT_KEYS, (
        f"audit keys differ from the pinned schema:\n got {list(doc)}\nwant {list(AUDIT_KEYS)}")
    return doc


def parse_event_time(value: str) -> _dt.datetime:
    assert isinstance(value, str) and value.endswith("Z") and len(value) == 24, value
    return _dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc)


class AuditLog:
    """The access-log lines Envoy wrote to its stdout file."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def lines(self) -> list[str]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        text = data.decode("latin-1")
        complete = text[:text.rfind("\n") + 1] if "\n" in text else ""
        return complete.splitlines()

    def text(self) -> str:
        return self.path.read_bytes().decode("latin-1") if self.path.exists() else ""

    def mark(self) -> int:
        return len(self.lines())

    def take_raw(self, n: int, since: int, timeout: float = 5.0) -> list[str]:
        """Exactly `n` lines written after `since` (waits for them, then checks nothing more
        follows)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.lines()) - since < n:
            time.sleep(0.01)
        time.sleep(SETTLE_SECONDS)
        new = self.lines()[since:]
        assert len(new) == n, (f"expected exactly {n} access-log line(s), got {len(new)}:\n"
                               + "\n".join(new))
        return new

    def take(self, n: int, since: int, timeout: float = 5.0) -> list[dict]:
        """Exactly `n` new audit records (every line must be a record, not `-`)."""
        return [parse_line(line) for line in self.take_raw(n, since, timeout)]


class ScriptedMock(MockBedrock):
    """The mock Bedrock, plus answers the base mock cannot give: a throttle, a server error, and
    a completion that carries a marker (chosen by the test) so a leak of model output can be
    searched for. Triggered by magic strings in the request body; routing, signature checks and
    records are the base mock's."""

    completion_marker = ""

    def handle(self, rec: RecordedRequest):
        reply = super().handle(rec)
        if rec.signature_ok and THROTTLE.encode() in rec.body:
            rec.input_tokens = rec.output_tokens = None
            return _error(429, "ThrottlingException:http://internal.amazon.com/coral/"
                          "com.amazon.bedrock/", "Too many requests, please wait.")
        if rec.signature_ok and SERVER_ERROR.encode() in rec.body:
            rec.input_tokens = rec.output_tokens = None
            return _error(500, "InternalServerException", "mock internal error")
        return reply

    def _text(self, rec: RecordedRequest) -> str:
        if ECHO.encode() in rec.body and self.completion_marker:
            return REPLY_TEXT + " " + self.completion_marker
        return REPLY_TEXT

    def _op_Converse(self, rec: RecordedRequest):
        reply = super()._op_Converse(rec)
        text = self._text(rec)
        if text == REPLY_TEXT:
            return reply
        doc = json.loads(reply.body)
        doc["output"]["message"]["content"][0]["text"] = text
        return _json_reply(reply.status, doc)


def bundle_digest(bundle: dict) -> str:
    """`sha256:` + hex of the bundle's canonical JSON (RFC 8785; for an ASCII, integer-only
    bundle that is sorted keys and no whitespace)."""
    canonical = json.dumps(bundle, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class AuditStack:
    """A private ScriptedMock (or `mock_class`) + Envoy (demo config, optionally another bundle,
    top-level `bootstrap` keys and an `edit_config(doc)` applied to the parsed config), the
    Envoy started by `stack.envoy_stack` with `split_logs=True` (stdout: the access log only)."""

    def __init__(self, work: Path, pki_dir: Path, wasm_path: Path, bundle: dict | None,
                 *, bootstrap: dict | None = None, credentials: dict | None = None,
                 mock_class: type[ScriptedMock] | None = None,
                 edit_config: Callable[[dict], None] | None = None):
        self.mock_class = mock_class or ScriptedMock
        self.edit_config = edit_config
        self.work = Path(work)
        self.pki_dir = pki_dir
        self.wasm_path = wasm_path
        self.bundle = bundle
        self.bootstrap = bootstrap or {}
        self.credentials = credentials
        self.mock: ScriptedMock | None = None
        self.envoy: EnvoyProcess | None = None
        self.stdout_path = self.work / "envoy-stdout.log"
        self.app_log_path = self.work / "envoy-app.log"
        self.audit = AuditLog(self.stdout_path)
        self._running = contextlib.ExitStack()

    def start(self) -> "AuditStack":
        try:
            self.mock = self.mock_class(pki_dir=self.pki_dir,
                                        credentials=self.credentials).start()
            self._running.callback(self.mock.stop)
            listener, admin = free_port(), free_port()
            cfg = render_config(listener, admin, self.mock.port, self.pki_dir, self.wasm_path,
                                self.bundle, out_dir=self.work)
            if self.bootstrap or self.edit_config:
                doc = yaml.safe_load(cfg.read_text())
                doc.update(self.bootstrap)
                if self.edit_config:
                    self.edit_config(doc)
                cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
            self.envoy = self._running.enter_context(
                envoy_stack(cfg, admin, listener, self.work, split_logs=True))
        except BaseException:  # pytest.fail included: stop the mock
            self.stop()
            raise
        assert (self.envoy.log_path, self.envoy.app_log_path) == (self.stdout_path,
                                                                  self.app_log_path)
        return self

    def stop(self) -> None:
        self._running.close()

    def app_log(self) -> str:
        try:
            return self.app_log_path.read_bytes().decode("latin-1")
        except FileNotFoundError:
            return ""

    def app_log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.app_log().splitlines()[-lines:]) or "(empty log)"


def dry_run_variant(bundle: dict, name: str = "audit-e2e", revision: str = "42") -> dict:
    """The demo bundle under another name and revision, plus a dry-run deny rule for a model the
    demo allows and names literally (so its stats get their own label)."""
    out = json.loads(json.dumps(bundle))
    out["metadata"] = {"name": name, "revision": revision}
    out["rules"].append({"id": "titan-dry-run", "effect": "deny", "mode": "dry-run",
                         "models": ["amazon.titan-text-express-v1"]})
    return out


def boto_client(stack: AuditStack, access_key: str, secret_key: str,
                session_token: str | None = None, *, extra_headers: dict | None = None,
                unsigned_headers: dict | None = None,
                user_agent: str | None = None, user_agent_extra: str | None = None,
                region: str = "us-east-1", host: str = "bedrock-runtime.us-east-1.amazonaws.com"):
    """A bedrock-runtime client wired like an unmodified application (HTTP_PROXY to the stack's
    Envoy). `extra_headers` are added before signing, as an application's middleware would;
    `unsigned_headers` after signing, as a sidecar or credential injector would. No retries
    (`clients.bedrock_client`'s default)."""
    hooks = []
    if extra_headers:
        def add(request, **kwargs):
            for k, v in extra_headers.items():
                request.headers[k] = v
        hooks.append(("before-sign.bedrock-runtime.*", add))
    if unsigned_headers:
        def add_unsigned(request, **kwargs):
            for k, v in unsigned_headers.items():
                request.headers[k] = v
        hooks.append(("before-send.bedrock-runtime.*", add_unsigned))
    sent = SentRequests()
    hooks.append(("before-send.bedrock-runtime.*", sent))
    extra = {}
    if user_agent is not None:
        extra["user_agent"] = user_agent
    if user_agent_extra is not None:
        extra["user_agent_extra"] = user_agent_extra
    client = bedrock_client(stack.envoy.listener_port, host=host, region=region,
                            access_key=access_key, secret_key=secret_key,
                            session_token=session_token, read_timeout=10, hooks=hooks, **extra)
    return client, sent
