"""Run a real Envoy with the bedrock-guard filter, from the shipped demo configuration.

`render_config` loads `envoy/demo.yaml` and rewrites, by walking the parsed structure, the
values a test run must own: listener, admin and upstream ports, the CA file, the wasm module
path and (optionally) the inline policy bundle. Everything else stays as shipped, so the tests
exercise the configuration users run.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "envoy" / "demo.yaml"
WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
UPSTREAM_CLUSTER = "bedrock_runtime_us_east_1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def envoy_binary() -> Path | None:
    """`$ENVOY` when set (and then only it), else the project venv's envoy, else the
    development venv's."""
    env = os.environ.get("ENVOY")
    if env:
        found = shutil.which(env)
        return Path(found) if found else None
    for c in (REPO_ROOT / ".venv" / "bin" / "envoy", Path("/tmp/venvprobe/bin/envoy")):
        if c.is_file() and os.access(c, os.X_OK):
            return c
    return None


def thread_log_lines(path: Path, offset: int, needle: str) -> list[tuple[str, str]]:
    """(thread id, line) of the Envoy log lines in `path` after byte `offset` that contain
    `needle` (Envoy's default format: `[time][thread id][level]...`)."""
    text = path.read_bytes()[offset:].decode(errors="replace")
    out = []
    for line in text.splitlines():
        if needle in line:
            m = re.match(r"\[[^\]]+\]\[(\d+)\]", line)
            if m:
                out.append((m.group(1), line))
    return out


def walk(node: Any) -> Iterator[dict]:
    """Every mapping in a parsed config, depth first (the node itself first)."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


_walk = walk  # the harness modules' older spelling


def _one(found: list, what: str):
    if len(found) != 1:
        raise ValueError(f"envoy/demo.yaml: expected exactly one {what}, found {len(found)}")
    return found[0]


def wasm_plugin_config(cfg: dict) -> dict:
    """The `config` block of the (single) bedrock-guard wasm filter."""
    return _one([n["config"] for n in _walk(cfg)
                 if n.get("@type") == WASM_FILTER_TYPE and "config" in n], "wasm filter")


def embedded_bundle(config_path: Path = DEMO_CONFIG) -> dict:
    """The policy bundle carried inline in an Envoy config, parsed."""
    cfg = yaml.safe_load(Path(config_path).read_text())
    return json.loads(wasm_plugin_config(cfg)["configuration"]["value"])


def render_config(listener_port: int, admin_port: int, upstream_port: int, pki_dir, wasm_path,
                  bundle: dict | None, *, source: Path = DEMO_CONFIG,
                  out_dir: str | os.PathLike | None = None) -> Path:
    cfg = yaml.safe_load(Path(source).read_text())

    cfg["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listeners = cfg["static_resources"]["listeners"]
    _one(listeners, "listener")["address"]["socket_address"]["port_value"] = listener_port

    cluster = _one([c for c in cfg["static_resources"]["clusters"]
                    if c["name"] == UPSTREAM_CLUSTER], f"cluster {UPSTREAM_CLUSTER}")
    endpoints = [n["endpoint"] for n in _walk(cluster["load_assignment"]) if "endpoint" in n]
    for ep in endpoints:
        sa = ep["address"]["socket_address"]
        sa["address"] = "127.0.0.1"
        sa["port_value"] = upstream_port
    _one(endpoints, "upstream endpoint")

    ca_file = str(Path(pki_dir).resolve() / "ca.pem")
    trusted = [n["trusted_ca"] for n in _walk(cfg) if "trusted_ca" in n]
    for t in trusted:
        t["filename"] = ca_file
    _one(trusted, "trusted_ca")

    plugin = wasm_plugin_config(cfg)
    plugin["vm_config"]["code"]["local"]["filename"] = str(Path(wasm_path).resolve())
    if bundle is not None:
        plugin["configuration"]["value"] = json.dumps(bundle, indent=2)

    fd, name = tempfile.mkstemp(prefix="envoy-e2e-", suffix=".yaml", dir=out_dir)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return Path(name)


_base_ids = itertools.count()


def _unique_base_id() -> int:
    # Distinct per process and per start, so concurrent runs never share Envoy's shared memory.
    return (os.getpid() % 100000) * 100 + next(_base_ids) % 100


class EnvoyError(RuntimeError):
    pass


class EnvoyProcess:
    """One Envoy child process. Tests start Envoy through `tests/harness/stack.py`
    (`envoy_stack`), which builds this with the binary, log files and options every stack uses.

    `log_path` receives Envoy's stdout and stderr. With `app_log_path`, Envoy writes its
    application log there (`--log-path`), so `log_path` holds only what the config sends to
    stdout (the access log); `log_tail` then reads the application log. `env` is added to this
    process's environment for Envoy only. `base_id`: Envoy's `--base-id` (shared memory and
    hot-restart domain); by default a fresh one per start (`_unique_base_id`), so two Envoys
    never meet; a hot restart gives both epochs the same one."""

    def __init__(self, config_path: Path, admin_port: int, listener_port: int,
                 log_path: Path, binary: Path | None = None, extra_args: list[str] | None = None,
                 *, app_log_path: Path | None = None, env: dict[str, str] | None = None,
                 concurrency: int = 2, base_id: int | None = None):
        self.concurrency = concurrency
        self.base_id = base_id  # None: a fresh unique one at each start
        self.config_path = Path(config_path)
        self.admin_port = admin_port
        self.listener_port = listener_port
        self.log_path = Path(log_path)
        self.app_log_path = Path(app_log_path) if app_log_path is not None else None
        self.env = dict(env or {})
        self.binary = binary or envoy_binary()
        if self.binary is None:
            raise EnvoyError("no Envoy binary: set ENVOY or run `make` to create .venv")
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 30.0) -> "EnvoyProcess":
        self._log = open(self.log_path, "ab")
        cmd = [str(self.binary), "-c", str(self.config_path),
               "--concurrency", str(self.concurrency), "--log-level", "info", "--base-id",
               str(self.base_id if self.base_id is not None else _unique_base_id())]
        if self.app_log_path is not None:
            cmd += ["--log-path", str(self.app_log_path)]
        cmd += self.extra_args
        env = {**os.environ, **self.env} if self.env else None
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EnvoyError(f"envoy exited with {self.proc.returncode} during start-up:\n"
                                 + self.log_tail())
            try:
                status, _ = self.admin("GET", "/ready", timeout=1)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise EnvoyError(f"envoy not ready after {timeout:.0f}s:\n" + self.log_tail())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> "EnvoyProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 15) -> str:
        """Envoy's warnings and errors, then the last lines of its log (start-up is verbose):
        the application log when it has its own file, else `log_path`."""
        all_lines = self.app_log_text().splitlines()
        if not all_lines:
            return "(empty log)"
        problems = [ln for ln in all_lines[:-lines]
                    if "][warning][" in ln or "][error][" in ln or "][critical][" in ln]
        head = problems[-40:] + (["..."] if problems else [])
        return "\n".join(head + all_lines[-lines:])

    def log_text(self) -> str:
        """Everything Envoy wrote to stdout and stderr (`log_path`)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def app_log_text(self) -> str:
        """Envoy's application log: `app_log_path` when set, else the same as `log_text`."""
        if self.app_log_path is None:
            return self.log_text()
        try:
            return self.app_log_path.read_text(errors="replace")
        except OSError:
            return ""

    def admin(self, method: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stats(self, filter_regex: str | None = None) -> dict[str, int]:
        """Counters and gauges from the admin `/stats` endpoint (histograms skipped)."""
        path = "/stats"
        if filter_regex:
            from urllib.parse import quote
            path += "?filter=" + quote(filter_regex)
        status, body = self.admin("GET", path)
        if status != 200:
            raise EnvoyError(f"/stats answered {status}")
        out = {}
        for line in body.decode().splitlines():
            name, sep, value = line.partition(": ")
            if sep and value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out
