"""The agent card: who mugpos is to another agent, what it can do, and how to authenticate.

The card lists only the auth schemes the server enforces: a bearer token when MUGPOS_AUTH_TOKEN is
set, OAuth 2 client credentials when MUGPOS_OAUTH_ISSUER is set, none when neither is (a loopback
bind). Built from settings, so the card and the guard in front of the routes cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    ClientCredentialsOAuthFlow,
    HTTPAuthSecurityScheme,
    OAuth2SecurityScheme,
    OAuthFlows,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)

from mugpos import __version__
from mugpos.access import READ, WRITE
from mugpos.access.tokens import discovery_urls

if TYPE_CHECKING:
    from mugpos.settings import Settings

A2A_PATH = "/a2a"
IMAGE_MODES = ["image/jpeg", "image/png", "image/webp"]
JSON = "application/json"

SKILLS = [
    AgentSkill(
        id="analyze-desk",
        name="Analyse a desk photo",
        description="Finds the mugs and what surrounds them, measures the desk in cm, checks the saved rules "
        "and any rules in the message (one per line of text). Send one photo or a batch (file parts, bytes "
        "or URLs); progress streams per photo; each photo yields the analysis JSON and an annotated picture.",
        tags=["vision", "desk", "mug", "measure", "batch"],
        examples=["[photo] Keep mugs at least 6 inches from laptops", "[20 photos] audit these desks"],
        input_modes=[*IMAGE_MODES, "text/plain", JSON],
        output_modes=[JSON, *IMAGE_MODES],
    ),
    AgentSkill(
        id="suggest-placement",
        name="Suggest where the mug should go",
        description="For a photo (or an analysis_id or a scene in a data part) and rules, says exactly where to "
        'move each mug, with a picture of the move. Select with metadata {"skill": "suggest-placement"}.',
        tags=["placement", "rules"],
        examples=['{"skill": "suggest-placement", "analysis_id": "a-20261202-..."}'],
        input_modes=[*IMAGE_MODES, "text/plain", JSON],
        output_modes=[JSON, *IMAGE_MODES],
    ),
    AgentSkill(
        id="manage-rules",
        name="Manage placement rules",
        description="Add, list, remove or explain rules in plain language: 'list rules', 'add rule: keep mugs "
        "in the left half', 'remove rule r-1a2b3c', 'explain: mugs 20 cm from the edge'.",
        tags=["rules"],
        examples=["list rules", "add rule: keep mugs at least 15 cm from laptops"],
        input_modes=["text/plain", JSON],
        output_modes=[JSON],
    ),
    AgentSkill(
        id="search-layouts",
        name="Search stored desk layouts",
        description="Nearest stored layouts to a photo, an analysis_id or a text ('search: laptop with a mug "
        "on the right').",
        tags=["search", "memory"],
        examples=["search: a mug left of a keyboard"],
        input_modes=[*IMAGE_MODES, "text/plain", JSON],
        output_modes=[JSON],
    ),
]


@dataclass(frozen=True)
class OAuthEndpoints:
    """Where a client gets a token: read from the issuer's metadata (RFC 8414 / OpenID discovery)."""

    token_url: str
    metadata_url: str


async def discover_oauth(issuer: str, http: httpx.AsyncClient) -> OAuthEndpoints | None:
    for url in discovery_urls(issuer):
        try:
            r = await http.get(url, headers={"Accept": "application/json"})
            meta = r.json() if r.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            continue
        if meta.get("token_endpoint") and str(meta.get("issuer", "")).rstrip("/") == issuer.rstrip("/"):
            return OAuthEndpoints(str(meta["token_endpoint"]), url)
    return None


def enforced_schemes(settings: Settings, oauth: OAuthEndpoints | None = None) -> dict[str, SecurityScheme]:
    """The schemes the HTTP guard really checks, by the name the card uses for each."""
    schemes: dict[str, SecurityScheme] = {}
    token = settings.auth_token.get_secret_value().strip() if settings.auth_token else ""
    if token:
        schemes["bearer"] = SecurityScheme(
            http_auth_security_scheme=HTTPAuthSecurityScheme(
                scheme="bearer", description="Authorization: Bearer <MUGPOS_AUTH_TOKEN>"
            )
        )
    if settings.oauth_issuer:
        issuer = settings.oauth_issuer.rstrip("/")
        found = oauth or OAuthEndpoints(f"{issuer}/token", discovery_urls(issuer)[0])
        schemes["oauth2"] = SecurityScheme(
            oauth2_security_scheme=OAuth2SecurityScheme(
                description=f"JWT access tokens from {issuer} (client credentials; resource = this server's "
                "/mcp URL); mugpos:read to analyse and search, mugpos:write to change rules",
                oauth2_metadata_url=found.metadata_url,
                flows=OAuthFlows(
                    client_credentials=ClientCredentialsOAuthFlow(
                        token_url=found.token_url, scopes={READ: "analyse, suggest, search, read rules",
                                                            WRITE: "add and remove rules"}
                    )
                ),
            )
        )  # fmt: skip
    return schemes


def build_agent_card(settings: Settings, base_url: str, oauth: OAuthEndpoints | None = None) -> AgentCard:
    schemes = enforced_schemes(settings, oauth)
    base = (settings.public_url or base_url).rstrip("/")
    card = AgentCard(
        name="mugpos",
        description="Eyes for where a mug stands on a desk, and where it should stand: analyses desk photos, "
        "measures in cm, checks plain-language rules and suggests moves, with pictures.",
        version=__version__,
        provider=AgentProvider(organization="mugpos", url=base),
        supported_interfaces=[
            AgentInterface(url=f"{base}{A2A_PATH}", protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=[*IMAGE_MODES, "text/plain", JSON],
        default_output_modes=[JSON, *IMAGE_MODES, "text/plain"],
        skills=SKILLS,
    )
    for name, scheme in schemes.items():
        card.security_schemes[name].CopyFrom(scheme)
        # Any one of the schemes is enough: one requirement per scheme.
        card.security_requirements.append(SecurityRequirement(schemes={name: StringList(list=[])}))
    return card
