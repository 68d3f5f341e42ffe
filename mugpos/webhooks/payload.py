"""The body of a webhook: compact JSON written the way JavaScript's `JSON.stringify` writes it.

Why: a receiver that only has the parsed body (an n8n expression, a Node handler behind a JSON body
parser) can rebuild the signed bytes with `JSON.stringify(body)`. Python and JavaScript agree on
strings and on the digits of a float; they differ on how a float is laid out (`2.0` vs `2`,
`1e-05` vs `0.00001`), so numbers are written in JavaScript's layout, and non-ASCII stays as is.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any


def js_number(x: float) -> str:
    """A float as `Number.prototype.toString` prints it (same shortest digits as Python's repr)."""
    if not math.isfinite(x):
        raise ValueError("webhook bodies carry finite numbers only")
    if x == 0:
        return "0"
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    d = Decimal(repr(x))
    sign, digits, exp = d.as_tuple()
    n = len(digits) + int(exp)  # the decimal point sits after n digits
    if -6 < n <= 21:
        return format(d, "f")
    mantissa = "".join(map(str, digits))
    mantissa = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    e = n - 1
    return ("-" if sign else "") + mantissa + "e" + ("+" if e > 0 else "-") + str(abs(e))


def _dump(obj: Any) -> str:
    if obj is None or isinstance(obj, bool):
        return json.dumps(obj)
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, float):
        return js_number(obj)
    if isinstance(obj, str):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{_dump(v)}" for k, v in obj.items())
            + "}"
        )
    if isinstance(obj, list | tuple):
        return "[" + ",".join(_dump(v) for v in obj) + "]"
    raise TypeError(f"cannot put {type(obj).__name__} in a webhook body")


def encode_body(envelope: dict[str, Any]) -> str:
    """Compact JSON, byte for byte what `JSON.stringify(JSON.parse(body))` gives back."""
    return _dump(envelope)
