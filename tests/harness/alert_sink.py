"""A local deny-alert sink: an HTTP server on 127.0.0.1 recording the batches the filter POSTs
to its bundle's `alerts.cluster`, and the Envoy STATIC cluster that reaches it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SINK_CLUSTER = "deny_sink"


class AlertSink:
    """Records POSTed alert batches; `mode` is "ok", "fail" (500), "slow" (answers after 3 s) or
    "hold" (answers only once `release()` is called, at most after 10 s)."""

    def __init__(self):
        self.batches: list[list[dict]] = []
        self.mode = "ok"
        self.released = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                sink.batches.append(json.loads(body))
                if sink.mode == "slow":
                    time.sleep(3)
                elif sink.mode == "hold":
                    sink.released.wait(10)
                status = 500 if sink.mode == "fail" else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [e for batch in list(self.batches) for e in batch]

    def release(self) -> None:
        """Let every held POST (mode "hold") answer, now and from now on."""
        self.released.set()

    def stop(self):
        self.released.set()
        self.server.shutdown()


def sink_cluster(port: int) -> dict:
    """The Envoy cluster (`deny_sink`) that reaches a sink on 127.0.0.1:`port`."""
    return {
        "name": SINK_CLUSTER, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": SINK_CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                         "port_value": port}}}}]}]},
    }
