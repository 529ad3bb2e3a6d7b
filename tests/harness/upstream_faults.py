"""The mock Bedrock with upstream faults: resets, early closes, stalls and slow answers.

`FaultMock` is `audit_log.ScriptedMock` (throttles, server errors) plus the faults a real
upstream connection has, each triggered, like ScriptedMock's, by a magic string in the request
body, so one mock serves a whole test module and each request chooses its fault. The wire
formats, the SigV4 check and the request records stay the base mock's; a request the mock cut
short is still recorded (`extra["fault"]`).

| magic string | what the mock does |
| --- | --- |
| `RESET_MID_STREAM` | a stream answer (200, event-stream): its first `FRAMES_BEFORE_CUT` complete frames, then a TCP RST |
| `CLOSE_MID_FRAME` | the same frames plus half of the next one, then a FIN (no TLS close_notify, no last chunk) |
| `STALL_MID_STREAM` | the same frames, then silence for `slow_seconds` (the route timeout fires first), then a FIN |
| `RESET_BEFORE_HEADERS` | reads the whole request, then a TCP RST instead of any answer |
| `SLOW` | the normal answer, after `slow_seconds` |
| `PACED_STREAM` | a complete stream answer, one frame every `pace_seconds` (a long-running stream) |
| `RESET_IN_BODY` | (in the first `body_peek` bytes of a longer body) a TCP RST after reading only those bytes |
"""

from __future__ import annotations

import struct

from .audit_log import ScriptedMock
from .mock_bedrock import RecordedRequest, _Reply

RESET_MID_STREAM = "__mock_reset_mid_stream__"
CLOSE_MID_FRAME = "__mock_close_mid_frame__"
STALL_MID_STREAM = "__mock_stall_mid_stream__"
RESET_BEFORE_HEADERS = "__mock_reset_before_headers__"
SLOW = "__mock_slow__"
PACED_STREAM = "__mock_paced_stream__"
RESET_IN_BODY = "__mock_reset_in_body__"

FRAMES_BEFORE_CUT = 2  # the stream faults deliver exactly this many complete frames


def frames_of(stream: bytes) -> list[bytes]:
    """An event stream split into its frames (each frame's prelude starts with its length)."""
    out = []
    while stream:
        (n,) = struct.unpack(">I", stream[:4])
        out.append(stream[:n])
        stream = stream[n:]
    return out


class FaultMock(ScriptedMock):
    """ScriptedMock plus the faults above (see the module docstring)."""

    slow_seconds = 2.0
    pace_seconds = 0.3
    body_peek = 4096

    def body_fault(self, head: bytes) -> bool:
        return RESET_IN_BODY.encode() in head

    def handle(self, rec: RecordedRequest) -> _Reply:
        reply = super().handle(rec)
        if not rec.signature_ok or reply.status != 200:
            return reply
        body = rec.body
        if SLOW.encode() in body:
            reply.delay = self.slow_seconds
            rec.extra["fault"] = "slow"
        elif RESET_BEFORE_HEADERS.encode() in body:
            reply.cut = ("reset", -1)
            rec.extra["fault"] = "reset-before-headers"
        elif reply.chunks is not None:
            frames = frames_of(b"".join(reply.chunks))
            assert len(frames) > FRAMES_BEFORE_CUT + 1, "the mock's streams are longer"
            if RESET_MID_STREAM.encode() in body:
                reply.chunks, reply.cut = frames, ("reset", FRAMES_BEFORE_CUT)
                rec.extra["fault"] = "reset-mid-stream"
            elif CLOSE_MID_FRAME.encode() in body:
                half = frames[FRAMES_BEFORE_CUT][:len(frames[FRAMES_BEFORE_CUT]) // 2]
                reply.chunks = frames[:FRAMES_BEFORE_CUT] + [half]
                reply.cut = ("close", FRAMES_BEFORE_CUT + 1)
                rec.extra["fault"] = "close-mid-frame"
            elif PACED_STREAM.encode() in body:
                reply.chunks, reply.pace = frames, self.pace_seconds
                rec.extra["fault"] = "paced-stream"
            elif STALL_MID_STREAM.encode() in body:
                reply.chunks, reply.cut = frames, ("stall", FRAMES_BEFORE_CUT)
                reply.stall = self.slow_seconds
                rec.extra["fault"] = "stall-mid-stream"
        return reply
