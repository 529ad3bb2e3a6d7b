"""The module build is reproducible: a second, clean build of the same sources, from another
checkout path, into another target dir and with another cargo home (whose registry is this
one's, linked, so nothing is downloaded), gives a module with the same sha256 as
dist/bedrock_guard.wasm (`make build`). Without the remapping the registry crates' panic
locations alone (`$CARGO_HOME/registry/src/...`, about fifty of them) would differ.

scripts/cargo-wasm.sh makes that so: it rewrites every path compiled into the module (the
workspace, the cargo registry, the target dir, the standard library's source) to a fixed prefix
(`--remap-path-prefix`); the release profile's `codegen-units = 1`, LTO and `strip` do the rest,
and nothing in the build reads the clock. The second build goes through the same post-link pass
as `make build` (scripts/wasm-opt.sh), whose output is checked here too. The second build
compiles everything, the standard library included (`-Zbuild-std`), so it is the slowest test of
the suite: see tests/README.md.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.conftest import WASM_PATH
from tests.harness.envoy import REPO_ROOT

# What a path left in the module would start with on this machine.
CARGO_HOME = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
BUILD_PATHS = [str(REPO_ROOT), str(CARGO_HOME), "/usr/lib/rustlib/src"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checkout_copy(dest: Path) -> None:
    """The working tree's files (tracked and untracked, not ignored: what `make build` sees)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, check=True, capture_output=True).stdout
    for rel in sorted(set(listed.decode().split("\0")) - {""}):
        src = REPO_ROOT / rel
        if rel.split("/")[0] in (".venv", "dist", ".build", "target") or not src.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


def test_the_module_names_no_build_path():
    module = WASM_PATH.read_bytes()
    for path in BUILD_PATHS:
        assert path.encode() not in module, f"{path} is compiled into {WASM_PATH.name}"
    # Control: panic locations are there, with the remapped prefixes (cargo passes the
    # workspace's own files as relative paths; registry crates and the standard library have
    # absolute ones, here rewritten).
    assert b"\0policies/src/" in module
    assert b"\0/cargo/registry/src/index.crates.io-" in module
    assert b"\0/rustc/src/library/" in module


def test_a_second_clean_build_elsewhere_gives_the_same_sha256(tmp_path):
    expected = sha256(WASM_PATH)
    checkout = tmp_path / "elsewhere" / "bedrock-guard-copy"
    target = tmp_path / "other-target"
    checkout_copy(checkout)
    assert (checkout / "Cargo.lock").is_file() and (checkout / "plugin" / "src" / "lib.rs").is_file()
    cargo_home = tmp_path / "other-cargo-home"
    cargo_home.mkdir()
    (cargo_home / "registry").symlink_to(CARGO_HOME / "registry", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("RUSTFLAGS", "CARGO_TARGET_DIR")}
    env["CARGO_TARGET_DIR"] = str(target)
    env["CARGO_HOME"] = str(cargo_home)
    t0 = time.monotonic()
    try:
        done = subprocess.run(
            [str(checkout / "scripts" / "cargo-wasm.sh"), "build", "--release", "--locked",
             "--offline", "-q", "-p", "bedrock-guard-plugin"],
            cwd=checkout, env=env, capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]
        print(f"second clean build: {time.monotonic() - t0:.0f} s")
        linked = target / "wasm32-wasip1" / "release" / "bedrock_guard.wasm"
        rebuilt = target / "bedrock_guard.wasm"
        subprocess.run([str(checkout / "scripts" / "wasm-opt.sh"), str(linked), str(rebuilt)],
                       cwd=checkout, env=env, check=True, timeout=300)
        assert sha256(rebuilt) == expected, (
            f"{rebuilt} differs from {WASM_PATH} (is dist/ stale? run `make build`)")
    finally:
        shutil.rmtree(target, ignore_errors=True)
