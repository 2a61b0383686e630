"""Review 68v (renewal): attacks on review 68t's channel replacement that did not work.

- A peer choosing when this node cuts its channels: the time comes from the channel end's id,
  which the node draws itself (os.urandom) for each end, the ones a peer opens to it included;
  nothing the peer sends is in it, so two channels one peer opens the same way get unrelated
  times and a peer cannot line them up (nor cut a node's channels all at once).
- A renewal with weeks left (a renewal not waiting for the last day): the channels showing the
  old attestation are replaced only within the window before that attestation's own expiry,
  not at the next round.
- Two renewals in a row, and a clock stepped back: a channel on the first attestation is due
  at its own time only (stepped back before it: kept again), and one showing the attestation
  the node shows now is never due, however late (no reconnect loop).
- A channel opened as another local identity (`channel_as`) is replaced by the expiry of the
  attestation it shows, that identity's, not the node's.
- After the replacement the link is back on a channel showing the renewed key, and later
  rounds leave it (no close at every round).
- A service reachable only through a relay name created over the replaced channel: the link
  creates the name again over its new channel (its `restore`), and the relay node holds the
  name for its owner meanwhile: reached again through it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from tests.support.channels import T
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.support.parties import make_channel_party
from tests.test_review68v_renewal import advance_to
from troth.identity.attestation import PurposeKeyAttestation
from troth.identity.service import PURPOSE_KEY_TTL
from troth.node import Node
from troth.node.channel_ends import ChannelEnd
from troth.node.key_renewal import KEY_REPLACE_MARGIN, due_for_new_key, replace_times
from troth.node.links import LinkState
from troth.vault import SoftwareVault

DAY = 86_400


@dataclass
class _Me:
    attestation: bytes


@dataclass
class _Channel:
    me: _Me
    handshaking: bool = False
    closed: bool = False


@dataclass
class _End:
    id: str
    channel: _Channel


def _end(attestation: bytes, channel_id: str) -> ChannelEnd:
    """What `due_for_new_key` reads of an end (its id, its channel's state and shown key)."""
    return cast(ChannelEnd, _End(channel_id, _Channel(_Me(attestation))))


def _idle(end: ChannelEnd) -> bool:
    return False


def _attestation(vault: SoftwareVault, *, now: int, ttl: int = PURPOSE_KEY_TTL) -> bytes:
    return make_channel_party(vault, now=now, key_ttl=ttl).me().attestation


def test_a_peer_cannot_choose_when_the_channels_it_opened_are_replaced(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        assert net.hub is not None
        a = await net.member("a")
        b = await net.member("b")
        ours = {(await x.channel_to(route(HUB))).id for x in (a, b)}
        theirs = [end for end in net.hub.channels.ends.values() if end.peer is not None]
        assert len(theirs) >= 2
        ids = {end.id for end in theirs}
        assert len(ids) == len(theirs)
        assert not ids & ours  # the peer's own end ids are not the node's
        shown = theirs[0].channel.me.attestation
        times = {replace_times(shown, end.id) for end in theirs}
        assert len(times) == len(theirs)  # one key, each channel its own time

    run_memnet(test, tmp_path)


def test_a_renewal_with_weeks_left_closes_nothing_before_the_old_keys_window() -> None:
    vault = SoftwareVault()
    old = _attestation(vault, now=T)
    new = _attestation(vault, now=T + DAY)  # renewed 29 days before the old one expires
    end = _end(old, "chan-00112233aabbccdd")
    times = replace_times(old, end.id)
    assert times is not None
    renewed = frozenset({new})
    for now in (T + DAY, T + 20 * DAY, times[0] - 1):
        assert due_for_new_key([end], now, renewed=renewed, busy=_idle) == []
    assert due_for_new_key([end], times[0], renewed=renewed, busy=_idle) == [end]


def test_two_renewals_and_a_clock_stepped_back_make_no_reconnect_loop() -> None:
    vault = SoftwareVault()
    first = _attestation(vault, now=T)
    third = _attestation(vault, now=T + 2 * DAY)
    on_first, on_third = _end(first, "chan-0000000000000001"), _end(third, "chan-01")
    times = replace_times(first, on_first.id)
    assert times is not None
    renewed = frozenset({third})
    ends = [on_first, on_third]
    assert due_for_new_key(ends, times[0], renewed=renewed, busy=_idle) == [on_first]
    assert due_for_new_key(ends, times[0] - 3 * DAY, renewed=renewed, busy=_idle) == []
    expires = PurposeKeyAttestation.decode(third).expires_at
    for now in (times[1], expires - 1, expires + 10 * DAY):  # the shown one: never
        assert on_third not in due_for_new_key(ends, now, renewed=renewed, busy=_idle)


def test_a_channel_as_another_identity_goes_by_that_identitys_expiry() -> None:
    vault = SoftwareVault()
    node_key = _attestation(vault, now=T)
    agent_key = _attestation(vault, now=T + 10 * DAY)  # another identity's, attested later
    end = _end(agent_key, "chan-aa")
    times = replace_times(agent_key, end.id)
    assert times is not None
    assert times[0] >= PurposeKeyAttestation.decode(agent_key).expires_at - DAY
    renewed = frozenset({node_key})
    assert due_for_new_key([end], T + 29 * DAY, renewed=renewed, busy=_idle) == []
    assert due_for_new_key([end], times[0], renewed=renewed, busy=_idle) == [end]


def _short_keys(node: Node) -> None:
    node.identities.purpose_key_ttl = 400


def test_the_replacement_channel_is_left_by_the_rounds_after(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        assert net.hub is not None
        a = await net.node("a", prepare=_short_keys)
        await a.enroll(net.ticket(), "a")
        end = await a.channel_to(route(HUB))
        times = replace_times(end.channel.me.attestation, end.id)
        assert times is not None
        await advance_to(net, times[0])
        assert end.channel.closed
        again = await a.channel_to(route(HUB))
        later = replace_times(again.channel.me.attestation, again.id)
        assert later is not None
        for _ in range(3):  # rounds before its own time: kept
            net.clock.advance(min(20, later[0] - 1 - net.clock.now()))
            await net.hub.maintain()
            await a.maintain()
        await asyncio.sleep(0.01)
        assert not again.channel.closed
        (row,) = a.link_rows()
        assert row.state is LinkState.CONNECTED

    run_memnet(test, tmp_path)


def test_a_relay_name_is_created_again_over_the_replacement_channel(tmp_path: Path) -> None:
    """b reachable only through its relay name at the hub: once its hub channel is replaced,
    its link creates the name again over the new one and a reaches b through it."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        b = await net.node("b", prepare=_short_keys)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        a = await net.member("a")
        to_b = f"{HUB}/relay/b/service/echo"
        assert await a.send_message(to_b, "up") == "up"
        end = await b.channel_to(route(HUB))
        times = replace_times(end.channel.me.attestation, end.id)
        assert times is not None
        await advance_to(net, times[0])
        for _ in range(300):  # the link back (its backoff: under a second)
            (row,) = b.link_rows()
            if end.channel.closed and row.state is LinkState.CONNECTED:
                break
            await asyncio.sleep(0.01)
        assert end.channel.closed
        assert row.state is LinkState.CONNECTED
        assert row.relays == ("b",)
        assert await a.send_message(to_b, "again") == "again"

    run_memnet(test, tmp_path, relay_grace=3600)


def test_busy_channels_are_not_all_cut_at_the_windows_end() -> None:
    """A peer keeping every channel busy (a request in flight at each round) still meets
    times of their own: the last times spread too, all before the margin."""
    vault = SoftwareVault()
    attestation = _attestation(vault, now=T)
    expires = PurposeKeyAttestation.decode(attestation).expires_at
    times = [replace_times(attestation, f"chan-{n:016x}") for n in range(200)]
    lasts = {t[1] for t in times if t is not None and t[0] < t[1]}
    assert len(lasts) > 150
    assert max(lasts) <= expires - KEY_REPLACE_MARGIN
