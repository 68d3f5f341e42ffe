"""A local webhook receiver for tests: a real HTTP server in a thread that checks signatures and
can be told to fail (HTTP 500), stall past the sender's timeout, or be down, then come back.

It records every arrival on the wire and every event it *handled* (a valid signature answered 2xx),
so a test can count lost and doubled events exactly.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mugpos.webhooks.signing import verify


class Receiver:
    def __init__(self, secret: str, port: int = 0) -> None:
        self.secret = secret
        self.port = port
        self.script: list[str] = []  # modes for the next requests: "fail", "stall"; then "ok"
        self.stall_s = 1.0
        self.arrivals: list[str] = []  # event ids as they came in (wire level)
        self.handled: Counter[str] = Counter()  # event ids answered 2xx
        self.bad_signatures = 0
        self.bodies: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _next_mode(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "ok"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                event_id = self.headers.get("X-Mugpos-Event-Id", "?")
                with receiver._lock:
                    receiver.arrivals.append(event_id)
                mode = receiver._next_mode()
                if mode == "stall":  # hangs past the sender's timeout, handles nothing
                    time.sleep(receiver.stall_s)
                    self._answer(503)
                    return
                if mode == "fail":
                    self._answer(500)
                    return
                ok = verify(
                    receiver.secret,
                    self.headers.get("X-Mugpos-Timestamp"),
                    body,
                    self.headers.get("X-Mugpos-Signature"),
                )
                if not ok:
                    with receiver._lock:
                        receiver.bad_signatures += 1
                    self._answer(401)
                    return
                with receiver._lock:
                    receiver.handled[event_id] += 1
                    receiver.bodies[event_id] = json.loads(body)
                self._answer(204)

            def _answer(self, status: int) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up on a stalled request
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
