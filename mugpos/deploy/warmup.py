"""`python -m mugpos.deploy.warmup`: load the models once at image build time.

Run in the Dockerfile, it leaves every download (detector weights Ultralytics fetches by name, CLIP
weights in the Hugging Face cache) inside the image, so a fresh pod or worker reads them from disk
and the first request pays only for the load, never for a download. Exits 1 if the models fail.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def _warm() -> dict[str, object]:
    from mugpos.engine.pipeline import Engine
    from mugpos.settings import get_settings

    t0 = time.perf_counter()
    engine = Engine(get_settings())
    engine.start()
    try:
        await engine.wait_ready()
        status = engine.status()
    finally:
        await engine.aclose()
    return {
        "detector": status.get("detector"),
        "embedder": status.get("embedder"),
        "load_seconds": status.get("load_seconds"),
        "total_s": round(time.perf_counter() - t0, 2),
    }


def main() -> int:
    from mugpos.errors import MugposError

    try:
        print(json.dumps(asyncio.run(_warm()), default=str))
    except MugposError as exc:
        print(exc.one_line(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
