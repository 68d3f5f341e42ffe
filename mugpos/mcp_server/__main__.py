"""`python -m mugpos.mcp_server [--transport T] [--host H] [--port P]`, the same as `mugpos serve`."""

from __future__ import annotations

import argparse
import logging
import sys

from mugpos.errors import MugposError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mugpos.mcp_server", description=__doc__)
    parser.add_argument("--transport", default="stdio", choices=["stdio", "sse", "streamable-http"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        from mugpos.mcp_server.transports import check_bind, serve
        from mugpos.settings import get_settings

        check_bind(args.transport, args.host, get_settings())  # before anything is built
        from mugpos.operations import Mugpos

        serve(Mugpos(), args.transport, args.host, args.port)
    except MugposError as exc:
        print(exc.one_line(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
