"""Encoder for `application/vnd.amazon.eventstream` frames (what Bedrock streams back).

Frame layout (all integers big-endian):
  total_length u32 | headers_length u32 | prelude_crc u32 (CRC32 of the first 8 bytes)
  headers | payload | message_crc u32 (CRC32 of every byte before it)
Header entry: name_len u8 | name | value type u8 | value. Only type 7 (string: u16 length + UTF-8)
is needed for Bedrock's `:message-type`, `:event-type`, `:content-type` headers.
"""

from __future__ import annotations

import struct
import zlib

_STRING = 7


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    out = bytearray()
    for name, value in headers:
        n = name.encode("utf-8")
        v = value.encode("utf-8")
        if len(n) > 255 or len(v) > 0xFFFF:
            raise ValueError("event-stream header too long")
        out += struct.pack(">B", len(n)) + n + struct.pack(">BH", _STRING, len(v)) + v
    return bytes(out)


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    hdrs = encode_headers(headers)
    total = 12 + len(hdrs) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hdrs))
    head = prelude + struct.pack(">I", _crc(prelude))
    body = head + hdrs + payload
    return body + struct.pack(">I", _crc(body))


def encode_event(event_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    return encode_message(
        [
            (":event-type", event_type),
            (":content-type", content_type),
            (":message-type", "event"),
        ],
        payload,
    )


def decode_frames(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """A strict decoder for the tests' own use (CRCs checked, string headers only)."""
    frames = []
    pos = 0
    while pos < len(data):
        total, hlen = struct.unpack_from(">II", data, pos)
        (pcrc,) = struct.unpack_from(">I", data, pos + 8)
        if _crc(data[pos:pos + 8]) != pcrc:
            raise ValueError("prelude CRC mismatch")
        frame = data[pos:pos + total]
        if len(frame) != total:
            raise ValueError("truncated frame")
        (mcrc,) = struct.unpack_from(">I", frame, total - 4)
        if _crc(frame[:-4]) != mcrc:
            raise ValueError("message CRC mismatch")
        hdrs: dict[str, str] = {}
        hp = 12
        while hp < 12 + hlen:
            nlen = frame[hp]
            name = frame[hp + 1:hp + 1 + nlen].decode()
            hp += 1 + nlen
            if frame[hp] != _STRING:
                raise ValueError("unsupported header type")
            (vlen,) = struct.unpack_from(">H", frame, hp + 1)
            hdrs[name] = frame[hp + 3:hp + 3 + vlen].decode()
            hp += 3 + vlen
        frames.append((hdrs, frame[12 + hlen:total - 4]))
        pos += total
    return frames
