"""One error type that every door (CLI, MCP, RunPod) can turn into a clear answer.

Every failure a caller can cause or fix carries a stable `code`, a one-line `message` and a `hint`
that says what to do next. Anything else is a bug and is reported as `internal_error` without a
stack trace leaking to the caller.
"""

from __future__ import annotations

from typing import Any


class MugposError(Exception):
    """A failure the caller can understand and act on."""

    code: str = "error"
    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        code: str | None = None,
        door_hints: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code
        # The hint in the words of another door ("cli": "`mugpos rules list` shows the ids"), where
        # the default (written for an assistant calling tools) would name something that door lacks.
        self.door_hints = door_hints or {}
        self.details = details

    def hint_for(self, door: str | None) -> str:
        return self.door_hints.get(door, self.hint) if door else self.hint

    def to_dict(self, door: str | None = None) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "hint": self.hint_for(door)}
        if self.details:
            err["details"] = self.details
        return {"error": err}

    def one_line(self, door: str | None = None) -> str:
        line = f"error ({self.code}): {self.message}"
        hint = self.hint_for(door)
        return f"{line} Hint: {hint}" if hint else line


class ImageError(MugposError):
    """The image could not be read, fetched or accepted (size, type, pixels, address)."""

    code = "bad_image"


class AccessDenied(ImageError):
    """A path outside the allowed folders or a URL to a non-public address."""

    code = "access_denied"


class SceneError(MugposError):
    """A scene JSON that does not describe a scene."""

    code = "bad_scene"


class RuleError(MugposError):
    """A rule that cannot be understood; details carry nearby phrasings and the rule schema."""

    code = "rule_not_understood"


class NotFound(MugposError):
    code = "not_found"


class ConfigError(MugposError):
    """A setting is wrong or a resource it names is missing (weights, provider package, key)."""

    code = "config_error"


class ModelError(MugposError):
    """A model failed to load or run."""

    code = "model_error"
    exit_code = 1


class BackendError(MugposError):
    """A backing service (MongoDB, S3, Secret Manager) failed and no fallback applies."""

    code = "backend_unavailable"
    exit_code = 1
