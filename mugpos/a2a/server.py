"""The A2A door as Starlette routes, to mount on the one HTTP server behind its auth guard.

`A2ADoor(app, base_url).routes()` gives the agent card at `/.well-known/agent-card.json` and the
JSON-RPC endpoint at `/a2a` (streaming over SSE), both served by a2a-sdk's own route builders over
`MugposAgentExecutor`. Tasks live in the SDK's `DatabaseTaskStore` on SQLite under the data dir
(`MUGPOS_A2A_TASK_STORE=memory` keeps them in memory), so a client can still get a task and its
artifacts after the server restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskStore

from mugpos.a2a.card import A2A_PATH, build_agent_card
from mugpos.a2a.executor import MugposAgentExecutor

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from mugpos.operations import Mugpos
    from mugpos.settings import Settings


def open_task_store(settings: Settings) -> tuple[TaskStore, Any]:
    """The task store and what to dispose of on close (the SQLAlchemy engine, if any)."""
    if settings.a2a_task_store == "memory":
        return InMemoryTaskStore(), None
    from a2a.server.tasks import DatabaseTaskStore
    from sqlalchemy.ext.asyncio import create_async_engine

    path = settings.data_dir / "a2a" / "tasks.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    return DatabaseTaskStore(engine), engine


class A2ADoor:
    def __init__(self, app: Mugpos, base_url: str) -> None:
        self.app = app
        self.card = build_agent_card(app.settings, base_url)
        self.task_store, self._engine = open_task_store(app.settings)
        self.handler = DefaultRequestHandlerV2(
            agent_executor=MugposAgentExecutor(app), task_store=self.task_store, agent_card=self.card
        )

    def routes(self) -> list[BaseRoute]:
        return [*create_agent_card_routes(self.card), *create_jsonrpc_routes(self.handler, A2A_PATH)]

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
