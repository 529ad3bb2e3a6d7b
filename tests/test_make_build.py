"""`make build` takes the module from the directory the wasm build actually wrote to.

`scripts/cargo-wasm.sh` builds into `$CARGO_TARGET_DIR` (default `target/wasm`); the Makefile
asks the script for that directory (`cargo-wasm.sh target-dir`) instead of assuming the
default, so a `CARGO_TARGET_DIR` set by the user is honoured by both. The step of `make -n build`
that writes dist/ (the post-link pass, scripts/wasm-opt.sh) is run here against a stand-in module
(no compiler run).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.harness.envoy import REPO_ROOT
from tests.harness.wasm_module import exports, module_of


def copy_step(env: dict) -> str:
    out = subprocess.run(["make", "-n", "build"], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    [line] = [line for line in out.splitlines() if line.startswith("scripts/wasm-opt.sh ")]
    assert line.endswith(" dist/bedrock_guard.wasm"), line
    return line


def run_copy(tmp_path: Path, env: dict) -> Path:
    """Run the Makefile's dist/ step in a scratch tree that has the repository's scripts."""
    work = tmp_path / "work"
    (work / "dist").mkdir(parents=True)
    (work / "scripts").symlink_to(REPO_ROOT / "scripts")
    subprocess.run(["bash", "-c", copy_step(env)], cwd=work, env=env, check=True, timeout=60)
    return work / "dist" / "bedrock_guard.wasm"


def stand_in(target: Path, export: str) -> None:
    """A valid module (the step optimises it) that names where it came from in its export."""
    module = target / "wasm32-wasip1" / "release" / "bedrock_guard.wasm"
    module.parent.mkdir(parents=True)
    module.write_bytes(module_of(export, [b"\x20\x00\x0b"]))


def test_a_user_set_cargo_target_dir_is_where_the_module_is_copied_from(tmp_path):
    target = tmp_path / "elsewhere"
    stand_in(target, "from_the_users_target_dir")
    env = {**os.environ, "CARGO_TARGET_DIR": str(target)}
    assert exports(run_copy(tmp_path, env).read_bytes()) == ["from_the_users_target_dir"]


def test_the_default_is_target_wasm_as_the_build_script_uses(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
    out = subprocess.run([str(REPO_ROOT / "scripts" / "cargo-wasm.sh"), "target-dir"],
                         env=env, capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == str(REPO_ROOT / "target" / "wasm")
