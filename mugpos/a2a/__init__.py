"""The A2A door: mugpos as an agent other agents can call (a2a-sdk 1.3, JSON-RPC + SSE)."""

from mugpos.a2a.card import A2A_PATH, build_agent_card, enforced_schemes
from mugpos.a2a.server import A2ADoor, door

__all__ = ["A2A_PATH", "A2ADoor", "build_agent_card", "door", "enforced_schemes"]
