"""Review 69c (renewal: the replacement of a node's channels before its channel key's
attestation expires, reviews 68t and 68v) findings.

renewal 1 (low): nothing bounded the channels one maintenance round closed for the renewed
   key. Spread over the window a round finds a few, but a clock stepped forward over the
   window (an NTP step, a VM resumed) or a node down through it made every channel due at
   once: every channel of the node (up to MAX_OPEN_CHANNELS) closed in one round, every link
   and every peer reconnecting in the same second, the storm the spread was made to avoid. Now
   a round closes at most KEY_REPLACEMENTS_PER_ROUND, those whose last time came first; the
   rest follow in the next rounds, all well within KEY_REPLACE_MARGIN.

renewal 2 (medium): `channel_to` reused a channel past its time to be replaced for the renewed
   key (review 68t's tests said it reused none; nothing checked it). A node whose own traffic
   to a peer overlaps (a request always in flight: a broker client, an MCP gateway, a link's
   calls) sent each new request over the old channel, which so never was idle: review 68v
   kept it to its last time and then closed it, and the node's requests in flight failed with
   Unreachable (`channel … closed`), the very loss the window was to avoid. Now a channel
   past its time, showing a key the node has renewed since, is not reused: the node's next
   request opens a new channel (the link moves to it), the old one drains and the next round
   finds it idle. A link holding relay names creates them again over the new channel (as a
   reconnect's restore does): moved without a reconnect, the relay node held the names once
   the old channel closed, and the link, still connected, never created them again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.channels import T
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review68v_refuted import _attestation, _end, _idle
from tests.test_review68v_renewal import SLOW, _short_keys, _Slow, advance_to
from troth.identity.attestation import PurposeKeyAttestation
from troth.limits import MAINTENANCE_SECONDS, MAX_OPEN_CHANNELS
from troth.node.channel_ends import ChannelEnd
from troth.node.key_renewal import (
    KEY_REPLACE_MARGIN,
    KEY_REPLACEMENTS_PER_ROUND,
    due_for_new_key,
    replace_times,
)
from troth.node.links import LinkState
from troth.node.runtime import NodeRuntime
from troth.node.services.calls import call
from troth.vault import SoftwareVault


def test_a_clock_stepped_over_the_window_replaces_channels_a_bounded_number_a_round() -> None:
    vault = SoftwareVault()
    old = _attestation(vault, now=T)
    renewed = frozenset({_attestation(vault, now=T + 29 * 86_400)})
    expires = PurposeKeyAttestation.decode(old).expires_at
    ends = [_end(old, f"chan-{n:016x}") for n in range(1000)]
    now = expires - KEY_REPLACE_MARGIN  # stepped past every channel's last time
    lasts = {}
    for end in ends:
        times = replace_times(old, end.id)
        assert times is not None
        assert times[1] <= now
        lasts[end.id] = times[1]
    left, rounds = list(ends), 0
    while left:
        due = due_for_new_key(left, now, renewed=renewed, busy=_idle)
        assert 0 < len(due) <= KEY_REPLACEMENTS_PER_ROUND
        kept = [end for end in left if end not in due]
        # the most overdue first
        assert max(lasts[e.id] for e in due) <= min((lasts[e.id] for e in kept), default=now)
        left, rounds = kept, rounds + 1
    assert rounds == -(-1000 // KEY_REPLACEMENTS_PER_ROUND)
    # the most a node holds is replaced well within the margin at this pace
    rounds = -(-MAX_OPEN_CHANNELS // KEY_REPLACEMENTS_PER_ROUND)
    assert rounds * MAINTENANCE_SECONDS < KEY_REPLACE_MARGIN


async def _overlapping_calls_past_the_time(
    net: MemNet, node: NodeRuntime, slow: _Slow
) -> ChannelEnd:
    """`node`'s calls to the hub overlapping from before its channel's time to be replaced to
    past its last time: each answered (none failed by the close). The channel replaced."""
    old = await node.channel_to(route(HUB))
    times = replace_times(old.channel.me.attestation, old.id)
    assert times is not None
    at, last = times
    first = asyncio.ensure_future(call(node.router, (old.enc, SLOW), "wait", 1, timeout=60))
    await asyncio.wait_for(slow.gate(1)[1].wait(), 2)
    await advance_to(net, at)
    assert not old.channel.closed  # busy: kept
    new = await node.channel_to(route(HUB))  # the node's next request there, the first in flight
    second = asyncio.ensure_future(call(node.router, (new.enc, SLOW), "wait", 2, timeout=60))
    await asyncio.wait_for(slow.gate(2)[1].wait(), 2)
    slow.gate(1)[0].set()
    assert await first == 1
    await advance_to(net, last)
    assert old.channel.closed
    slow.gate(2)[0].set()
    assert await second == 2  # not Unreachable: it went over the new channel
    assert new is not old
    assert not new.channel.closed
    (row,) = node.link_rows()
    assert row.state is LinkState.CONNECTED
    assert await node.channel_to(route(HUB)) is new  # reused from now on: no loop
    return new


@pytest.mark.parametrize("relayed", [False, True])
def test_the_nodes_own_overlapping_requests_do_not_keep_a_channel_to_its_last_time(
    tmp_path: Path, relayed: bool
) -> None:
    """`relayed`: the node reachable only at its relay name at the hub, which moves with its
    link to the new channel (a reaches it after the old one closed, not `relay not found`)."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        slow = _Slow()
        net.hub.add_service(slow)
        b = await net.node("b", prepare=_short_keys)
        await b.enroll(net.ticket(**({"troth.relay": "b"} if relayed else {})), "b")
        if not relayed:
            await _overlapping_calls_past_the_time(net, b, slow)
            return
        await b.create_relay("b", HUB)
        a = await net.member("a")
        to_b = f"{HUB}/relay/b/service/echo"
        assert await a.send_message(to_b, "up") == "up"
        await _overlapping_calls_past_the_time(net, b, slow)
        assert await a.send_message(to_b, "again") == "again"

    run_memnet(test, tmp_path, relay_grace=3600)
