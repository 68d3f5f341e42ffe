"""Images by path: only from the allowed folders, through a real MCP tool call.

`..`, symlinked files and symlinked folders that lead outside are refused; the answer is the same
whether the outside file exists or not, so the tool cannot be used to probe the disk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tests_security_support import png_bytes

pytestmark = pytest.mark.anyio


async def test_allowed_image_is_analyzed(mcp_factory, folders, test_data: Path) -> None:
    """Positive control: the refusals below are about location, not about the image."""
    shutil.copy(test_data / "photos" / "coffee.png", folders.allowed / "coffee.png")
    async with mcp_factory() as mcp:
        ans = await mcp.call(
            "analyze_image", image=str(folders.allowed / "coffee.png"), use_saved_rules=False
        )
    assert not ans.is_error, ans.text
    assert ans.structured is not None and ans.structured["mugs"]


def _escapes(folders) -> dict[str, str]:
    secret = folders.outside / "secret.png"
    secret.write_bytes(png_bytes())
    (folders.allowed / "link.png").symlink_to(secret)
    (folders.allowed / "linkdir").symlink_to(folders.outside, target_is_directory=True)
    (folders.allowed / "dev.png").symlink_to("/dev/zero")
    return {
        "absolute outside": str(secret),
        "system file": "/etc/passwd",
        "dot-dot": f"{folders.allowed}/../outside/secret.png",
        "dot-dot deep": f"{folders.allowed}/a/b/../../../outside/secret.png",
        "symlinked file": str(folders.allowed / "link.png"),
        "symlinked folder": str(folders.allowed / "linkdir" / "secret.png"),
        "symlink to a device": str(folders.allowed / "dev.png"),
        "file url": f"file://{secret}",
        "home": "~/.ssh/id_rsa",
        "proc": "/proc/self/environ",
    }


async def test_paths_outside_allowed_folders_are_refused(mcp_factory, folders) -> None:
    escapes = _escapes(folders)
    async with mcp_factory() as mcp:
        for name, ref in escapes.items():
            ans = await mcp.call("analyze_image", image=ref, use_saved_rules=False)
            assert ans.is_error, f"{name}: {ref} was read: {ans.text[:200]}"
            assert ans.code == "path_not_allowed", f"{name}: {ans.text}"
            assert "root:" not in ans.text and "PNG" not in ans.text


async def test_refusal_does_not_reveal_whether_a_file_exists(mcp_factory, folders) -> None:
    (folders.outside / "exists.png").write_bytes(png_bytes())
    async with mcp_factory() as mcp:
        there = await mcp.call(
            "analyze_image", image=str(folders.outside / "exists.png"), use_saved_rules=False
        )
        absent = await mcp.call(
            "analyze_image", image=str(folders.outside / "absent.png"), use_saved_rules=False
        )
    assert there.is_error and absent.is_error
    assert there.text == absent.text


async def test_fifo_inside_allowed_folder_does_not_hang(mcp_factory, folders) -> None:
    fifo = folders.allowed / "pipe.png"
    os.mkfifo(fifo)
    async with mcp_factory() as mcp:
        ans = await mcp.call("analyze_image", image=str(fifo), use_saved_rules=False)
    assert ans.is_error and ans.code == "not_a_file", ans.text


async def test_http_transport_default_is_not_the_whole_disk(make_settings) -> None:
    """Without MUGPOS_ALLOWED_DIRS the default is the working folder and the inbox, never '/'."""
    settings = make_settings(allowed_dirs=[])
    dirs = settings.effective_allowed_dirs()
    assert Path("/") not in dirs and Path.home() not in dirs
    assert all(d != Path("/").resolve() for d in dirs)
