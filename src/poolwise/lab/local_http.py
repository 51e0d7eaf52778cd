"""A delayed HTTP server on 127.0.0.1, and the task that fetches from it.

The I/O-bound row's network workload: a ``ThreadingHTTPServer`` on an ephemeral port, run
in a background thread, that answers each GET after a set latency, as a nearby service
would. Nothing leaves this machine: ``fetch`` refuses any other address and ignores proxy
settings.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["FETCH_TIMEOUT", "SERVER_THREAD", "fetch", "fetch_body", "serve"]

#: Seconds one request may take before it fails, so a stuck request cannot hang the lab.
FETCH_TIMEOUT = 10.0
#: Name of the server's thread, so tests can check it is gone.
SERVER_THREAD = "poolwise-lab-http"

# Never through a proxy from the environment: the lab talks to 127.0.0.1 only.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LOCAL = "http://127.0.0.1:"


def fetch(url: str) -> int:
    """GET ``url`` (on 127.0.0.1 only) and return the body's length."""
    return len(fetch_body(url))


def fetch_body(url: str) -> bytes:
    """GET ``url`` (on 127.0.0.1 only) and return the body."""
    if not url.startswith(_LOCAL):
        raise ValueError(f"the lab only fetches from {_LOCAL}..., not {url!r}")
    with _OPENER.open(url, timeout=FETCH_TIMEOUT) as response:
        body: bytes = response.read()
        return body


class _Server(http.server.ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when 64 workers connect at once,
    # and a dropped SYN is retried after ~1 s, which would measure TCP, not the workers.
    request_queue_size = 256
    # Handler threads are joined by server_close(), so none outlives the experiment.
    daemon_threads = False
    block_on_close = True
    latency = 0.0
    body = b""
    #: Bodies served by index (``/<i>`` gets ``bodies[i % len(bodies)]``); else ``body``.
    bodies: tuple[bytes, ...] = ()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Say nothing: a client stopped by Ctrl-C is not the server's news."""


class _DelayedHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        time.sleep(server.latency)
        body = server.body
        if server.bodies:
            index = self.path.strip("/")
            body = server.bodies[int(index) % len(server.bodies) if index.isdigit() else 0]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the lab's output clean: no line per request."""


@contextlib.contextmanager
def serve(latency: float, body_bytes: int = 0, bodies: Sequence[bytes] = ()) -> Iterator[str]:
    """A delayed HTTP server on 127.0.0.1, for the block; yields its URL. It answers with
    ``body_bytes`` bytes, or with ``bodies[i]`` at ``<URL><i>`` when given."""
    server = _Server(("127.0.0.1", 0), _DelayedHandler)
    server.latency = latency
    server.body = b"x" * body_bytes
    server.bodies = tuple(bodies)
    try:
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=SERVER_THREAD
        )
        thread.start()
        try:
            yield f"{_LOCAL}{server.server_address[1]}/"
        finally:
            # shutdown() waits for serve_forever to return, so only after it started.
            server.shutdown()
            thread.join()
    finally:
        server.server_close()
