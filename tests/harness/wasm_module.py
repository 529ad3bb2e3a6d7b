"""Just enough of the WebAssembly binary format to read a module's sections and the size of
each function body (https://webassembly.github.io/spec/core/binary/modules.html)."""

from __future__ import annotations

MAGIC = b"\0asm\x01\0\0\0"
CODE_SECTION = 10


def _uleb(data: bytes, at: int) -> tuple[int, int]:
    """An unsigned LEB128 at `at`: (value, offset after it)."""
    value = shift = 0
    while True:
        if at >= len(data):
            raise ValueError("truncated LEB128")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def sections(module: bytes) -> list[tuple[int, bytes]]:
    """(section id, payload) in file order."""
    if not module.startswith(MAGIC):
        raise ValueError("not a WebAssembly 1.0 module")
    out, at = [], len(MAGIC)
    while at < len(module):
        sid = module[at]
        size, start = _uleb(module, at + 1)
        end = start + size
        if end > len(module):
            raise ValueError(f"section {sid} runs past the end of the module")
        out.append((sid, module[start:end]))
        at = end
    return out


def function_body_sizes(module: bytes) -> list[int]:
    """The size in bytes of every function body in the code section, in function order."""
    sizes = []
    for sid, payload in sections(module):
        if sid != CODE_SECTION:
            continue
        count, at = _uleb(payload, 0)
        for _ in range(count):
            size, at = _uleb(payload, at)
            sizes.append(size)
            at += size
        if at != len(payload):
            raise ValueError("code section: bodies do not fill it")
    return sizes
