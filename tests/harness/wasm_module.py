"""Just enough of the WebAssembly binary format to read a module's sections and the size of
each function body (https://webassembly.github.io/spec/core/binary/modules.html)."""

from __future__ import annotations

MAGIC = b"\0asm\x01\0\0\0"
CODE_SECTION = 10
DATA_SECTION = 11


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


def uleb_bytes(n: int) -> bytes:
    """`n` as an unsigned LEB128."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _section(sid: int, items: list[bytes]) -> bytes:
    payload = uleb_bytes(len(items)) + b"".join(items)
    return bytes([sid]) + uleb_bytes(len(payload)) + payload


def module_of(export: str, bodies: list[bytes], data: list[tuple[int, bytes]] = ()) -> bytes:
    """A valid module of functions of type (i32) -> i32, with no locals beyond the parameter:
    `bodies` are their instructions (each ending with `end`, 0x0b); the first is exported as
    `export`, the others are not. With `data`, (address, bytes) pairs, it also has a one-page
    memory, exported as `memory` (as a proxy-wasm module's is), and an active data segment for
    each. For tests of tools that read or rewrite modules."""
    name = export.encode()
    functype = b"\x60\x01\x7f\x01\x7f"
    code = [uleb_bytes(len(body) + 1) + b"\0" + body for body in bodies]
    memory = [_section(5, [b"\x00\x01"])] if data else []
    segments = [b"\x00\x41" + _sleb_bytes(at) + b"\x0b" + uleb_bytes(len(d)) + d for at, d in data]
    return (MAGIC + _section(1, [functype]) + _section(3, [b"\0"] * len(bodies)) + b"".join(memory)
            + _section(7, [uleb_bytes(len(name)) + name + b"\0\0"]
                       + ([b"\x06memory\x02\x00"] if data else []))
            + _section(CODE_SECTION, code)
            + (_section(DATA_SECTION, segments) if data else b""))


def _sleb_bytes(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def section(module: bytes, sid: int) -> bytes | None:
    """The payload of the module's section `sid`, or None."""
    return next((payload for s, payload in sections(module) if s == sid), None)


def exports(module: bytes) -> list[str]:
    """The names of the module's exports, in order."""
    names = []
    for sid, payload in sections(module):
        if sid != 7:
            continue
        count, at = _uleb(payload, 0)
        for _ in range(count):
            size, at = _uleb(payload, at)
            names.append(payload[at:at + size].decode())
            _, at = _uleb(payload, at + size + 1)
    return names


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
