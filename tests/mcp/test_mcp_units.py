"""The pieces around the tools: picture budget, token bucket, bind checks, lazy imports."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from PIL import Image

from mugpos.errors import ConfigError, MugposError
from mugpos.mcp_server.auth import TokenBucket, token_matches
from mugpos.mcp_server.tools import error_text, fit_picture
from mugpos.mcp_server.transports import check_bind, is_loopback
from mugpos.operations import Picture
from mugpos.settings import Settings


def _noisy_png(side: int) -> Picture:
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return Picture(buf.getvalue(), "image/png")


def test_fit_picture_shrinks_until_it_fits() -> None:
    big = _noisy_png(1200)  # ~4 MB of incompressible pixels
    assert len(big.data) > 3_000_000
    fitted = fit_picture(big, max_base64_bytes=300_000)
    assert fitted is not None and 4 * ((len(fitted.data) + 2) // 3) <= 300_000
    shrunk = Image.open(io.BytesIO(fitted.data))
    assert fitted.mime == "image/webp" and shrunk.format == "WEBP" and shrunk.size[0] < 1200
    assert fit_picture(big, max_base64_bytes=500) is None
    small = _noisy_png(32)
    assert fit_picture(small, max_base64_bytes=1_000_000) is small


def test_token_bucket_limits_each_client() -> None:
    now = [0.0]
    bucket = TokenBucket(6, clock=lambda: now[0])  # 6 a minute: one every 10 s
    assert [bucket.take("a") for _ in range(6)] == [0.0] * 6
    wait = bucket.take("a")
    assert 9.9 < wait <= 10.0
    assert bucket.take("b") == 0.0  # another client is unaffected
    now[0] += 10.0
    assert bucket.take("a") == 0.0
    assert TokenBucket(0).take("a") == 0.0  # 0 = off


def test_token_comparison() -> None:
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cret ", "s3cret")
    assert not token_matches(None, "s3cret")


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("127.0.0.2", True), ("0.0.0.0", False), ("10.0.0.5", False),
                                                ("example.com", False)])  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_bind() -> None:
    open_settings = Settings(_env_file=None, auth_token=None)  # type: ignore[call-arg]
    check_bind("stdio", "0.0.0.0", open_settings)
    check_bind("streamable-http", "127.0.0.1", open_settings)
    with pytest.raises(ConfigError) as refused:
        check_bind("sse", "0.0.0.0", open_settings)
    assert "MUGPOS_AUTH_TOKEN" in refused.value.hint and refused.value.exit_code == 2
    with pytest.raises(ConfigError):  # a blank token is no token
        check_bind("sse", "0.0.0.0", Settings(_env_file=None, auth_token="  "))  # type: ignore[call-arg]
    check_bind("sse", "0.0.0.0", Settings(_env_file=None, auth_token="t"))  # type: ignore[call-arg]
    with pytest.raises(ConfigError):
        check_bind("websocket", "127.0.0.1", open_settings)


def test_error_text_carries_hint_and_nearest_phrasings() -> None:
    exc = MugposError(
        "could not understand 'mugs purple'",
        code="rule_not_understood",
        hint="name an object and a distance",
        suggestions=["Keep mugs at least 10 cm from laptops", "Mugs must stay on the table"],
    )
    text = error_text(exc)
    assert text.splitlines()[0] == "error (rule_not_understood): could not understand 'mugs purple'"
    assert "Hint: name an object and a distance" in text
    assert "- Keep mugs at least 10 cm from laptops" in text


def run_fresh(code: str) -> None:
    """Run `code` in a fresh interpreter (what a process imports at start) and fail with its stderr."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_importing_the_server_loads_no_model_library() -> None:
    code = (
        "import sys, mugpos.mcp_server; heavy = {'mcp', 'torch', 'ultralytics', 'open_clip'};"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules);"
        "from mugpos.mcp_server.server import build_server; from mugpos.operations import Mugpos;"
        "from mugpos.settings import Settings; build_server(Mugpos(Settings(_env_file=None)));"
        "loaded = {'torch', 'ultralytics', 'open_clip'} & set(sys.modules); assert not loaded, loaded"
    )
    run_fresh(code)


def test_published_input_schemas_are_the_strict_models_own() -> None:
    """`refuse_unknown_arguments` derives each schema from the SDK's instead of generating it again:
    it must be exactly what pydantic generates for the strict argument model, key order included."""
    import json

    from mugpos.mcp_server.server import build_server
    from mugpos.operations import Mugpos

    server = build_server(Mugpos(Settings(_env_file=None)))  # type: ignore[call-arg]
    tools = server._tool_manager.list_tools()
    assert len(tools) == 7
    for tool in tools:
        own = tool.fn_metadata.arg_model.model_json_schema(by_alias=True)
        assert json.dumps(tool.parameters) == json.dumps(own), tool.name
        assert own["additionalProperties"] is False and own["title"] == f"arguments of {tool.name}"


def test_the_stdio_server_imports_no_http_stack_and_no_rule_grammar() -> None:
    """What a stdio server's start does not need stays unimported: httpx and PyJWT (HTTP auth,
    webhooks), the lark rule grammar (the vocabulary resource loads it when read)."""
    code = (
        "import sys; from mugpos.mcp_server.server import build_server; from mugpos.mcp_server.stdio import run_stdio;"
        "from mugpos.webhooks import door; from mugpos.operations import Mugpos;"
        "from mugpos.settings import Settings; app = Mugpos(Settings(_env_file=None)); door(app); build_server(app);"
        "loaded = {'httpx', 'jwt', 'lark'} & set(sys.modules); assert not loaded, loaded"
    )
    run_fresh(code)


def test_building_the_server_under_configured_logging_skips_the_sdks_rich_setup() -> None:
    """The SDK's `configure_logging` would import rich for a handler `basicConfig` then drops; with
    logging set up (every door does it first) the server is built without it, and logs as before."""
    code = (
        "import logging, sys; logging.basicConfig(stream=sys.stderr, level=logging.INFO);"
        "from mugpos.mcp_server.server import build_server; from mugpos.operations import Mugpos;"
        "from mugpos.settings import Settings; build_server(Mugpos(Settings(_env_file=None)));"
        "import mcp.server.mcpserver.server as sdk; assert sdk.configure_logging.__name__ == 'configure_logging';"
        "assert 'rich.console' not in sys.modules; root = logging.getLogger();"
        "assert [type(h).__name__ for h in root.handlers] == ['StreamHandler'], root.handlers"
    )
    run_fresh(code)
