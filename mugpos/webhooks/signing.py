"""How a webhook is signed, and how a receiver checks it (the same few lines in docs/agents.md).

The signed string is `"{timestamp}.{body}"`: the Unix time of this attempt, a dot, and the exact
bytes of the JSON body. The signature is HMAC-SHA256 with the shared secret, hex, sent as
`X-Mugpos-Signature: sha256=<hex>` beside `X-Mugpos-Timestamp`. Signing the timestamp lets a
receiver refuse replays older than a few minutes; the event id (`X-Mugpos-Event-Id`, and `id` in
the body) stays the same across retries so a receiver can drop a delivery it has already handled.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Mugpos-Signature"
TIMESTAMP_HEADER = "X-Mugpos-Timestamp"
EVENT_ID_HEADER = "X-Mugpos-Event-Id"
EVENT_TYPE_HEADER = "X-Mugpos-Event"
ATTEMPT_HEADER = "X-Mugpos-Delivery-Attempt"
DEFAULT_TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: str | bytes) -> str:
    """`sha256=<hex>` over `"{timestamp}.{body}"`."""
    raw = body.encode() if isinstance(body, str) else body
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str | int | None,
    body: str | bytes,
    signature: str | None,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when the signature matches and the timestamp is within `tolerance_s` of now."""
    if not signature or timestamp is None:
        return False
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature.strip())
