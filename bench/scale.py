"""`make bench-scale`: many concurrent ConverseStream answers through one Envoy worker.

For each set-up (no filter, the floor module, the guard), one Envoy under test (envoy/demo.yaml
as `make bench` renders it: one worker, the audit access log, TLS to the upstream) carries
`--streams` ConverseStream requests at once. The upstream is a small asyncio TLS server here
that answers each with an `application/vnd.amazon.eventstream` answer, one event frame every
`--interval` seconds for `--hold` seconds, then `messageStop` and the `metadata` event with the
usage. While every stream is open:

- Envoy's resident memory is sampled (the peak, less the memory after warm-up, over the number
  of streams is the memory per active stream; the guard's own share is the guard's figure less
  the floor's);
- the guard's `wasm_memory_bytes` gauge gives the linear memory of its VM;
- `--probes` new requests are sent: allowed Converse calls, which must be answered 200 by the
  upstream, and calls for a model the bundle does not allow, which the guard must refuse (403,
  `x-bedrock-guard-reason: model_not_allowed`) without reaching the upstream. Their latency is
  reported: new requests are still decided while the streams are held.

Then every stream must have ended with status 200 and every byte of its answer, the access log
must hold one audit line per request, and the upstream must have seen exactly the requests let
through. Any error fails the run (exit 1). Results: a table on stdout and
bench/scale-results.json.

The cluster's circuit breakers are raised to 4096 for the run (Envoy's default of 1024 pending
and active requests per cluster would cap the streams, not the guard).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import ssl
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench import (  # noqa: E402
    CONVERSE, CONVERSE_STREAM, FLOOR_WASM, GUARD_WASM, HOST, MODEL, PKI, Envoy, _hcm,
    envoy_version, make_token_and_jwks, rss_kib, under_test_config,
)
from tests.harness.envoy import free_port  # noqa: E402
from tests.harness.eventstream import decode_frames, encode_event  # noqa: E402

RESULTS = ROOT / "bench" / "scale-results.json"
SETUPS = ("none", "floor", "guard")
REFUSED_MODEL = "meta.llama3-70b-instruct-v1%3A0"  # not allowed by policies/examples/demo.json
CONVERSE_REPLY = json.dumps({
    "output": {"message": {"role": "assistant", "content": [{"text": "scale"}]}},
    "stopReason": "end_turn", "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
    "metrics": {"latencyMs": 12}}).encode()
STREAM_TYPE = "application/vnd.amazon.eventstream"


def frames(deltas: int) -> list[bytes]:
    """A ConverseStream answer as Bedrock shapes it, one encoded frame per element."""
    events = [("messageStart", {"role": "assistant"})]
    events += [("contentBlockDelta", {"contentBlockIndex": 0,
                                      "delta": {"text": f" token{i:04d} of the answer"}})
               for i in range(deltas)]
    events += [("contentBlockStop", {"contentBlockIndex": 0}),
               ("messageStop", {"stopReason": "end_turn"}),
               ("metadata", {"usage": {"inputTokens": 25, "outputTokens": deltas,
                                       "totalTokens": 25 + deltas},
                             "metrics": {"latencyMs": 412}})]
    out = [encode_event(t, json.dumps(p, separators=(",", ":")).encode()) for t, p in events]
    if len(decode_frames(b"".join(out))) != len(out):
        raise SystemExit("scale: the generated event stream does not decode")
    return out


# ---------------------------------------------------------------------------- upstream

class Upstream:
    """The stand-in for Bedrock: HTTP/1.1 over TLS (the test CA's server certificate, which the
    demo cluster verifies), keep-alive. ConverseStream paths get a chunked event stream paced by
    `interval`; any other path a JSON Converse answer."""

    def __init__(self, stream_frames: list[bytes], interval: float, hold: float):
        self.frames, self.interval, self.hold = stream_frames, interval, hold
        self.requests: dict[str, int] = {}
        self.streaming = 0
        self.port = 0
        self.server: asyncio.AbstractServer | None = None

    async def start(self):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(PKI / "server.pem", PKI / "server-key.pem")
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0, ssl=ctx,
                                                 backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                await reader.readexactly(length)
                self.requests[path] = self.requests.get(path, 0) + 1
                if path.endswith("/converse-stream"):
                    await self.stream(writer)
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"x-amzn-requestid: scale\r\ncontent-length: "
                                 + str(len(CONVERSE_REPLY)).encode() + b"\r\n\r\n"
                                 + CONVERSE_REPLY)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError,
                asyncio.CancelledError):
            pass  # the peer closed, or the run is over (keep-alive connections still open)
        finally:
            writer.close()

    async def stream(self, writer: asyncio.StreamWriter):
        writer.write(f"HTTP/1.1 200 OK\r\ncontent-type: {STREAM_TYPE}\r\n"
                     "x-amzn-requestid: scale\r\ntransfer-encoding: chunked\r\n\r\n".encode())
        self.streaming += 1
        try:
            middle = self.frames[1:-3]
            ticks = max(1, int(self.hold / self.interval))
            per_tick = max(1, len(middle) // ticks)
            chunks = [self.frames[:1]] + [middle[i:i + per_tick]
                                          for i in range(0, len(middle), per_tick)]
            chunks.append(self.frames[-3:])
            for i, group in enumerate(chunks):
                if i:
                    await asyncio.sleep(self.interval)
                data = b"".join(group)
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            self.streaming -= 1


# ---------------------------------------------------------------------------- clients

async def read_response(reader: asyncio.StreamReader, on_first_byte=None) -> tuple[int, dict, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if sep:
            headers[k.strip().lower()] = v.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
            if on_first_byte is not None:
                on_first_byte()
                on_first_byte = None
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


def request_bytes(path: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\ncontent-type: application/json\r\n"
            f"content-length: 2\r\n\r\n{{}}").encode()


class Run:
    def __init__(self, port: int, expected: bytes):
        self.port, self.expected = port, expected
        self.first = 0
        self.results: list[tuple[int, bool]] = []
        self.errors: list[str] = []

    def got_first(self):
        self.first += 1

    async def stream(self):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(request_bytes(CONVERSE_STREAM))
            await writer.drain()
            status, headers, body = await read_response(reader, self.got_first)
            self.results.append((status, body == self.expected))
            if status != 200 or body != self.expected:
                self.errors.append(f"stream: status {status}, {len(body)} of "
                                   f"{len(self.expected)} bytes, {headers}")
            writer.close()
        except Exception as e:  # noqa: BLE001 - every failure is a counted error
            self.errors.append(f"stream: {type(e).__name__}: {e}")


async def probe(port: int, model: str) -> tuple[int, str | None, float]:
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_bytes(f"/model/{model}/converse"))
    await writer.drain()
    status, headers, _ = await read_response(reader)
    writer.close()
    return status, headers.get("x-bedrock-guard-reason"), (time.perf_counter() - t0) * 1e3


def wasm_memory(envoy: Envoy) -> int | None:
    body = urllib.request.urlopen(
        f"http://127.0.0.1:{envoy.admin}/stats?filter=bedrock_guard.wasm_memory_bytes$",
        timeout=5).read().decode()
    for line in body.splitlines():
        name, _, value = line.partition(": ")
        if name.endswith("bedrock_guard.wasm_memory_bytes"):
            return int(value)
    return None


def access_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip()) if path.exists() else 0


async def measure(setup: str, args, work: Path, upstream: Upstream, jwks: dict,
                  expected: bytes) -> dict:
    log = work / f"{setup}.access.log"
    cfg = under_test_config(setup, free_port(), free_port(), upstream.port, work, args.guard,
                            args.floor, jwks, log)
    for cluster in cfg["static_resources"]["clusters"]:
        cluster["circuit_breakers"] = {"thresholds": [{
            "max_connections": 4096, "max_pending_requests": 4096, "max_requests": 4096}]}
    _hcm(cfg)  # the shape bench.py checks
    envoy = Envoy(cfg, work, f"scale-{setup}")
    loop = asyncio.get_running_loop()
    try:
        await asyncio.sleep(1.0)
        idle = rss_kib(envoy.proc.pid)
        for _ in range(20):  # warm: V8 tiers up, connection pools fill
            status, _, _ = await probe(envoy.port, MODEL)
            if status != 200:
                raise SystemExit(f"{setup}: warm-up request answered {status}")
        await asyncio.sleep(0.5)
        warm = rss_kib(envoy.proc.pid)
        warm_gauge = None
        if setup == "guard":
            await asyncio.sleep(1.2)  # a tick records the gauge
            warm_gauge = wasm_memory(envoy)
        before_requests = dict(upstream.requests)
        run = Run(envoy.port, expected)
        started = time.monotonic()
        tasks = [loop.create_task(run.stream()) for _ in range(args.streams)]
        while run.first < args.streams and time.monotonic() - started < args.hold:
            await asyncio.sleep(0.05)
            if run.errors:
                break
        all_open_after = time.monotonic() - started
        opened = run.first
        peak, gauge = warm, None
        probes: list[tuple[str, int, str | None, float]] = []
        # Hold: sample memory, and send new requests that must be decided meanwhile.
        for i in range(args.probes):
            model = MODEL if i % 2 == 0 else REFUSED_MODEL
            status, reason, ms = await probe(envoy.port, model)
            probes.append((model, status, reason, ms))
            peak = max(peak, rss_kib(envoy.proc.pid))
            await asyncio.sleep(0.02)
        while upstream.streaming > 0 and any(not t.done() for t in tasks):
            peak = max(peak, rss_kib(envoy.proc.pid))
            if setup == "guard":
                g = wasm_memory(envoy)
                gauge = g if gauge is None or (g or 0) > gauge else gauge
            if upstream.streaming < args.streams * 0.9:
                break
            await asyncio.sleep(0.2)
        await asyncio.gather(*tasks)
        if setup == "guard":
            await asyncio.sleep(1.2)  # the root context's tick records the gauge
            g = wasm_memory(envoy)
            gauge = max(gauge or 0, g or 0) or None
        after = rss_kib(envoy.proc.pid)
        await asyncio.sleep(0.5)
        forwarded = {p: n - before_requests.get(p, 0) for p, n in upstream.requests.items()}
        errors = list(run.errors)
        allowed = [p for p in probes if p[0] == MODEL]
        refused = [p for p in probes if p[0] == REFUSED_MODEL]
        errors += [f"allowed probe answered {s}" for _, s, _, _ in allowed if s != 200]
        if setup == "guard":
            errors += [f"refused probe answered {s} ({r})" for _, s, r, _ in refused
                       if (s, r) != (403, "model_not_allowed")]
            let_through = len(allowed)
        else:
            errors += [f"probe answered {s}" for _, s, _, _ in refused if s != 200]
            let_through = len(allowed) + len(refused)
        converse_up = sum(n for p, n in forwarded.items() if p.endswith("/converse"))
        if converse_up != let_through:
            errors.append(f"upstream saw {converse_up} Converse calls, {let_through} let through")
        if forwarded.get(CONVERSE_STREAM, 0) != args.streams:
            errors.append(f"upstream saw {forwarded.get(CONVERSE_STREAM, 0)} streams")
        total = 20 + args.streams + len(probes)
        deadline = time.monotonic() + 10  # the access log is flushed once a second
        while access_lines(log) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        lines = access_lines(log)
        if lines != total:
            errors.append(f"access log: {lines} lines for {total} requests")
        if setup == "guard":
            # One audit record per request: every stream allowed, its tokens read from the
            # stream's metadata event as it passed; every refused probe refused.
            recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            streamed = sum(1 for r in recs if r["eventName"] == "ConverseStream"
                           and r["decision"] == "allow" and r["outputTokens"] == args.deltas)
            if streamed != args.streams:
                errors.append(f"{streamed} ConverseStream audit records with the stream's "
                              f"token counts, for {args.streams} streams")
            denied = sum(1 for r in recs if r["reason"] == "model_not_allowed")
            if denied != len(refused):
                errors.append(f"{denied} model_not_allowed records for {len(refused)} refused")
        latencies = sorted(ms for _, _, _, ms in probes)
        return {
            "streams": args.streams, "opened_within_s": round(all_open_after, 2),
            "opened": opened,
            "idle_rss_kib": idle, "warm_rss_kib": warm, "peak_rss_kib": peak,
            "after_rss_kib": after,
            "per_stream_kib": round((peak - warm) / args.streams, 2),
            "wasm_memory_bytes": gauge, "wasm_memory_warm_bytes": warm_gauge,
            "wasm_per_stream_bytes": (round((gauge - warm_gauge) / args.streams)
                                      if gauge and warm_gauge else None),
            "probes": {"allowed": len(allowed), "refused": len(refused),
                       "p50_ms": round(statistics.median(latencies), 2),
                       "max_ms": round(latencies[-1], 2)},
            "errors": errors[:20], "error_count": len(errors),
        }
    finally:
        envoy.stop()


async def main_async(args) -> dict:
    stream_frames = frames(args.deltas)
    upstream = Upstream(stream_frames, args.interval, args.hold)
    await upstream.start()
    _, jwks = make_token_and_jwks()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    expected = b"".join(stream_frames)
    out = {}
    for setup in SETUPS:
        print(f"{setup}: {args.streams} streams, {len(stream_frames)} frames each over "
              f"{args.hold:g} s ...", flush=True)
        out[setup] = await measure(setup, args, work, upstream, jwks, expected)
        r = out[setup]
        print(f"  opened {r['opened']} in {r['opened_within_s']} s; RSS idle "
              f"{r['idle_rss_kib'] / 1024:.1f} MiB, warm {r['warm_rss_kib'] / 1024:.1f}, peak "
              f"{r['peak_rss_kib'] / 1024:.1f}: {r['per_stream_kib']:.1f} KiB per stream; "
              f"probes p50 {r['probes']['p50_ms']} ms max {r['probes']['max_ms']} ms; "
              f"errors {r['error_count']}", flush=True)
    upstream.server.close()
    await upstream.server.wait_closed()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--deltas", type=int, default=40, help="contentBlockDelta frames per answer")
    ap.add_argument("--hold", type=float, default=10.0, help="seconds each answer lasts")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between writes")
    ap.add_argument("--probes", type=int, default=40,
                    help="new requests sent while the streams are held (half refused)")
    ap.add_argument("--guard", type=Path, default=GUARD_WASM)
    ap.add_argument("--floor", type=Path, default=FLOOR_WASM)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    for m in (args.guard, args.floor):
        if not m.is_file():
            raise SystemExit(f"{m}: no such module (make build; make bench builds the floor)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * args.streams + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    started = time.monotonic()
    setups = asyncio.run(main_async(args))
    guard, floor = setups["guard"], setups["floor"]
    summary = {
        "guard_per_stream_above_floor_kib": round(guard["per_stream_kib"] - floor["per_stream_kib"],
                                                  2),
        "guard_idle_rss_above_floor_mib": round(
            (guard["idle_rss_kib"] - floor["idle_rss_kib"]) / 1024, 1),
        "guard_wasm_memory_mib": (round(guard["wasm_memory_bytes"] / 2**20, 2)
                                  if guard["wasm_memory_bytes"] else None),
        "guard_wasm_per_stream_bytes": guard["wasm_per_stream_bytes"],
    }
    results = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "envoy": envoy_version(),
        "method": {"streams": args.streams, "frames_per_stream": args.deltas + 4,
                   "hold_seconds": args.hold, "interval_seconds": args.interval,
                   "probes": args.probes, "workers": 1,
                   "per_stream": "(peak RSS while every stream is open - RSS after warm-up) / "
                                 "streams"},
        "setups": setups, "summary": summary,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nguard above floor: {summary['guard_per_stream_above_floor_kib']:+.1f} KiB per "
          f"active stream; idle RSS {summary['guard_idle_rss_above_floor_mib']:+.1f} MiB; guard "
          f"VM linear memory at peak: {summary['guard_wasm_memory_mib']} MiB, "
          f"{summary['guard_wasm_per_stream_bytes']} bytes per stream above warm")
    failed = {s: r["errors"] for s, r in setups.items() if r["error_count"]}
    print(f"wrote {args.out}")
    if failed:
        print(f"errors: {json.dumps(failed, indent=1)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
