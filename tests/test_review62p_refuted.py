"""Review 62p: attacks on today's MCP gate and transport fixes (reviews 62c, 62f) that did NOT
work (each test fails if the defence it exercises breaks).

- The stamp a 2026-07-28 answer carries (62c, mcp 1) and the request's id are counted to the
  byte whatever the id: one full of JSON escapes, of characters of two to four UTF-8 bytes, an
  integer. A result filling what is left is served whole, one byte more is refused.
- The remembered refusal (62f, listener 3) never answers "none gives way" for a newcomer a
  scan would find a victim for: tables of a few networks and addresses, a first newcomer
  scanned, the others answered by the memo, each checked against a fresh scan (seeded).
- FrameReader.shrink (62f, buffers 1) gives a buffer back to the partial frame it holds, never
  less: after a burst grew it, the start of a frame over `small` shrunk to, the rest fed a byte
  at a time with a shrink after each, the frame comes out whole.
- A peer in RFC 8215's local-use prefix varying bits 48-95 (another translator's /96) to be
  many sources (62f, sources 1): with an IPv4 address in its last 32 bits it is that address,
  whatever the bits before; the whole-address sources (review 62p, sources 1) of one /48 are
  one network.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pydantic_core
import pytest

from tests.test_review58t_mcp import SERVED_EMPTY, answering
from tests.test_review60f_refuted import _Held, _table, _weigh
from tests.test_review62c_mcp import modern_call, modern_session
from troth import __version__, limits
from troth.integrations.mcp.answers import stamp_bytes
from troth.integrations.mcp.gate import GATE_NAME
from troth.transport.connection import source_host, source_network
from troth.transport.eviction import Refusals
from troth.transport.framing import FrameReader, frame

STAMP = {"name": GATE_NAME, "version": __version__}
ROOM = limits.MAX_MCP_FRAME - limits.MAX_MCP_RESULT
"""What a frame holds beyond the largest result: a long id takes more than that."""


@pytest.mark.parametrize(
    "ident",
    ['"\\\n\t\x01/' * (ROOM // 3), "é€😀" * ROOM, 2**62],
    ids=["escapes", "unicode", "integer"],
)
@pytest.mark.parametrize("over", [0, 1])
def test_a_modern_answers_stamp_and_id_are_counted_to_the_byte(ident: Any, over: int) -> None:
    """A result of what the id and the stamp leave of the frame (as the channel writes them:
    compact UTF-8 JSON), `over` bytes more: served whole and recorded allowed only, or
    refused as the upstream answered it."""
    used = 73 + len(pydantic_core.to_json(ident)) + stamp_bytes(STAMP) + SERVED_EMPTY
    size = min(limits.MAX_MCP_RESULT - SERVED_EMPTY, limits.MAX_MCP_FRAME - used) + over
    (answer,), _ = modern_session(answering(size), modern_call(ident))
    if over:
        assert answer["error"]["message"].startswith("troth: the upstream's answer is over the")
    else:
        assert len(answer["result"]["content"][0]["text"]) == size


def _newcomer(rng: random.Random, hosts: list[tuple[str, str]], networks: list[str]) -> _Held:
    """A newcomer of one of `hosts`, or of a fresh address in `networks` or a new one."""
    if rng.random() < 0.5:
        host, network = rng.choice(hosts)
    else:
        host, network = f"x{rng.randint(0, 3)}", rng.choice([*networks, "10.99.0.0/24"])
    return _Held(host, network, progress=0, frames_read=0)


def test_a_remembered_refusal_never_refuses_a_newcomer_a_scan_finds_a_victim_for() -> None:
    """First the shape listener 3 remembers: a network of five addresses holding one each,
    another of four, one holding two; a fresh address of the first refused (listener 2), one
    of the second then has the two-holding address give way, not the memo's "none". Then 400
    tables of up to 16 active connections (up to 8 addresses in up to 4 networks); a newcomer
    refused by a scan, then 4 more: each the memo refuses is refused by a fresh scan too (and
    the memo answers some, so the check is not empty)."""
    table = _table([(f"h{n}", "10.0.0.0/24") for n in range(5)])
    table += _table([("m", "10.1.0.0/24")] * 2 + [(p, "10.1.0.0/24") for p in ("p", "r")])
    refusals = Refusals()
    assert _weigh(table, _Held("h9", "10.0.0.0/24", progress=0), refusals, 1.0) is None
    victim = _weigh(table, _Held("q", "10.1.0.0/24", progress=0), refusals, 1.0)
    assert isinstance(victim, _Held)
    assert victim.host == "m"
    rng = random.Random(62)
    answered = 0
    for _ in range(400):
        networks = [f"10.{n}.0.0/24" for n in range(rng.randint(1, 4))]
        hosts = [(f"h{n}", rng.choice(networks)) for n in range(rng.randint(1, 8))]
        table = _table([rng.choice(hosts) for _ in range(rng.randint(2, 16))])

        refusals = Refusals()
        if _weigh(table, _newcomer(rng, hosts, networks), refusals, 1.0) is not None:
            continue
        for _ in range(4):
            late = _newcomer(rng, hosts, networks)
            if _weigh(table, late, refusals, 1.0) == "known":
                answered += 1
                fresh = _Held(late.host, late.network, progress=0, frames_read=0)
                assert _weigh(table, fresh, Refusals(), 1.0) is None
    assert answered > 50


def test_shrinking_never_cuts_the_frame_being_received() -> None:
    reader = FrameReader(small=64, large=4096)
    body = bytes(range(256)) * 2
    reader.feed(frame(b"x" * 1000) * 4, 0.0)  # a burst: the buffer grew
    wire = frame(body)
    assert reader.feed(wire[:300], 0.0) == []
    assert reader.shrink()
    assert reader.capacity == reader.buffered == 300
    got: list[bytes] = []
    for n in range(300, len(wire)):
        got += reader.feed(wire[n : n + 1], 0.0)
        reader.shrink()
        assert reader.capacity >= reader.buffered
    assert got == [body]
    assert reader.capacity == 64


def test_bits_48_to_95_of_a_local_use_peer_make_no_sources_of_their_own() -> None:
    rng = random.Random(8215)
    middles = [rng.getrandbits(48) for _ in range(50)]
    base = 0x0064_FF9B_0001 << 80
    peers = [str(ipaddress.IPv6Address(base | middle << 32 | 0xC0000221)) for middle in middles]
    assert {source_host(peer) for peer in peers} == {"192.0.2.33"}
    zero = [str(ipaddress.IPv6Address(base | middle << 32)) for middle in middles]
    assert len({source_host(peer) for peer in zero}) == 50  # one per address, as a client
    assert {source_network(source_host(peer)) for peer in zero} == {"64:ff9b:1::/48"}
