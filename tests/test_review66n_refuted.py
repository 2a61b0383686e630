"""Review 66n, relays: attacks on review 66f's relay cut fixes that did not work, each a
passing test that fails if the defence it names breaks.

1. `AllowSet.forget_each` leaves an allow-set otherwise than `forget` of each address would
   (which reply paths and endpoints stay, and which reply path goes first after), on either
   side of its switch between going through the addresses and going through what the set
   holds: hypothesis over both sizes finds no difference.
2. An honest owner refused (a stale feed) while another name was up over its connection, then
   allowed again within the grace period, has its connection cut once both names go down
   later: the connection kept from the cut (`RelayService._uncut`) is let go as soon as the
   relay that wanted it forwards again, and the stranger that reached b still does.
3. A connection pushed out of an owner's earlier ones (`Relay.earlier`, review 66f, relays 2)
   that now carries another name up is cut as it goes, taking that name's senders: a
   connection a name up forwards over is kept from the cut; the stranger still reaches b
   there.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_reconnect import until
from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review66n_relays import _close
from troth import limits
from troth.node.access import AccessRequest, Decision
from troth.routing import Address, AllowSet

_ADDRESSES = [Address("worker", f"a{number}") for number in range(24)]


def _filled(held: list[Address], paths: list[Address]) -> AllowSet:
    made = AllowSet(max_reply_paths=8)
    for address in held:
        made.hold(address)
    for address in paths:
        made.allow(address)
    return made


@settings(max_examples=100, deadline=None)
@given(
    held=st.lists(st.sampled_from(_ADDRESSES), max_size=6),
    paths=st.lists(st.sampled_from(_ADDRESSES), max_size=16),
    forgotten=st.sets(st.sampled_from(_ADDRESSES), max_size=24),
)
def test_forget_each_leaves_what_forget_of_each_would(
    held: list[Address], paths: list[Address], forgotten: set[Address]
) -> None:
    """Refuted 1: the same addresses allowed, the same counts, and the same reply path pushed
    out first by new ones."""
    one, each = _filled(held, paths), _filled(held, paths)
    for address in forgotten:
        one.forget(address)
    each.forget_each(forgotten)
    assert (one.reply_paths, one.held) == (each.reply_paths, each.held)
    assert [one.allows(a) for a in _ADDRESSES] == [each.allows(a) for a in _ADDRESSES]
    for number in range(8):  # the LRU order: which go first
        fresh = Address("worker", f"fresh{number}")
        one.allow(fresh)
        each.allow(fresh)
        assert [one.allows(a) for a in _ADDRESSES] == [each.allows(a) for a in _ADDRESSES]


async def _reached(net: Stranger, to_b: Address) -> None:
    """A new message 1 straight to `to_b` arrives at b."""
    before = len(net.mine())
    net.send(f"{to_b}/service/channels")
    await until(lambda: len(net.mine()) > before)


def test_an_owner_allowed_again_is_not_cut_once_its_names_go_down(tmp_path: Path) -> None:
    """Refuted 2: b refused while d was up over b's connection, allowed again at the next
    round; then b's channel and d's close: the stranger still reaches b at its connection."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        relays = net.relay.relays
        relays["d"] = replace(relays["b"], channel="d-channel")
        refused = {"b"}

        def decide(request: AccessRequest) -> Decision:
            return Decision(request.arguments not in refused, ("revoked",))

        net.relay.decide = decide
        now = net.relay.clock()
        await net.relay.maintain(now)
        assert relays["b"].refused
        refused.clear()
        await net.relay.maintain(now + 1)
        assert relays["b"].lost_at is None
        _close(net, relays["b"].channel)
        _close(net, "d-channel")
        assert relays["b"].lost_at is not None
        assert relays["d"].lost_at is not None
        await net.relay.maintain(now + 2)
        await _reached(net, to_b)

    with_stranger(tmp_path, test)


def test_a_connection_pushed_out_that_carries_another_name_up_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refuted 3, with a window of one earlier connection: d is up over b's first connection;
    b creates its name again over a second, then a third, which pushes the first out; the
    stranger that reached b there still does."""
    monkeypatch.setattr(limits, "MAX_CHANNELS_PER_MEMBER", 1)

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        relays = net.relay.relays
        relays["d"] = replace(relays["b"], channel="d-channel")
        assert net.hub.listening is not None
        port = net.hub.listening[1]
        for host in ("localhost", "127.1"):
            await net.b.create_relay("b", f"/tcp/{host}:{port}")
        assert to_b not in relays["b"].earlier
        assert relays["b"].connection != to_b
        await _reached(net, to_b)

    with_stranger(tmp_path, test)
