"""Review 73k, kept: the room a node keeps for its own at another node (73c rooms 1-4) and the
lead's split of the sources at the node's cap on open channels (18de35a7, review 73g's
notices3 2), attacked (each test failed on the code before its fix).

Kept 1 (low-medium: one host holding twice its neighbours' places at the cap). At the node's
cap on open channels, `_take_place` filed a channel whose message 1 was `forwarded` (a party
behind the node at the other end of a connection, `behind_other_end`) under a source of its
own, `<source key> behind`, and the cap gives way by the source holding the most. But the
route shape is the sender's to choose: a host that connected names a return route past its
channel end's reply address and its message 1 is `forwarded`. So one host, alternating, held
two sources in the ranking, each half its channels; a neighbour of its network holding as
many in one source gave way first, and at the churn of two flooding hosts of one /24 the
splitting one kept twice the other's places (4 of 6 here, the other 2; each 3 before the
split). Now the source is the source key alone, as before the split, and within the source
that gives way, a party behind its node gives way first (as review 73c's rooms 3 chose in the
half-open table): what the split was for, without a second source.

Kept 2 (low-medium: a node's members evicting its own channels at the cap, 73g's notices3 2
left open). With the split, a party behind b at the cap, its own source (`b behind`) not among
the most, took the place of the source holding the most: b's own, when b held more channels
than its members (and before the split, of b's source, its oldest, b's own). b's members
(strangers the hub admits, free to mint) evicted b's own channels one per handshake, down to
as many as theirs. Now a party behind a node takes the place of a party behind a node of its
own source only; with none, it is refused (`peer not allowed`), as a member's message 1 is in
the half-open table (review 72x, halfopen 1), at message 3 as at take-in (`admits` agreeing
with `place`: the fix's first version, among members' channels, admitted it at message 3).

Kept 3 (low: the handshake budget spent on a message 1 refused). Past the node-wide half-open
table, a party behind a node whose source holds no handshake of such a party to give way is
refused (review 72x, halfopen 1: never its node's own), but its opening of the handshake rate
was taken first, and not given back: each refused message 1, costing the node nothing, spent
its source's share and its network's budget down to the part kept (73c rooms 2 and 4), and
the node's neighbours on its /24 were refused for rate (review 57c: what a source's own limits
refuse spends nothing). Now the opening is given back as the message 1 is refused.
"""

from __future__ import annotations

from typing import Any

from tests.support.parties import make_channel_party
from tests.test_channel_manager import Net, run, until
from tests.test_review53o_refuted import AdmitAnyone
from tests.test_review54k_channels import open_as_stranger
from tests.test_review72i_ends import _Behind
from tests.test_review72x_halfopen import _OWN, _message_1
from tests.test_review73g_notices3 import _Strangers
from troth.channel import AnyAuthenticatedIdentity, ChannelState, SecureChannel
from troth.node.channel_cap import OpenChannels, Opener
from troth.node.channel_limits import ChannelCounters
from troth.node.channels import LISTENER, ChannelLimits
from troth.node.shares import LOCAL
from troth.routing import Address

_CAP = ChannelLimits(max_open_channels=8)
"""The hub's cap: 8 channels, strangers 6 of them."""


def _reply(number: int) -> Address:
    return Address("worker", f"chan-{number:016x}.dec")


def _refused(counters: ChannelCounters) -> int:
    return counters.refused_half_open_per_source + counters.refused_handshake_rate


def _held(hub: Any, host: str) -> int:
    """The open channels the hub holds from `host`'s source (its own and those behind it)."""
    return sum(end.source_key.endswith(f" {host}") for end in hub.manager.ends.values())


async def _opened(behind: _Strangers, reply: Address) -> SecureChannel:
    """A party behind the node opens a channel (its reply address `reply`); the channel once
    the hub has opened or refused it."""
    channel = behind.channel(reply, opens=True)
    (first,) = channel.outgoing()
    await behind._send(first, (behind.connection.address, LISTENER), reply)
    await until(lambda: channel.state is ChannelState.OPEN or channel.closed)
    return channel


def test_a_host_splitting_its_channels_keeps_no_more_at_the_cap() -> None:
    """Kept 1: hosts A and B of one /24 at the hub's cap (6 places for strangers): A holds all
    six; B opens two channels of its own and two as a party behind itself, alternating; A
    then opens six more. Each keeps three (before: B four, A two: B's two sources each held
    two, A's one source gave way whenever it held more)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=_CAP)
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())
        a, b = net.peer("10.6.1.1"), net.peer("10.6.1.2")
        for _ in range(6):
            await open_as_stranger(net, a)
        await open_as_stranger(net, b)
        behind = _Strangers(net, hub, b)
        await _opened(behind, _reply(1))
        await open_as_stranger(net, b)
        await _opened(behind, _reply(2))
        for _ in range(6):
            await open_as_stranger(net, a)
        assert (_held(hub, "10.6.1.1"), _held(hub, "10.6.1.2")) == (3, 3)

    run(test)


def test_a_party_behind_a_node_never_takes_the_place_of_its_own_channel() -> None:
    """Kept 2: b, a stranger at the hub, holds all six places for strangers with channels of
    its own; a stranger behind b opens one: refused, every channel of b's still open (before:
    b's oldest gave way, and each further one took another of b's)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=_CAP)
        hub.manager.trust = lambda: net.world.trust(AnyAuthenticatedIdentity())
        party = make_channel_party(net.world.vault, now=net.clock.now)
        b = await net.relayed(hub, "b", party=party)
        b.manager.me = lambda: party.me(())
        (connection,) = b.transport.connections()
        own = [await b.manager.open((connection.address,)) for _ in range(6)]
        behind = _Strangers(net, hub, b)
        for number in range(2):
            assert (await _opened(behind, _reply(number))).closed
        assert hub.manager.counters.evicted_open == 0
        assert all(end.channel.state is ChannelState.OPEN for end in own)

    run(test)


def test_a_message_1_refused_past_the_table_spends_no_opening() -> None:
    """Kept 3: the hub's half-open table holds one handshake, b's own; six members' messages 1
    behind b are refused (none of theirs to give way); a neighbour of b's /24 then still takes
    up the network's openings b's own left (before: the members' refused messages had spent
    them down to the part kept, 4 of 8, and the neighbour had 3 at most, a second's refill
    included)."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(max_half_open=1, handshake_burst=8, handshake_rate=1)
        hub = await net.hub(limits=limits)
        b = await net.relayed(hub, "b", limits=ChannelLimits(handshake_timeout=2.0))
        behind = _Behind(net, hub, b)
        await _message_1(hub, behind, _OWN, own=True, sent=1)
        counters = hub.manager.counters
        for sent in range(1, 7):
            channel = behind.channel(_reply(sent), opens=True)
            (first,) = channel.outgoing()
            await behind._send(first, (behind.connection.address, LISTENER), _reply(sent))
            await until(lambda: _refused(counters) >= sent)  # noqa: B023 (awaited here)
        assert counters.refused_half_open_per_source == 6  # (before: 3, then 3 for rate)
        (network,) = hub.manager._networks.values()
        openings = hub.manager._openings
        assert sum(openings.take("memory 10.0.0.3", network) for _ in range(16)) >= 7

    run(test)


def test_at_message_3_the_cap_refuses_the_party_behind_a_node_it_refuses_at_take_in() -> None:
    """Kept 2 (`admits` agreeing with `place`, sans-IO): members alone hold the cap (7; one
    authority trusted: shares of 2), authority a1 over its share, its source holding the most
    s0, all s0's own; a member of a0 (within its share) behind the node of s0 opens one: it is
    refused at message 3 as it is at take-in (before: admitted at message 3, its handshake
    completed for nothing, then closed; review 54w, channels 1). Review 74h, cap6 1: s0's own
    set aside, s1's party gives way for it, at message 3 as at take-in; with a1 holding none
    besides s0's own, it is refused at both. (Review 74m, cap7 1: a1 holds three besides s0's
    own, over its share without them; with two, at its share, b's member is refused.)"""
    cap: OpenChannels[int] = OpenChannels(7, lambda: 1)
    a0, a1 = frozenset({b"a0"}), frozenset({b"a1"})
    held = [(a0, "s1", False), (a1, "s0", False), (a1, "s0", False), (a1, "s0", False)]
    held += [(a1, "s1", False), (a1, "s1", False), (a1, "s1", True)]
    for end, (authorities, source, behind) in enumerate(held):
        cap.add(
            end, stranger=False, source=source, network="n", authorities=authorities, behind=behind
        )
    newcomer = Opener(stranger=False, source="s0", network="n", authorities=a0, behind=True)
    assert cap.admits(**newcomer)
    assert cap.place(**newcomer).victim == 6
    for end in (4, 5, 6):  # a1 holds s0's own alone
        cap.discard(end)
        cap.add(end, stranger=False, source="l", network="l", authorities=frozenset({LOCAL}))
    assert not cap.place(**newcomer).admitted
    assert not cap.admits(**newcomer)
