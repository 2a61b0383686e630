"""Review 64d, refuted: attacks on 63p's tools/list pages and 63w2's --out guard that did not
work (each test fails if the defence it names breaks).

MCP pages, end to end (a full hub publishing an upstream of 24 tools of 48 KB, members'
MCP clients connected over secure channels, each listing in pages):
- a cursor replayed on another session of the same member, or by another member (who sees
  other tools), is refused Invalid params; the original session's cursor still serves;
- a bundle revision installed mid-paging that hides tools of the second page: the old cursor is
  refused (never a page of the old listing, never a hidden tool), and listing again from the
  start shows exactly the new listing, each tool once.

The --out guard (`_outside_devices`), no false refusal: a file in a temporary directory whose
path holds "dev" (`dev/`, `devices/`, `/dev` as a name's part), a relative path, a path
through a symlinked directory are written (the guard compares the directory's filesystem with
/dev's, never the text).
"""

from __future__ import annotations

import os
from pathlib import Path

import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.support.cli import run, run_json
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_review63p_mcp import _EVEN, _NAMES, _ODD_FOR_WRITERS, _tools, _upstream
from troth.gates import create_bundle
from troth.integrations.mcp.connect import connect
from troth.node.services.mcp import publish_upstream

_ORDERS = f"{HUB}/service/mcp.orders"


def _bundle(net: MemNet, policies: str, revision: int) -> bytes:
    hub = net.hub
    assert hub is not None
    now = net.clock.now()
    return create_bundle(
        hub.node.identities.signer("hub", now=now),
        authority=net.authority.identifier,
        policies=policies,
        schema="",
        tools=_tools(),
        revision=revision,
        now=now,
        ttl=3600,
    )


async def _all(agent: Client) -> list[str]:
    pages = [await agent.list_tools()]
    while pages[-1].next_cursor is not None and len(pages) < 10:
        pages.append(await agent.list_tools(cursor=pages[-1].next_cursor))
    return [tool.name for page in pages for tool in page.tools]


def _refused(exc: pytest.ExceptionInfo[MCPError]) -> None:
    assert exc.value.error.code == types.INVALID_PARAMS
    assert exc.value.error.message.startswith("troth: the cursor is not one of this listing")


def test_mcp_cursors_over_channels_stay_with_their_session_and_listing(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        hub.policies.accept(_bundle(net, _ODD_FOR_WRITERS, 1), now=net.clock.now())
        await publish_upstream(hub, "orders", _upstream())
        writer = await net.member("writer", **{"orders.access": "write"})
        reader = await net.member("reader", **{"orders.access": "read"})
        async with (
            connect(writer, "writer", _ORDERS) as one,
            Client(one, mode="legacy", cache=None) as first,
            connect(writer, "writer", _ORDERS) as two,
            Client(two, mode="legacy", cache=None) as second,
            connect(reader, "reader", _ORDERS) as three,
            Client(three, mode="legacy", cache=None) as other,
        ):
            page = await first.list_tools()
            cursor = page.next_cursor
            assert cursor is not None
            assert [t.name for t in page.tools] == _NAMES[: len(page.tools)]
            for client in (second, other):  # another session of the writer; the reader
                with pytest.raises(MCPError) as exc:
                    await client.list_tools(cursor=cursor)
                _refused(exc)
            assert await _all(other) == _NAMES[::2]
            rest = await first.list_tools(cursor=cursor)
            names = [t.name for t in page.tools + rest.tools]
            assert (names, rest.next_cursor) == (_NAMES, None)
            # mid-paging, a revision hiding the odd tools (the second page's among them)
            cursor = (await second.list_tools()).next_cursor
            assert cursor is not None
            hub.policies.accept(_bundle(net, _EVEN, 2), now=net.clock.now())
            with pytest.raises(MCPError) as exc:
                await second.list_tools(cursor=cursor)
            _refused(exc)
            assert await _all(second) == _NAMES[::2]

    run_memnet(test, tmp_path / "home", budget=30)


@pytest.mark.parametrize("folder", ["dev", "devices", "x/dev/shm", "udev"])
def test_cli_out_in_a_tmp_folder_named_dev_is_written(
    tmp_path: Path, troth_home: Path, folder: str
) -> None:
    run("identity", "create", "agent")
    target = tmp_path / folder / "dev"
    target.parent.mkdir(parents=True)
    result = run_json("identity", "export", "agent", "--out", str(target))
    assert result["file"] == str(target)
    assert target.is_file()


def test_cli_out_relative_and_through_a_symlinked_folder_is_written(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    for out in ("relative", "linked/through", "./linked/../real/dotted"):
        assert run_json("identity", "export", "agent", "--out", out)["file"] == out
    assert sorted(os.listdir(tmp_path / "real")) == ["dotted", "through"]
    assert (tmp_path / "relative").is_file()
