"""A local deny-alert sink: an HTTP server on 127.0.0.1 recording the batches the filter POSTs
to its bundle's `alerts.cluster`, and the Envoy STATIC cluster that reaches it."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SINK_CLUSTER = "deny_sink"


class AlertSink:
    """Records POSTed alert batches; `mode` is "ok", "fail" (`fail_status`, 500 by default),
    "slow" (answers after `slow_seconds`, 3 by default), "hold" (answers only once `release()`
    is called, at most after 10 s) or "reset" (reads the batch, then resets the connection
    without answering). `down()` closes the port (connections refused) and `up()` listens on
    the same port again."""

    def __init__(self):
        self.batches: list[list[dict]] = []
        self.mode = "ok"
        self.slow_seconds = 3.0
        self.fail_status = 500
        self.released = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                sink.batches.append(json.loads(body))
                if sink.mode == "slow":
                    time.sleep(sink.slow_seconds)
                elif sink.mode == "hold":
                    sink.released.wait(10)
                if sink.mode == "reset":
                    # SO_LINGER 0: closing sends a RST instead of a FIN.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                status = sink.fail_status if sink.mode == "fail" else 200
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the filter gave up first (its POST timeout)

            def log_message(self, *args):
                pass

        self._handler = Handler
        self.server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    def up(self) -> None:
        """Listen (again, on the same port after `down()`)."""
        if self.server is not None:
            return
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def down(self) -> None:
        """Stop listening: connections to the port are refused until `up()`."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[dict]:
        return [e for batch in list(self.batches) for e in batch]

    def release(self) -> None:
        """Let every held POST (mode "hold") answer, now and from now on."""
        self.released.set()

    def stop(self):
        self.released.set()
        self.down()


def sink_cluster(port: int) -> dict:
    """The Envoy cluster (`deny_sink`) that reaches a sink on 127.0.0.1:`port`."""
    return {
        "name": SINK_CLUSTER, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": SINK_CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                         "port_value": port}}}}]}]},
    }
