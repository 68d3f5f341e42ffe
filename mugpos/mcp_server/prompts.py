"""Prompts for the common conversations; each steers the assistant through the tools in order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import UserMessage
from pydantic import Field

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from mugpos.operations import Mugpos


def review_my_desk_text(image: str) -> str:
    return (
        f"Please review where the mugs stand in this photo: {image}\n\n"
        "1. Call `analyze_image` with that image. Read the saved rules' verdicts in `rules` and the "
        "mugs' positions (zone, distances in cm) in `mugs` and their nearest objects in `relations`. "
        "The result is compact; if you need every object's box or every measurement, read "
        "`mugpos://analyses/{analysis_id}` (or call again with detail='full').\n"
        "2. If the scale is only assumed (see `scale.source`/`warnings`), say so and offer to redo it "
        "with a known `px_per_cm`.\n"
        "3. If any rule is violated, or a mug is close to an edge or to electronics, call "
        "`suggest_position` with the returned `analysis_id` and tell me exactly where to move each "
        "mug (the `instruction`, in cm).\n"
        "4. If no rules are saved (`list_rules`), suggest two or three sensible rules for this desk and "
        "ask before saving them with `add_rule`.\n"
        "Answer in plain language: what you see, what is wrong, what to do."
    )


def set_up_workspace_rules_text(workspace: str) -> str:
    return (
        f"Help me set up mug placement rules for my workspace: {workspace}\n\n"
        "1. Read `mugpos://vocabulary` to see which objects, groups and units rules can use, and "
        "`list_rules` to see what is saved already.\n"
        "2. Propose a short list of rules in plain language that fit this workspace (distances with "
        "units, e.g. 'keep mugs at least 6 inches from laptops').\n"
        "3. For each rule I agree to, call `explain_rule` first; if it is understood, save it with "
        "`add_rule`; if not, use the nearest phrasings it offers.\n"
        "4. Finish with `list_rules` and summarise what will be checked on every photo."
    )


def register_prompts(server: MCPServer[Any], app: Mugpos) -> None:
    @server.prompt(
        name="review_my_desk",
        title="Review my desk",
        description="Analyse a desk photo, check the rules and say where to move each mug.",
    )
    def review_my_desk(
        image: Annotated[str, Field(description="the photo: a path, URL, data URI or base64")],
    ) -> list[UserMessage]:
        return [UserMessage(review_my_desk_text(image))]

    @server.prompt(
        name="set_up_workspace_rules",
        title="Set up rules for my workspace",
        description="Turn a description of a workspace into saved, checkable mug placement rules.",
    )
    def set_up_workspace_rules(
        workspace: Annotated[
            str,
            Field(description="what the workspace is like, e.g. 'standing desk with a laptop and a tablet'"),
        ],
    ) -> list[UserMessage]:
        return [UserMessage(set_up_workspace_rules_text(workspace))]
