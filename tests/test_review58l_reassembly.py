"""Review 58l, reassembly 1 (review 58i's channels 2,
tests/test_review58i_channels.py::test_a_delegate_of_two_members_draws_on_both_reassembly_budgets):
the per-member reassembly limit (`max_reassembly_per_peer`) was the limit of one budget per
exact set of members at the roots of a peer's chains (`member_accounts`), so a delegate showing
chains from alice and bob drew on a budget of its own, neither member's: k colluding members
held 2^k - 1 budgets, not k. Each budget's bytes now count against every member of its set
(`troth.node.member_reassembly.MemberBytes`), and a budget takes bytes only while each of them
stays within the limit; the node's bytes are still taken once, by the budget, against the
peer's authorities (`PeerReassembly`). Here: the accounting stays exact (a single member as
before, a channel closing gives every member back what it took, a change of authorities moves
the node's bytes once and never a member's)."""

from __future__ import annotations

from tests.test_channel_manager import Net, run, send_fragments, until
from tests.test_review43a_channels import open_as
from tests.test_review53o_refuted import AdmitAnyone
from tests.test_review58i_channels import delegate_of
from troth.node.channel_limits import PeerReassembly
from troth.node.channels import ChannelLimits
from troth.node.member_reassembly import MemberBytes
from troth.node.shares import STRANGERS, Shares

ALICE, BOB, AUTHORITY = b"alice", b"bob", b"authority"
LIMIT = 1000


def budget(node: Shares, tally: MemberBytes, *members: bytes) -> PeerReassembly:
    """The budget of the peers whose chains root in `members` (one authority's), as the channel
    manager makes one (total 10,000 bytes)."""
    return PeerReassembly(
        LIMIT, node, 10_000, frozenset({AUTHORITY}), members=frozenset(members), tally=tally
    )


def test_a_single_members_budget_is_as_before() -> None:
    """Alone, a member's budget takes up to its limit and no more, the node's bytes with it."""
    node, tally = Shares(lambda: 1), MemberBytes()
    alice = budget(node, tally, ALICE)
    assert [alice.take(size) for size in (0, 600, 400, 1)] == [True, True, True, False]
    assert (alice.held, tally.held(ALICE), node.places, node.held(AUTHORITY)) == (1000,) * 4
    alice.give(1000)
    assert (alice.held, len(tally), node.places, node.holders()) == (0, 0, 0, 0)


def test_a_budget_of_two_members_takes_within_both_and_the_node_once() -> None:
    """Alice's own budget holds 700; the budget of {alice, bob} takes only the 300 left of
    alice's limit, though bob holds nothing; the node holds each byte once; bob's own budget
    then finds 700 of his limit; each member's count is back exactly as a budget gives back."""
    node, tally = Shares(lambda: 1), MemberBytes()
    alice, both = budget(node, tally, ALICE), budget(node, tally, ALICE, BOB)
    assert alice.take(700)
    assert [both.take(size) for size in (301, 300)] == [False, True]
    assert (tally.held(ALICE), tally.held(BOB), node.places) == (1000, 300, 1000)
    bob = budget(node, tally, BOB)
    assert [bob.take(size) for size in (701, 700)] == [False, True]
    both.give(300)  # its channel closed
    assert (tally.held(ALICE), tally.held(BOB), node.places) == (700, 700, 1400)
    alice.give(700)
    bob.give(700)
    assert (len(tally), node.places, node.holders()) == (0, 0, 0)


def test_a_change_of_authorities_moves_the_nodes_bytes_once_and_no_members() -> None:
    """A budget of {alice, bob} holding 500 shows no chain for a while (its bytes count as the
    strangers'), then its authority's again: the node holds 500 throughout, under one of them,
    and each member 500; given back, nothing is left anywhere."""
    node, tally = Shares(lambda: 1), MemberBytes()
    both = budget(node, tally, ALICE, BOB)
    assert both.take(500)
    both.count_against(frozenset({STRANGERS}))
    seen = (node.places, node.held(STRANGERS), node.held(AUTHORITY))
    assert (*seen, tally.held(ALICE), tally.held(BOB)) == (500, 500, 0, 500, 500)
    both.count_against(frozenset({AUTHORITY}))
    assert (node.places, node.held(STRANGERS), node.held(AUTHORITY)) == (500, 0, 500)
    both.give(500)
    assert (len(tally), node.places, node.holders()) == (0, 0, 0)


def test_channels_closing_give_every_member_back_exactly() -> None:
    """At a hub, alice's delegate and a delegate holding chains from alice and bob each leave a
    fragment incomplete: alice counts both, bob the second's alone, the node each once; the
    second shows no chain for a while (its bytes move to the strangers' share, its members'
    counts stay); as each channel closes its members get back exactly what it held, and at
    the end the hub holds nothing."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(max_reassembly_per_peer=400_000, max_reassembly_total=2_000_000)
        hub = await net.hub(limits=limits)
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())  # a peer may show no chain
        tally, pool = hub.manager._member_bytes, hub.manager._reassembly
        alice, bob = (m.party.identifier.digest for m in (net.world.alice, net.world.bob))
        mallory = net.peer("10.58.12.1")
        first = await open_as(mallory, delegate_of(net, net.world.alice))
        second = await open_as(mallory, delegate_of(net, net.world.alice, net.world.bob))
        await send_fragments(mallory, first, 300_000, 1)
        await send_fragments(mallory, second, 300_000, 2)

        def held() -> dict[bool, int]:  # by the hub's end: the first's, the second's (2 chains)
            ends = hub.manager.ends.values()
            return {len(e.peer.credentials) == 2: e.channel.reassembling for e in ends if e.peer}

        await until(lambda: sum(held().values()) >= 3 * 65_000)
        mine, theirs = held()[False], held()[True]
        counts = (mine + theirs, theirs, mine + theirs)  # alice's, bob's, the node's
        assert (tally.held(alice), tally.held(bob), pool.places) == counts
        await second.present(())  # a stranger now: the node's bytes move, the members' stay
        await until(lambda: pool.held(STRANGERS) == theirs)
        assert (tally.held(alice), tally.held(bob), pool.places) == counts
        await second.close()
        await until(lambda: tally.held(bob) == 0)
        assert (tally.held(alice), pool.places, pool.held(STRANGERS)) == (mine, mine, 0)
        await first.close()
        await until(lambda: not hub.manager.ends)
        assert (len(tally), pool.places, pool.holders()) == (0, 0, 0)

    run(test)
