"""Review 69c (renewal): attacks on the channel replacement for a renewed channel key (reviews
68t, 68v) that did not work.

- A peer that never lets a channel be idle (one request always in flight over a relay-routed
  channel it opened): the node closes its end at that channel's last time, before the margin
  ahead of the expiry, whatever is in flight; the peer's request in flight fails with
  Unreachable (typed, `closed`), not a hang nor a late refusal, and its next request reaches
  the node over a new channel showing the renewed key. The channel does not outlive its time.
- A request sent over a relay name while its owner's channel to the relay node was just
  closed (its link reconnecting, the gap 68v left): it is answered, not lost to the caller's
  timeout.
- The channel carrying a relay name replaced while a request over a channel routed through
  that name is in flight: the routed channel stays open and the request is answered.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review68v_renewal import SLOW, TTL, _short_keys, _Slow, advance_to
from troth.errors import Unreachable
from troth.identity.attestation import PurposeKeyAttestation
from troth.node.channel_ends import ChannelEnd
from troth.node.key_renewal import KEY_REPLACE_MARGIN, replace_times
from troth.node.links import LinkState
from troth.node.runtime import NodeRuntime
from troth.node.services.calls import call

TO_B = f"{HUB}/relay/b"


async def _relayed_b(net: MemNet) -> tuple[NodeRuntime, NodeRuntime, _Slow]:
    """b (short channel keys) reachable only at its relay name at the hub, hosting the slow
    service; a, a member."""
    b = await net.node("b", prepare=_short_keys)
    await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
    await b.create_relay("b", HUB)
    slow = _Slow()
    b.add_service(slow)
    return await net.member("a"), b, slow


def _end_of(net: MemNet, node: NodeRuntime, peer: NodeRuntime) -> ChannelEnd:
    """`node`'s open end of its channel whose peer is `peer`'s identity."""
    name = net.identifier(peer)
    (end,) = [
        e
        for e in node.channels.ends.values()
        if e.peer is not None and e.peer.identifier == name and not e.channel.closed
    ]
    return end


def test_a_peer_keeping_a_request_in_flight_is_cut_at_the_last_time(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        a, b, slow = await _relayed_b(net)
        to_b = await a.channel_to(route(TO_B))
        theirs = _end_of(net, b, a)
        times = replace_times(theirs.channel.me.attestation, theirs.id)
        assert times is not None
        expires = PurposeKeyAttestation.decode(theirs.channel.me.attestation).expires_at
        # a's requests overlap: one always in flight over the channel it opened
        n, calls = 0, []
        while net.clock.now() < times[1]:
            n += 1
            calls.append(
                asyncio.ensure_future(call(a.router, (to_b.enc, SLOW), "wait", n, timeout=60))
            )
            await asyncio.wait_for(slow.gate(n)[1].wait(), 2)
            if n > 1:
                slow.gate(n - 1)[0].set()
                assert await calls[-2] == n - 1
            await advance_to(net, min(net.clock.now() + 40, times[1]))
        assert theirs.channel.closed  # at its last time, busy as it was
        assert net.clock.now() <= expires - min(KEY_REPLACE_MARGIN, TTL // 4)  # the margin
        with pytest.raises(Unreachable, match="closed"):
            await calls[-1]
        slow.gate(n)[0].set()
        again = await a.channel_to(route(TO_B))
        assert again is not to_b
        assert _end_of(net, b, a).channel.me.attestation != theirs.channel.me.attestation
        slow.gate(0)[0].set()
        assert await call(a.router, (again.enc, SLOW), "wait", 0, timeout=5) == 0

    run_memnet(test, tmp_path, relay_grace=3600)


def test_a_request_sent_in_the_relay_names_gap_is_delivered(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        a, b, slow = await _relayed_b(net)
        to_b = await a.channel_to(route(TO_B))
        carrier = await b.channel_to(route(HUB))
        slow.gate(1)[0].set()
        await carrier.close()  # replaced: the link reconnecting, the name not yet created again
        await asyncio.sleep(0)
        (row,) = b.link_rows()
        assert row.state is not LinkState.CONNECTED
        assert await call(a.router, (to_b.enc, SLOW), "wait", 1, timeout=5) == 1

    run_memnet(test, tmp_path, relay_grace=3600)


def test_a_request_over_a_routed_channel_outlives_the_replacement_of_its_carrier(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        a, b, slow = await _relayed_b(net)
        carrier = await b.channel_to(route(HUB))
        times = replace_times(carrier.channel.me.attestation, carrier.id)
        assert times is not None
        for _ in range(20):  # b's end of the routed channel kept (busy) past the carrier's time
            to_b = await a.channel_to(route(TO_B))
            theirs = _end_of(net, b, a)
            own = replace_times(theirs.channel.me.attestation, theirs.id)
            assert own is not None
            if own[1] > times[0]:
                break
            await to_b.close()
            await asyncio.sleep(0.01)
        else:
            pytest.fail("no routed channel kept past the carrier's time")
        first = asyncio.ensure_future(call(a.router, (to_b.enc, SLOW), "wait", 1, timeout=30))
        await asyncio.wait_for(slow.gate(1)[1].wait(), 2)
        await advance_to(net, times[0])
        assert carrier.channel.closed  # the carrier replaced
        assert not to_b.channel.closed
        slow.gate(1)[0].set()
        assert await first == 1

    run_memnet(test, tmp_path, relay_grace=3600)
