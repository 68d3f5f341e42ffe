"""One MongoDB client per server, shared by the rule store and the layout store.

A PyMongo client holds a connection pool and monitor tasks; two stores on one URI used to open two.
`acquire` hands out one `AsyncMongoClient` per (URI, timeout, event loop) and counts its users;
`release` closes it when the last user lets go. The event loop is part of the key because an async
client belongs to the loop it first ran on (tests and the CLI run several `asyncio.run` in one
process). `pymongo` is imported only when a MongoDB store is configured.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

_lock = threading.Lock()
# key -> [client, users]; the key holds the loop itself (not its id, which a later loop may reuse)
_clients: dict[tuple[str, float, asyncio.AbstractEventLoop | None], list[Any]] = {}


def _loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # no loop yet: the client binds to the first loop that uses it
        return None


def redact_uri(uri: str) -> str:
    """Scheme and hosts of a MongoDB URI, never its credentials, path or options (for messages)."""
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].rsplit('@', 1)[-1]}"


def acquire(uri: str, *, timeout_s: float = 3.0) -> Any:
    """The shared `AsyncMongoClient` for this URI (made on first use); pair with `release`."""
    key = (uri, float(timeout_s), _loop())
    with _lock:
        entry = _clients.get(key)
        if entry is None:
            from pymongo import AsyncMongoClient

            ms = int(timeout_s * 1000)
            client = AsyncMongoClient(
                uri,
                serverSelectionTimeoutMS=ms,
                connectTimeoutMS=ms,
                socketTimeoutMS=ms * 3,
                tz_aware=True,
                appname="mugpos",
            )
            entry = _clients[key] = [client, 0]
        entry[1] += 1
        return entry[0]


async def release(client: Any) -> None:
    """Let go of a client from `acquire`; the last user closes it."""
    with _lock:
        key = next((k for k, e in _clients.items() if e[0] is client), None)
        if key is not None:
            _clients[key][1] -= 1
            if _clients[key][1] > 0:
                return
            del _clients[key]
    await client.close()


def users(uri: str) -> int:
    """How many stores hold a client for this URI (any timeout, any loop); for status and tests."""
    with _lock:
        return sum(e[1] for k, e in _clients.items() if k[0] == uri)
