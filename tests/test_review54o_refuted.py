"""Review 54o: attacks on this session's new code (54b, 54d, 54h, 54i, 54k) that failed, the
code right; pinned so they stay failed."""

from __future__ import annotations

import asyncio
import json
import random
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.channels import T
from tests.support.gates import make_world
from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, echo, run, until
from tests.test_review53o_refuted import AdmitAnyone
from tests.test_review54o_policy import AUTHORITY, caller, service
from troth import limits
from troth.errors import cut_text
from troth.integrations.mcp.upstream import LineTooLong, _Lines
from troth.node.channels import ChannelLimits
from troth.node.services import policy as policy_module
from troth.node.services.policy import _Pulls
from troth.routing import parse_route


def _chunked(stream: bytes, rng: random.Random) -> list[bytes]:
    chunks, start = [], 0
    while start < len(stream):
        size = rng.choice((1, 2, 3, 7, 64, 1000))
        chunks.append(stream[start : start + size])
        start += size
    return chunks


def test_the_upstream_line_reader_neither_loses_nor_duplicates_at_chunk_ends() -> None:
    """54d, json 3: lines of 0 to 40 bytes (the limit 32), a UTF-8 character split anywhere,
    fed in chunks cut anywhere (a newline first or last in a chunk, chunks of one byte): each
    line within the limit comes out once, whole, in order; each longer one is one LineTooLong
    in its place; a line not ended yet (the stream's tail) is not given out."""
    rng = random.Random(54)
    for _ in range(200):
        wanted = [
            bytes(rng.choice(b"ab\xc3\xa9{}") for _ in range(rng.randrange(41)))
            for _ in range(rng.randrange(1, 12))
        ]
        tail = b"unended"
        lines = _Lines(32)
        got: list[bytes | str] = []
        for chunk in _chunked(b"".join(line + b"\n" for line in wanted) + tail, rng):
            got += ["long" if isinstance(item, LineTooLong) else item for item in lines.feed(chunk)]
        assert got == [line if len(line) <= 32 else "long" for line in wanted]
        assert b"".join(lines.parts) == tail


def test_a_pull_failure_is_cut_and_escaped_in_the_status() -> None:
    """54h, bundles 7: the failure text a pull keeps is the error's, which may quote what the
    authority's node (or a peer on the way) said: it is cut to MAX_POLICY_MESSAGE_TEXT, and the
    status is shown only as JSON (`troth node status --json`; the text output names no service
    status), where escape sequences and other control characters are escaped."""
    said = "\x1b[2J\x1b]0;owned\x07\r\u202e" * 10_000
    pulls = _Pulls()
    pulls.ended(5, cut_text(said, limits.MAX_POLICY_MESSAGE_TEXT))
    assert pulls.error is not None
    assert len(pulls.error) < limits.MAX_POLICY_MESSAGE_TEXT + 40
    shown = json.dumps({"pulls": pulls.to_json()}, indent=2)
    assert not any((ord(c) < 0x20 and c != "\n") or ord(c) > 0x7E for c in shown)
    pulls.ended(9, None)
    assert pulls.to_json() == {"succeeded_at": 9, "failing_since": None, "error": None}


def test_channels_whose_connections_die_give_their_places_back() -> None:
    """54k, channels 1: strangers' channels whose connections close under them (no CLOSE, as a
    peer that vanishes) give their places back at once: the cap's count does not drift, and
    after four rounds of strangers filling the strangers' part and vanishing, new strangers
    and a member find their places with nothing evicted."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_open_channels=4))
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())
        hub.transport.lost.append(hub.manager.connection_lost)  # as NodeRuntime wires it
        for round_ in range(4):
            peers = [net.peer(f"10.{round_ + 20}.{n}.1") for n in range(3)]
            for peer in peers:
                who = make_channel_party(net.world.vault, now=T)
                end = await peer.manager.open(parse_route(HUB), me=who.me(()))
                assert await echo(peer, end, "up") == "up"
            assert hub.manager._open.strangers == 3
            for peer in peers:
                await peer.transport.close()
            await until(lambda: len(hub.manager._open) == 0)
        assert hub.manager.counters.evicted_open == 0
        assert hub.manager.counters.refused_open == 0
        member = net.peer("10.0.0.9")
        end = await member.manager.open(parse_route(HUB))
        assert await echo(member, end, "member") == "member"
        assert len(hub.manager._open) == 1

    run(test)


def test_channels_closed_silent_by_the_keepalive_give_their_places_back() -> None:
    """54k, channels 1: strangers' channels the keepalive closes, their peers silent past its
    timeout (the connections still up), give their places back: the cap holds none after."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_open_channels=4))
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())
        for n in range(3):
            peer = net.peer(f"10.30.{n}.1")
            who = make_channel_party(net.world.vault, now=T)
            await peer.manager.open(parse_route(HUB), me=who.me(()))
        assert len(hub.manager._open) == 3
        later = asyncio.get_running_loop().time() + 10_000
        hub.manager.keepalive(later)  # silence counted from here (`SecureChannel.keepalive`)
        hub.manager.keepalive(later + 10_000)  # past the keepalive timeout
        await until(lambda: len(hub.manager._open) == 0 and not hub.manager.ends)

    run(test)


def test_an_ask_back_answered_with_another_authoritys_bundle_installs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """54h, bundles 8: a member whose `get` made its authority's node ask it back answers
    with a bundle of another authority the node trusts (genuine, signed by that authority):
    refused before it is verified (the ask back takes a bundle of the authority asked only),
    nothing accepted nor distributed; an answer that is not a bundle is refused as well."""
    other = make_world().bundle(revision=9)
    accepted: list[bytes] = []
    distributed: list[object] = []

    async def run_on_worker(function: Any, *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    async def test() -> None:
        for answer in (other, b"junk", 7):

            async def answering(router: Any, route: Any, method: str, arguments: Any) -> Any:
                assert method == "get"
                return answer  # noqa: B023 (awaited within the loop's iteration)

            monkeypatch.setattr(policy_module, "call", answering)
            node = service()
            patched: Any = node
            patched.worker = SimpleNamespace(run=run_on_worker)
            patched.policies.accept = lambda data, *, now: accepted.append(data)
            patched.distribute = distributed.append
            node._ask_back(caller(1, member=1), AUTHORITY)
            for _ in range(50):  # its task runs to its end
                await asyncio.sleep(0)
            assert not node._asking
            assert not node._tasks
        assert accepted == []
        assert distributed == []

    asyncio.run(test())
