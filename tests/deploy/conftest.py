"""Fixtures for the deploy tests: a local stand-in for RunPod's GraphQL API that records every request."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingAPI:
    """Answers the GraphQL operations the SDK sends, the way RunPod's API shapes them, and keeps them."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.endpoints: list[dict[str, Any]] = []
        self.pods: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        self.url = ""

    def queries(self, word: str) -> list[str]:
        with self._lock:
            return [r["query"] for r in self.requests if word in r["query"]]

    def answer(self, query: str) -> dict[str, Any]:
        if "podStop" in query:
            return {"data": {"podStop": {"id": "pod-1", "desiredStatus": "EXITED"}}}
        if "saveTemplate" in query:
            return {"data": {"saveTemplate": {"id": "tpl-new" if 'id: "' not in query else "tpl-old"}}}
        if "saveEndpoint" in query:
            return {"data": {"saveEndpoint": {"id": "ep-new" if 'id: "' not in query else "ep-old"}}}
        if "endpoints" in query:
            return {"data": {"myself": {"endpoints": self.endpoints}}}
        if "gpuTypes" in query:
            return {"data": {"gpuTypes": [{"id": "NVIDIA H100 80GB HBM3", "displayName": "H100 SXM"}]}}
        if "podFindAndDeployOnDemand" in query:
            return {"data": {"podFindAndDeployOnDemand": {"id": "pod-new", "imageName": "x"}}}
        if "podResume" in query:
            return {"data": {"podResume": {"id": "pod-old", "desiredStatus": "RUNNING"}}}
        if "pods" in query:
            return {"data": {"myself": {"pods": self.pods}}}
        return {"errors": [{"message": "unknown operation"}]}


@pytest.fixture
def runpod_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingAPI]:
    """A threaded HTTP server on 127.0.0.1; RUNPOD_API_BASE_URL points the SDK at it."""
    api = RecordingAPI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            query = json.loads(body)["query"]
            with api._lock:
                api.requests.append(
                    {"path": self.path, "query": query, "authorization": self.headers.get("Authorization")}
                )
            status = api.fail_with or 200
            payload = json.dumps(api.answer(query) if status == 200 else {"errors": [{"message": "down"}]})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("RUNPOD_API_BASE_URL", api.url)
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
