"""Shared plumbing: JSON bodies and turning a `MugposError` into a resource error a client can read."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from pydantic import BaseModel

from mugpos.errors import MugposError

JSON = "application/json"
P = ParamSpec("P")
T = TypeVar("T")


def to_json(value: BaseModel | dict[str, Any] | list[Any]) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=2)
    return json.dumps(value, indent=2, default=str)


def guarded(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """`not_found` -> invalid-params error; other `MugposError`s -> a resource error with the hint."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except MugposError as exc:
            text = f"{exc.message}" + (f" (hint: {exc.hint})" if exc.hint else "")
            if exc.code == "not_found":
                raise ResourceNotFoundError(text) from None
            raise ResourceError(text) from None

    return wrapper
