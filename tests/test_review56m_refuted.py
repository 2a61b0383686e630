"""Review 56m: attacks on reviews 56g (per-source enroll and refresh budgets, `not a member`
final for a pending enrollment) and 56c (the public API's ended RunningNode and Channel, its
handlers) that did not work. Each is a real attempt that would fail if the defence broke."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest

import troth
from tests.support.enroll import acme_and_agent, acme_ticket, enroll_answer_lost
from tests.support.nodes import HUB, MemNet, ask_authority, run_memnet
from tests.support.public_api import acme_and_agents, greet
from tests.test_review56m_relayed import ACME, LIMITED, relayed_acme, spend
from tests.test_review56w_tags import relayed_by_a_relay_of_before
from troth import enrollment
from troth.authority.budgets import RequestBudgets
from troth.authority.client import refresh_request
from troth.authority.tickets import Ticket, new_code
from troth.channel import ChannelState
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure, RemoteError, TrothError
from troth.node.channel_sources import source_network_of as _source_network
from troth.routing import Router
from troth.transport.connection import host_tag
from troth.transport.tcp import TcpConnection, TcpTransport

NOW = 1_800_000_000

# -- 56g: the budgets' sources ---------------------------------------------------------------------


def test_a_flood_through_a_public_relay_leaves_relayed_newcomers_enrolling(tmp_path: Path) -> None:
    """Relayed strangers do not share the relay's address: mallory spends its budget through
    the hub's relay, and carol, another network behind the same relay, enrolls with acme."""

    async def test(net: MemNet) -> None:
        acme = await relayed_acme(net)
        await spend(await net.node("mallory", host="10.6.6.6"), acme)
        authority = acme.node.authority()
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=troth.Attributes({"team.name": "x"}),
            address=ACME,
            now=net.clock.now(),
        )
        carol = await net.node("carol", host="10.9.9.9")
        await carol.enroll(str(ticket), "carol")
        assert authority.member(net.identifier(carol)).identifier == net.identifier(carol)

    run_memnet(test, tmp_path / "home", budget=120)


def _accepted(transport: TcpTransport, host: str) -> TcpConnection:
    connection = TcpConnection(transport, outgoing=False, listener=None, peer="?")
    connection.set_peer(host, 40000)  # as connection_made does with the socket's peer name
    return connection


def test_an_ipv4_mapped_address_is_its_ipv4_network_directly_and_through_a_relay() -> None:
    """`::ffff:10.6.6.6` and `10.6.6.7` are one network (the /24), whether they reach the
    authority directly or through a relay; `10.6.7.6` is another."""

    async def test() -> None:
        node = TcpTransport(Router())
        direct = [
            _accepted(node, h).origin(()) for h in ("::ffff:10.6.6.6", "10.6.6.7", "10.6.7.6")
        ]
        mapped, plain, other = (_source_network(key) for key in direct)
        assert mapped == plain != other
        relay = TcpTransport(Router())
        to_relay = TcpConnection(node, outgoing=True, listener=None, peer="relay:4000")
        hops = [_accepted(relay, h).address for h in ("::ffff:10.6.6.6", "10.6.6.7", "10.6.7.6")]
        keys = [to_relay.origin((to_relay.address, hop)) for hop in hops]
        mapped, plain, other = (_source_network(key) for key in keys)
        assert mapped == plain != other
        assert len(set(keys)) == 3  # still three hosts for the per-source channel limits
        tags = [host_tag(hop) for hop in hops]  # of the form older nodes read (8 hex digits)
        assert all(tag is not None and len(tag) == 8 for tag in tags)

    asyncio.run(test())


def test_an_older_relays_tags_are_one_network_per_host() -> None:
    """A relay of before tagged the host alone: each host behind it is its own network (review
    56w, tags 1), however many of their tags' first digits are the same."""
    hosts = [f"10.6.6.{n}" for n in range(1, 256)]
    assert len({_source_network(key) for key in relayed_by_a_relay_of_before(hosts)}) == 255


def test_a_member_that_rotates_its_identity_keeps_its_spent_budget(tmp_path: Path) -> None:
    """m spends its refresh budget, rotates its key and refreshes again: the same account (the
    identifier does not change with the key), still refused."""

    async def test(net: MemNet) -> None:
        m = await net.member("m")
        authority = net.authority.identifier
        refused = ""
        for _ in range(troth.limits.ENROLL_REQUESTS_BURST + 1):
            request = refresh_request(m.node.identities, "m", authority, now=net.clock.now())
            try:
                await ask_authority(m, net, "refresh", request)
            except RemoteError as exc:
                refused = str(exc)
                break
        assert LIMITED in refused, "m refreshed without end"
        m.node.identities.rotate("m", now=net.clock.now())
        request = refresh_request(m.node.identities, "m", authority, now=net.clock.now())
        with pytest.raises(RemoteError, match=LIMITED):
            await ask_authority(m, net, "refresh", request)

    run_memnet(test, tmp_path / "home", budget=120)


# -- 56g: RATE_LIMITED and `not a member` at the holder --------------------------------------------


def test_a_rate_limited_enrollment_stays_pending(tmp_path: Path) -> None:
    """mallory spends its /24's budget at the hub; victim, of the same /24, enrolls: refused
    rate limited, and its pending record stays (nor would an older holder, which forgets on
    `ticket unknown` only, read the refusal as it)."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        await spend(await net.node("mallory", host="10.6.6.6"), net.hub, HUB)
        victim = await net.node("victim", host="10.6.6.7")
        with pytest.raises(AuthorityError) as refused:  # typed (review 64h, enroll 1)
            await victim.enroll(net.ticket(), "victim")
        assert refused.value.reason is AuthorityFailure.RATE_LIMITED
        assert len(victim.node.wallet.pending_enrollments("victim")) == 1

    run_memnet(test, tmp_path / "home", budget=120)


def test_a_late_not_a_member_forgets_only_its_own_tickets_enrollment(tmp_path: Path) -> None:
    """agent's enrollment (T1) lost its answer; acme removed it and gave it another ticket
    (T2), whose enrollment agent started while the resume of T1 was on its way. T1's answer,
    `not a member`, arrives last: it forgets T1's record only, and T2 completes."""
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, first):
        enroll_answer_lost(agent, "agent", authority, first, clock)
        (pending,) = agent.wallet.pending_enrollments("agent")
        resuming = enrollment.resumption(agent.identities, agent.wallet, pending, clock=clock)
        late = enrollment.request_of(resuming)
        authority.remove_member(member, now=clock.now())
        second = acme_ticket(authority, clock.now())
        steps = enrollment.enrollment(agent.identities, agent.wallet, "agent", second, clock=clock)
        request = enrollment.request_of(steps)
        with pytest.raises(AuthorityError) as refused:
            authority.enroll(late, now=clock.now())
        assert refused.value.reason is AuthorityFailure.NOT_A_MEMBER
        with pytest.raises(AuthorityError):
            enrollment.refused(resuming, refused.value)
        (kept,) = agent.wallet.pending_enrollments("agent")
        assert kept.ticket == str(second)
        enrollment.complete(steps, authority.enroll(request, now=clock.now()).encode())
        assert agent.wallet.pending_enrollments("agent") == []
        assert authority.member(member).identifier == member


def test_a_stranger_answering_not_a_member_forgets_nothing(tmp_path: Path) -> None:
    """mallory writes a ticket of the hub's authority that names its own address, to answer
    the enrollment itself: the channel is pinned to the ticket's authority, so mallory's node
    never gets the request, and the pending record stays."""

    async def test(net: MemNet) -> None:
        await net.node("mallory", listen=("mallory", 4000))
        ticket = Ticket(new_code(), net.authority.history(), "/tcp/mallory:4000")
        victim = await net.node("victim")
        with pytest.raises(TrothError) as refused:
            await victim.enroll(str(ticket), "victim")
        # the pinned channel refused mallory's node: no answer of the authority's to judge
        assert not isinstance(refused.value, AuthorityError | RemoteError)
        assert len(victim.node.wallet.pending_enrollments("victim")) == 1

    run_memnet(test, tmp_path / "home", budget=120)


# -- 56c: a channel two blocks share, nested serve blocks ------------------------------------------


def test_a_channel_shared_by_two_concurrent_blocks_outlives_the_first_to_end() -> None:
    """Two tasks of a running node connect to one route (one channel underneath), their blocks
    overlapping: the first block ends, the second still calls; when it ends too the channel
    is closed."""

    async def test(agents: troth.Node) -> None:
        with troth.Node.open("desk") as desk:
            async with (
                desk.serve(listen=("127.0.0.1", 0), services=[greet]) as live,
                agents.serve() as running,
            ):
                route, peer = live.address, live.identifier
                first_in, first_done, second_in = (asyncio.Event() for _ in range(3))
                channels: list[troth.Channel] = []

                async def first() -> None:
                    async with running.connect(route, expect=peer) as channel:
                        channels.append(channel)
                        first_in.set()
                        await second_in.wait()
                    first_done.set()

                async def second() -> object:
                    await first_in.wait()
                    async with running.connect(route, expect=peer) as channel:
                        channels.append(channel)
                        second_in.set()
                        await first_done.wait()
                        return await channel.call("greet", "hi")

                _, answer = await asyncio.gather(first(), second())
                assert answer == "hi"
                assert channels[0]._end is channels[1]._end  # one channel underneath
                assert channels[0]._end.channel.state is ChannelState.CLOSED

    with acme_and_agents() as scene:
        asyncio.run(test(scene.agents))


def test_a_serve_nested_in_another_nodes_serve_ends_only_its_own() -> None:
    """desk is served inside agents' serve block; desk's block ends: agents' RunningNode still
    connects (only desk's is ended), and desk's refuses."""

    async def test(agents: troth.Node) -> None:
        with troth.Node.open("desk") as desk:
            async with agents.serve() as outer:
                async with desk.serve(listen=("127.0.0.1", 0), services=[greet]) as inner:
                    route, peer = inner.address, inner.identifier
                    async with outer.connect(route, expect=peer) as channel:
                        assert await channel.call("greet", "hi") == "hi"
                assert outer.identifier == agents.identity.identifier
                with pytest.raises(troth.ConfigError):
                    inner.address  # noqa: B018  # the use refused
                async with desk.serve(listen=("127.0.0.1", 0), services=[greet]) as again:
                    route, peer = again.address, again.identifier
                    async with outer.connect(route, expect=peer) as channel:
                        assert await channel.call("greet", "hi") == "hi"

    with acme_and_agents() as scene:
        asyncio.run(test(scene.agents))


def test_a_partial_of_an_async_method_is_a_handler() -> None:
    class Desk:
        async def ask(self, request: troth.Request, suffix: str) -> str:
            return f"{request.arguments}{suffix}"

    service = troth.Service("desk")
    service.method("ask", allow=troth.AnyAuthenticated())(functools.partial(Desk().ask, suffix="!"))
    assert list(service.methods) == ["ask"]


# -- 56g: the eviction of budgets past MAX_ENROLL_REQUEST_SOURCES ----------------------------------


def _spent(budgets: RequestBudgets, source: object) -> None:
    for _ in range(troth.limits.ENROLL_REQUESTS_BURST):
        budgets.charge(source, member=False, now=NOW)


def test_a_spent_budget_is_not_reset_by_filling_the_table_short_of_its_bound() -> None:
    """mallory spends its budget, then fills the rest of the table with spent budgets of other
    sources: nothing is evicted yet, and mallory is still refused."""
    budgets = RequestBudgets()
    _spent(budgets, "mallory")
    for source in range(troth.limits.MAX_ENROLL_REQUEST_SOURCES - 1):
        _spent(budgets, source)
    with pytest.raises(AuthorityError) as refused:
        budgets.charge("mallory", member=False, now=NOW)
    assert refused.value.reason is AuthorityFailure.RATE_LIMITED


def test_refilled_budgets_are_forgotten_before_a_victims_partly_spent_one() -> None:
    """The victim, mid-burst, is among the oldest; the table full, the refilled budgets are
    forgotten for newcomers first: the victim keeps its count (one left), not a fresh burst."""
    budgets = RequestBudgets()
    for _ in range(troth.limits.ENROLL_REQUESTS_BURST - 1):
        budgets.charge("victim", member=False, now=NOW)
    for source in range(troth.limits.MAX_ENROLL_REQUEST_SOURCES - 1):
        budgets.charge(source, member=False, now=NOW)  # one each: refilled a few seconds on
    later = NOW + troth.limits.ENROLL_REQUEST_SECONDS
    budgets.charge("newcomer", member=False, now=later)  # the table full: refilled ones go
    budgets.charge("victim", member=False, now=later)  # its last one and the one refilled
    budgets.charge("victim", member=False, now=later)
    with pytest.raises(AuthorityError):
        budgets.charge("victim", member=False, now=later)
