"""A2A messages in, A2A parts out: what an agent sent, read as one mugpos request.

In: file parts are photos (raw bytes become a data URI, URLs pass as they are: both then go through
`Mugpos.load_image`, so the limits and refusals are the MCP door's own); text parts are rules, one a
line, or a rule command ('list rules', 'add rule: ...', 'search: ...'); a data part (or the message's
metadata) may name the skill and carry the arguments of the matching MCP tool.
Out: results as data parts (JSON), pictures as raw file parts.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from a2a.helpers.proto_helpers import new_data_part, new_raw_part, new_text_part
from a2a.types import Message, Part
from google.protobuf.json_format import MessageToDict

from mugpos.errors import MugposError

SKILL_IDS = ("analyze-desk", "suggest-placement", "manage-rules", "search-layouts")
_ALIASES = {"analyze": "analyze-desk", "analyse": "analyze-desk", "suggest": "suggest-placement",
            "rules": "manage-rules", "search": "search-layouts"}  # fmt: skip
_RULE_CMD = re.compile(
    r"^\s*(?:(list)(?:\s+(?:the\s+)?rules)?|(add|remove|delete|explain|enable|disable)(?:\s+rule)?\s*[:\s]\s*(.+))\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SEARCH_CMD = re.compile(r"^\s*(?:search|find)(?:\s+layouts?)?\s*:\s*(.+)$", re.IGNORECASE | re.DOTALL)


@dataclass
class Photo:
    ref: str  # a data URI, URL or path: whatever `load_image` takes
    name: str


@dataclass
class AgentRequest:
    skill: str
    photos: list[Photo] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)  # tool arguments from a data part / command


def bad_request(message: str, hint: str, code: str = "bad_message") -> MugposError:
    return MugposError(message, code=code, hint=hint)


def read_message(message: Message, max_photos: int) -> AgentRequest:
    """The request a message makes; raises `MugposError` (code, message, hint) when it makes none."""
    photos: list[Photo] = []
    texts: list[str] = []
    args: dict[str, Any] = {}
    for i, part in enumerate(message.parts):
        if part.HasField("raw"):
            media = part.media_type if part.media_type.startswith("image/") else ""
            ref = f"data:{media};base64," + base64.b64encode(part.raw).decode()
            photos.append(Photo(ref, part.filename or f"photo-{len(photos) + 1}"))
        elif part.HasField("url"):
            photos.append(Photo(part.url, part.filename or part.url.rsplit("/", 1)[-1][:80] or f"photo-{i}"))
        elif part.HasField("text"):
            texts.extend(line.strip() for line in part.text.splitlines() if line.strip())
        elif part.HasField("data"):
            value = MessageToDict(part.data)
            if not isinstance(value, dict):
                raise bad_request("a data part must hold a JSON object", 'send {"skill": ..., ...arguments}')
            args.update(value)
    meta = MessageToDict(message.metadata) if message.HasField("metadata") else {}
    skill = _skill(args.pop("skill", None) or meta.get("skill"))
    if meta.get("report"):  # a report card per photo, beside the annotated picture
        args.setdefault("report", True)
    if len(photos) > max_photos:
        raise bad_request(
            f"the message carries {len(photos)} photos; the limit is {max_photos}",
            "split the batch over several messages, or raise MUGPOS_A2A_MAX_PHOTOS",
            code="too_many_photos",
        )
    return _decide(skill, photos, texts, args)


def _skill(value: Any) -> str | None:
    if value is None:
        return None
    name = _ALIASES.get(str(value), str(value))
    if name not in SKILL_IDS:
        raise bad_request(f"unknown skill {value!r}", f"skills: {', '.join(SKILL_IDS)}", code="unknown_skill")
    return name


def _decide(skill: str | None, photos: list[Photo], texts: list[str], args: dict[str, Any]) -> AgentRequest:
    if skill in (None, "manage-rules") and texts and not photos:
        cmd = _RULE_CMD.match(texts[0])
        if cmd and len(texts) == 1:
            action = (cmd.group(1) or cmd.group(2)).lower().replace("delete", "remove")
            arg = (cmd.group(3) or "").strip()
            key = "rule_id" if action in ("remove", "enable", "disable") else "text"
            return AgentRequest("manage-rules", args={"action": action, **({key: arg} if arg else {})})
    if skill in (None, "search-layouts") and texts and not photos:
        found = _SEARCH_CMD.match(texts[0])
        if found:
            return AgentRequest("search-layouts", args={**args, "text": found.group(1).strip()})
        if skill == "search-layouts":
            return AgentRequest("search-layouts", args={**args, "text": " ".join(texts)})
    if skill is None:
        if photos or "image" in args:
            skill = "analyze-desk"
        elif "analysis_id" in args or "scene" in args:
            skill = "suggest-placement"
        elif "action" in args:
            skill = "manage-rules"
        else:
            raise bad_request(
                "nothing to do: the message has no photo and no command",
                "attach desk photos (file parts: bytes or URLs), optionally with rules as text; or say "
                "'list rules', 'add rule: ...', 'search: ...'",
            )
    if skill == "manage-rules" and "action" not in args:
        raise bad_request(
            "which rule action?",
            "say 'list rules', 'add rule: <text>', 'remove rule <id>' or 'explain: <text>'",
        )
    return AgentRequest(skill, photos, texts, args)


def data_part(value: Any) -> Part:
    return new_data_part(value, media_type="application/json")


def picture_part(data: bytes, mime: str, filename: str) -> Part:
    return new_raw_part(data, media_type=mime, filename=filename)


def text_part(text: str) -> Part:
    return new_text_part(text, media_type="text/plain")


def error_body(exc: BaseException, photo: str | None = None) -> dict[str, Any]:
    """`{"error": {code, message, hint}}` in the A2A door's words."""
    if isinstance(exc, MugposError):
        body = {"code": exc.code, "message": exc.message, "hint": _a2a_hint(exc)}
    else:
        body = {
            "code": "internal",
            "message": f"{type(exc).__name__}",
            "hint": "try again; see the server log",
        }
    return {"error": body, **({"photo": photo} if photo else {})}


def _a2a_hint(exc: MugposError) -> str:
    hint = exc.hint or ""
    if exc.code in ("bad_base64", "bad_data_uri", "empty_image"):
        return "send the photo as a file part: its raw bytes with an image/* media type, or an http(s) URL"
    return hint
