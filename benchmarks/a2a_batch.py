"""Send a batch of desk photos to a running mugpos A2A agent and print its streamed progress.

    mugpos serve --transport streamable-http --port 8765 &
    python benchmarks/a2a_batch.py http://127.0.0.1:8765 PHOTO... [--rule TEXT]... [--token T]

Uses a2a-sdk's own client (streaming): prints each status update as it arrives, then one line per
photo artifact and the batch summary, and the wall time. This is what an agent auditing fifty desks
would see.
"""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
import sys
import time
import uuid
from pathlib import Path

import httpx
from a2a.client import ClientConfig, create_client
from a2a.helpers.proto_helpers import new_raw_part, new_text_part
from a2a.types import Message, Role, SendMessageRequest, TaskState
from google.protobuf.json_format import MessageToDict


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("photos", nargs="+", type=Path)
    ap.add_argument("--rule", action="append", default=[])
    ap.add_argument("--token")
    args = ap.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    client = await create_client(
        args.url,
        client_config=ClientConfig(
            streaming=True, httpx_client=httpx.AsyncClient(headers=headers, timeout=600)
        ),
        resolver_http_kwargs={"headers": headers},
    )
    parts = [
        new_raw_part(
            p.read_bytes(), media_type=mimetypes.guess_type(p.name)[0] or "image/jpeg", filename=p.name
        )
        for p in args.photos
    ]
    if args.rule:
        parts.append(new_text_part("\n".join(args.rule)))
    request = SendMessageRequest(
        message=Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=parts)
    )
    t0 = time.perf_counter()
    final = None
    async for ev in client.send_message(request):
        t = time.perf_counter() - t0
        if ev.HasField("status_update"):
            st = ev.status_update.status
            text = st.message.parts[0].text if st.message.parts else ""
            print(f"{t:7.2f}s  {TaskState.Name(st.state)[11:]:<9} {text}")
            final = st.state
        elif ev.HasField("artifact_update"):
            a = ev.artifact_update.artifact
            data = MessageToDict(a.parts[0].data) if a.parts and a.parts[0].HasField("data") else {}
            line = data.get("summary") or (data.get("error") or {}).get("message") or ""
            if a.name == "batch-summary":
                line = f"{int(data['ok'])} ok, {int(data['failed'])} failed of {int(data['photos'])}"
            print(f"{t:7.2f}s  ARTIFACT  {a.name}: {line[:150]}")
    print(f"done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    await client.close()
    return 0 if final == TaskState.TASK_STATE_COMPLETED else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
