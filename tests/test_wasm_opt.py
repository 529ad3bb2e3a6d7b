"""scripts/wasm-opt.sh, the post-link pass that writes the shipped module (`make build`).

What it promises, checked with the real wasm-opt on small modules built here:
- the data section stays as the linker wrote it, byte for byte: the trust-anchor slot is a long
  run of zeros that `bedrock-guard anchor` stamps in place, and `-O2`'s memory-packing would drop
  it; if wasm-opt changes the data anyway, the script refuses to write the module;
- the code is what `-O2` makes of it (the passes are `-O2`'s, spelled out without
  memory-packing);
- no function is inlined into another (beyond trivial ones), so V8's compile-time memory in Envoy
  does not grow with merged functions (bench/README.md, "Memory when idle, by build");
- it may use only the features rustc enables for wasm32-wasip1: a module using another (SIMD) is
  refused, not passed on;
- a refused module leaves no output behind, and the output is the same for the same input;
- the exports survive (proxy-wasm finds the module's entry points by name).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness.envoy import REPO_ROOT
from tests.harness.wasm_module import (
    CODE_SECTION, DATA_SECTION, exports, function_body_sizes, module_of, section,
)

SCRIPT = REPO_ROOT / "scripts" / "wasm-opt.sh"

# entry(x) = helper(x) + 1: calls the second function, its only caller.
ENTRY = b"\x20\x00\x10\x01\x41\x01\x6a\x0b"
# helper(x) = x*x + 3x + 7: small, no loop, no call (the kind binaryen's -O2 inlines by default).
HELPER = b"\x20\x00\x20\x00\x6c\x20\x00\x41\x03\x6c\x6a\x41\x07\x6a\x0b"
# simd(x) = x, after a v128.const that is dropped: a SIMD instruction.
SIMD = b"\xfd\x0c" + bytes(16) + b"\x1a\x20\x00\x0b"
# A slot like the anchor's: a marker, then a long run of zeros, between other data.
SLOT = b"bedrock-guard/anchor-slot/v1" + bytes(4 + 4 + 2000)
DATA = [(1024, b"before" + SLOT + b"after"), (8192, b"\x01" + bytes(64) + b"\x02")]


def run(tmp_path: Path, module: bytes, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    src, out = tmp_path / "in.wasm", tmp_path / "out.wasm"
    src.write_bytes(module)
    if extra:
        cmd = ["wasm-opt", *extra, str(src), "-o", str(out)]
    else:
        cmd = [str(SCRIPT), str(src), str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120), out


def test_a_function_with_one_caller_is_not_inlined(tmp_path):
    module = module_of("entry", [ENTRY, HELPER])
    done, out = run(tmp_path, module)
    assert done.returncode == 0, done.stderr
    assert len(function_body_sizes(out.read_bytes())) == 2
    assert exports(out.read_bytes()) == ["entry"]
    # Control: binaryen's -O2 on its own merges the two functions into one.
    plain, plain_out = run(tmp_path, module, "-O2")
    assert plain.returncode == 0, plain.stderr
    assert len(function_body_sizes(plain_out.read_bytes())) == 1


def test_a_feature_rustc_does_not_enable_is_refused_and_nothing_is_written(tmp_path):
    done, out = run(tmp_path, module_of("entry", [SIMD]))
    assert done.returncode != 0
    assert "features should be allowed" in done.stderr and "v128" in done.stderr, done.stderr[-2000:]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "in.wasm"], "no temporary file left behind"
    # Control: the same module without the SIMD instruction passes.
    done, out = run(tmp_path, module_of("entry", [b"\x20\x00\x0b"]))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"\0asm")


def test_bulk_memory_which_rustc_emits_is_allowed(tmp_path):
    # memory.fill needs a memory: add one (section 5) to a module whose function fills 0..x.
    module = bytearray(module_of("entry", [b"\x41\x00\x41\x00\x20\x00\xfc\x0b\x00\x20\x00\x0b"]))
    memory = b"\x05\x03\x01\x00\x01"
    at = module.index(b"\x07", 8 + 7 + 5)  # the export section follows type (7) and function (5)
    module[at:at] = memory
    done, out = run(tmp_path, bytes(module))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"\0asm")
    # Control: wasm-opt without the script's features refuses it (so the module does use one).
    plain, _ = run(tmp_path, bytes(module), "-O2")
    assert plain.returncode != 0 and "bulk memory" in plain.stderr, plain.stderr[-2000:]


def test_the_same_input_gives_the_same_output(tmp_path):
    module = module_of("entry", [ENTRY, HELPER])
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _, a = run(first, module)
    _, b = run(second, module)
    assert a.read_bytes() == b.read_bytes()


def test_the_data_section_stays_as_linked(tmp_path):
    module = module_of("entry", [ENTRY, HELPER], DATA)
    done, out = run(tmp_path, module)
    assert done.returncode == 0, done.stderr
    optimised = out.read_bytes()
    assert section(optimised, DATA_SECTION) == section(module, DATA_SECTION)
    assert optimised.count(SLOT) == 1
    # Control: plain -O2 packs the zeros away, slot and all.
    plain, plain_out = run(tmp_path, module, "-O2")
    assert plain.returncode == 0, plain.stderr
    assert section(plain_out.read_bytes(), DATA_SECTION) != section(module, DATA_SECTION)
    assert SLOT not in plain_out.read_bytes()


def test_the_code_is_what_o2_makes_of_it(tmp_path):
    module = module_of("entry", [ENTRY, HELPER, b"\x20\x00\x20\x00\x6a\x0b"], DATA)
    done, out = run(tmp_path, module)
    assert done.returncode == 0, done.stderr
    plain, plain_out = run(tmp_path, module, "-O2", "-fimfs", "0", "-ocimfs", "0")
    assert plain.returncode == 0, plain.stderr
    assert section(out.read_bytes(), CODE_SECTION) == section(plain_out.read_bytes(), CODE_SECTION)


def test_a_wasm_opt_that_changes_the_data_is_refused(tmp_path):
    """A wasm-opt on PATH that packs memory (as `-O2` does) gets its output refused."""
    real = subprocess.run(["bash", "-c", "command -v wasm-opt"], capture_output=True, text=True,
                          check=True).stdout.strip()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "wasm-opt"
    # Keeps the script's input and output (its last three arguments: IN -o OUT), adds -O2.
    fake.write_text(f'#!/bin/sh\nfor a; do :; done\neval in=\\${{$(($# - 2))}}\n'
                    f'exec {real} --enable-bulk-memory -O2 "$in" -o "$a"\n')
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    src, out = work / "in.wasm", work / "out.wasm"
    src.write_bytes(module_of("entry", [ENTRY, HELPER], DATA))
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin"}
    done = subprocess.run([str(SCRIPT), str(src), str(out)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode != 0
    assert "the data section changed" in done.stderr, done.stderr[-2000:]
    assert not out.exists()
    assert list(work.iterdir()) == [src], "no temporary file left behind"
