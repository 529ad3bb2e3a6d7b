"""The shipped module's shape, which sets what every Envoy pays to load it.

Envoy runs V8 with its optimising compiler only (no baseline tier): every function of the module
is compiled when the module loads, and the compiler's memory grows faster than a function's size.
Memory that the allocator takes for compiling stays with the process afterwards. One 47 KB
function (`policies::bundle::compile::compile`, with every section compiler inlined into it) cost
about 25 MiB of compile-time memory and 5 to 8 MiB of each Envoy's resident memory when idle
(bench/README.md, "Memory when idle, by build"). The bound below keeps such a function from
coming back unnoticed: a configuration-time function that grows past it should be split (the
section compilers are `#[inline(never)]` for this reason). The module's size is bounded too, as
V8's memory for compiled code follows it.

To see which function is over the bound: build with symbols
(`CARGO_PROFILE_RELEASE_STRIP=none CARGO_TARGET_DIR=/tmp/named scripts/cargo-wasm.sh build
--release -p bedrock-guard-plugin`) and list the name section (bench/README.md shows how).
"""

from __future__ import annotations

import pytest

from tests.harness.stack import WASM_PATH
from tests.harness.wasm_module import MAGIC, function_body_sizes, uleb_bytes

# The largest function body allowed, in bytes. The largest today is p384's field arithmetic
# (about 15 KB, straight-line code built at opt-level "z"). It also holds scripts/wasm-opt.sh to
# its word: with binaryen's default inlining the module has bodies of 60 and 92 KB.
MAX_FUNCTION_BYTES = 16 * 1024
# The module's size: 1,071,757 bytes on 2026-12-01 after scripts/wasm-opt.sh (1,202,395 as
# linked); growth past this needs a measurement of what it costs in idle memory, and a new bound
# with its reason. The module as linked, without the post-link pass, is over it.
MAX_MODULE_BYTES = 1_110_000


def _module_with_bodies(sizes: list[int]) -> bytes:
    """A module whose code section holds bodies of these sizes (only the framing is valid)."""
    payload = uleb_bytes(len(sizes)) + b"".join(uleb_bytes(s) + b"\0" * s for s in sizes)
    return MAGIC + bytes([10]) + uleb_bytes(len(payload)) + payload


def test_reader_sees_each_body():
    assert function_body_sizes(_module_with_bodies([3, 200, 47_716])) == [3, 200, 47_716]
    with pytest.raises(ValueError):
        function_body_sizes(b"not wasm")
    with pytest.raises(ValueError):
        function_body_sizes(_module_with_bodies([10])[:-3])


def test_no_function_in_the_shipped_module_is_over_the_bound():
    sizes = function_body_sizes(WASM_PATH.read_bytes())
    assert len(sizes) > 1000, "control: the shipped module's functions are read"
    largest = max(sizes)
    over = sorted(((s, i) for i, s in enumerate(sizes) if s > MAX_FUNCTION_BYTES), reverse=True)
    assert not over, (
        f"{len(over)} function bodies over {MAX_FUNCTION_BYTES} bytes (size, index in the code "
        f"section): {over[:10]}; see this file's docstring")
    assert largest > 1024, "control: the largest body is a real function"


def test_the_shipped_module_is_within_its_size():
    size = WASM_PATH.stat().st_size
    assert size <= MAX_MODULE_BYTES, (
        f"{WASM_PATH.name} is {size:,} bytes, over {MAX_MODULE_BYTES:,}: see this file's docstring")
