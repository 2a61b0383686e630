"""Review 59d, refuted: attacks on enrollment and tickets that the defences held against (each
test fails if its defence breaks). Attacks tried here and already held by earlier tests are
named in the report, not repeated: a k-use ticket raced by threads and processes
(`tests/test_authority.py::test_ticket_race`, `tests/test_review55c_refuted.py`), a used ticket
after a restore of node.db (`tests/test_review50g_authority.py`), an expired ticket and the
clock set back (`tests/test_review55c_tickets.py`), a captured enroll request replayed and a
flood of made-up codes (`tests/test_review55c_refuted.py`, `tests/test_review56g_budgets.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.enroll import acme_and_agent, acme_ticket, enroll_in_process
from tests.support.nodes import HUB, MemNet, globex_over_tcp, route, run_memnet
from troth.authority.client import refresh_request, rotated_request
from troth.authority.requests import make_request
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.credentials import Attributes, RevocationKind
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    ChannelError,
    ChannelFailure,
    Denied,
    RemoteError,
)
from troth.node.services import call, service_address
from troth.node.services.authority import AuthorityService

NOW = 1_800_000_000


def test_an_enroll_request_of_another_shape_takes_no_use(tmp_path: Path) -> None:
    """A redeemer's request with the code nested 40 deep, two codes, a 100 KB code or none:
    each refused (before any use is taken), and the ticket's one use still enrolls."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        signer = agent.identities.signer("agent", now=NOW)
        deep: Any = ticket.code
        for _ in range(40):
            deep = [deep]
        shapes: list[list[Any]] = [[deep], [ticket.code, ticket.code], [b"x" * 100_000], []]
        for arguments in shapes:
            request = make_request(signer, "enroll", authority.identifier, arguments, now=NOW)
            with pytest.raises(AuthorityError) as caught:
                authority.enroll(request, now=NOW)
            assert caught.value.reason in (
                AuthorityFailure.REQUEST_INVALID,
                AuthorityFailure.TICKET_UNKNOWN,
            )
        assert authority.members() == []
        enroll_in_process(agent, "agent", authority, ticket, FixedClock(NOW + 1))
        assert len(authority.members()) == 1


def test_a_removed_member_re_enrolling_gets_only_its_new_tickets_grant(tmp_path: Path) -> None:
    """A member made an admin is removed, then redeems a plain ticket: it is a member with that
    ticket's attributes alone (no role kept), and its repeat of the admin ticket, within its
    window, is answered with the credential its removal revoked: nothing regained."""
    clock = FixedClock(NOW + 1)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, _ticket):
        admin_ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": "ops"}),
            address="node:acme",
            now=NOW,
            role="admin",
        )
        first = enroll_in_process(agent, "agent", authority, admin_ticket, clock)
        revoked = authority.remove_member(member, now=NOW + 2)
        assert first.credential.links[-1].hash in revoked
        enroll_in_process(agent, "agent", authority, acme_ticket(authority, NOW + 3), clock)
        assert authority.member(member).attributes == Attributes({"team.name": "x"})
        assert authority.roles_of(member) == frozenset()
        again = enroll_in_process(agent, "agent", authority, admin_ticket, FixedClock(NOW + 4))
        credential = again.credential.links[-1].hash
        assert credential == first.credential.links[-1].hash
        kind = int(RevocationKind.CREDENTIAL)
        assert authority.store.find_revocation(kind, credential) is not None


def test_the_enroll_opening_reaches_no_other_method(tmp_path: Path) -> None:
    """A stranger is admitted to a channel with the hub because anyone may enroll there: over it,
    every other service's method is refused by the decision point, and the authority's
    refresh and rotated refuse it as no member."""

    async def test(net: MemNet) -> None:
        mallory = await net.node("mallory")
        authority = net.authority.identifier
        end = await mallory.channel_to(
            route(HUB), also_trust=frozenset({authority}), expect=authority, claimed=True
        )

        async def ask(service: str, method: str, argument: Any) -> Exception:
            with pytest.raises((Denied, RemoteError)) as refused:
                await call(mallory.router, (end.enc, service_address(service)), method, argument)
            return refused.value

        for service, method, argument in (
            ("echo", "echo", b"hi"),
            ("policy", "get", ["x"]),
            ("trace", "head", []),
            ("relay", "create", "mallory"),
        ):
            refusal = await ask(service, method, argument)
            assert isinstance(refusal, Denied), (service, method, refusal)
        # no method makes tickets for a peer (a member, a delegate, a stranger)
        assert "has no method" in str(await ask("authority", "ticket", []))
        now = net.clock.now()
        ids = mallory.node.identities
        for method, request in (
            ("refresh", refresh_request(ids, "mallory", authority, now=now)),
            ("rotated", rotated_request(ids, "mallory", authority, now=now)),
        ):
            refusal = await ask("authority", method, request)
            assert AuthorityFailure.NOT_A_MEMBER.value in str(refusal), (method, refusal)
        assert net.authority.members() == []

    run_memnet(test, tmp_path / "home")


def test_a_ticket_pointing_at_an_impostor_never_hands_it_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's ticket with its address edited to globex's node (another authority, hostile,
    that the newcomer already trusts: a member of it, so channel admission alone would let it
    in): the enrolling channel is pinned to the hub's authority, so globex's answer is refused
    at the handshake and no enroll request (the code) reaches it; the same code at the hub's
    address then enrolls."""

    async def test(net: MemNet) -> None:
        globex_node, _globex, globex_ticket = await globex_over_tcp(net)
        newcomer = await net.node("newcomer")
        await newcomer.enroll(globex_ticket, "newcomer")  # globex: one of its anchors
        served = globex_node.host.services["authority"]
        assert isinstance(served, AuthorityService)
        reached: list[bytes] = []

        def enroll(request: bytes, *, now: int) -> None:
            reached.append(request)

        monkeypatch.setattr(served.authority, "enroll", enroll)
        genuine = Ticket.parse(net.ticket())
        edited = Ticket(genuine.code, genuine.authority_history, "/tcp/globex:4000")
        with pytest.raises(ChannelError) as refused:
            await newcomer.enroll(str(edited), "newcomer")
        assert refused.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        assert reached == []
        await newcomer.enroll(str(genuine), "newcomer")
        assert net.authority.member(net.identifier(newcomer))

    run_memnet(test, tmp_path / "home")


def test_a_node_revoked_for_good_enrolls_no_one_over_the_network(tmp_path: Path) -> None:
    """m, revoked for good, comes back with a new ticket, for itself and for a fresh local
    identity: both refused (its channel shows m), no use of the ticket taken, which a newcomer
    then redeems."""

    async def test(net: MemNet) -> None:
        m = await net.member("m")
        net.authority.revoke_identity(net.identifier(m), now=net.clock.now())
        assert net.hub is not None
        net.hub.trust.refresh_hosted(net.clock.now())
        m.node.identities.create(now=net.clock.now(), name="fresh")
        ticket = net.ticket()
        for identity in ("m", "fresh"):
            with pytest.raises(Denied, match="revoked"):
                await m.enroll(ticket, identity)
        newcomer = await net.node("newcomer")
        await newcomer.enroll(ticket, "newcomer")
        assert len(net.authority.members()) == 1

    run_memnet(test, tmp_path / "home")
