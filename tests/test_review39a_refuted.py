"""Review 39a: attacks on review 38c's crash-consistency fixes that found nothing, pinned.

- enroll 1 (`Authority.enroll` answers the redeemer's repeat after the ticket's window as its
  refresh would be): the old ticket brings back none of its attributes to a member removed
  and re-added by another ticket; repeats at the member's bound of live credentials issue
  nothing more; a repeat signed with the key of a history the authority has seen rotated is
  refused as that member's refresh is.
- enroll 2 (a node resumes its interrupted enrollments): the channel admits only the
  authority the record names, so an address where another identity answers gets nothing
  and is trusted for nothing; the node's resumption racing the operator's `troth enroll` with
  the same ticket ends with one credential and nothing pending; an answer that is no chain
  (garbage, or an error other than `ticket unknown`) holds and trusts nothing and keeps the
  record. `also_trust` admits the named authority to the channel's handshake only (the
  `ChannelAdmission`), never to the node's services.
- vault 1: a `vault.key` cut to nothing is reported, never replaced.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from troth import limits
from troth.authority import Authority, Ticket
from troth.authority.client import enroll_request, refresh_request, rotated_request
from troth.authority.core import DEFAULT_TICKET_TTL
from troth.credentials import Attributes, CredentialBody
from troth.enrollment import enrollment, request_of
from troth.errors import AuthorityError, ConfigError, RemoteError
from troth.identity import Identifier
from troth.node import Node, init_node, membership, open_node
from troth.node.membership import RESUME_AFTER
from troth.node.node import node_dir

NOW = 1_800_000_000


def _ticket(authority: Authority, attributes: dict[str, str], address: str, now: int) -> str:
    return str(
        authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes(attributes),
            address=address,
            now=now,
        )
    )


def _nodes(tmp_path: Path) -> tuple[Node, Node, Authority]:
    init_node("acme", home=tmp_path)
    init_node("agents", home=tmp_path)
    acme, agents = open_node("acme", home=tmp_path), open_node("agents", home=tmp_path)
    agents.identities.create(now=NOW, name="alice")
    return acme, agents, acme.create_authority("acme", now=NOW)


def test_a_late_repeat_brings_back_none_of_the_old_tickets_attributes(tmp_path: Path) -> None:
    """alice redeemed T1 (team.a), was removed, and re-added by T2 (team.b). Her repeat of T1
    after its window is answered as her refresh: team.b only, not T1's attributes again."""
    acme, agents, authority = _nodes(tmp_path)
    with acme, agents:
        first = _ticket(authority, {"team.a": "1"}, "node:acme", NOW)
        request = enroll_request(agents.identities, "alice", parse(first), now=NOW)
        authority.enroll(request, now=NOW)
        alice = Identifier(agents.identities.find("alice").identifier)
        authority.remove_member(alice, now=NOW + 1)
        second = _ticket(authority, {"team.b": "2"}, "node:acme", NOW + 2)
        authority.enroll(
            enroll_request(agents.identities, "alice", parse(second), now=NOW + 2), now=NOW + 2
        )
        late = NOW + DEFAULT_TICKET_TTL + 60
        again = authority.enroll(
            enroll_request(agents.identities, "alice", parse(first), now=late), now=late
        )
        body = CredentialBody.decode(again.credentials[0].body)
        assert body.attributes == Attributes({"team.b": "2"})
        refreshed = authority.refresh(
            refresh_request(agents.identities, "alice", authority.identifier, now=late), now=late
        )
        assert CredentialBody.decode(refreshed.credentials[0].body).attributes == body.attributes


def test_late_repeats_issue_no_more_than_the_members_bound(tmp_path: Path) -> None:
    """Each repeat after the window is a refresh, bounded as one (`_issue_bounded`): past the
    bound the newest live credential is answered again; nothing more is issued."""
    acme, agents, authority = _nodes(tmp_path)
    with acme, agents:
        ticket = parse(_ticket(authority, {"team.a": "1"}, "node:acme", NOW))
        authority.enroll(enroll_request(agents.identities, "alice", ticket, now=NOW), now=NOW)
        late = NOW + DEFAULT_TICKET_TTL + 60
        issued = set()
        for i in range(limits.MAX_LIVE_CREDENTIALS_PER_MEMBER + 4):
            request = enroll_request(agents.identities, "alice", ticket, now=late + i)
            issued.add(authority.enroll(request, now=late + i).credentials[0].hash)
        assert len(issued) <= limits.MAX_LIVE_CREDENTIALS_PER_MEMBER


def test_a_late_repeat_with_a_key_rotated_away_is_refused_as_a_refresh_is(
    tmp_path: Path,
) -> None:
    """A copy of the node taken before alice rotated (her old key, the ticket in its pending
    record) signs a repeat after the window, once the authority knows her rotation: refused,
    with the reason her refresh signed by that copy is refused."""
    acme, agents, authority = _nodes(tmp_path)
    with acme:
        ticket = parse(_ticket(authority, {"team.a": "1"}, "node:acme", NOW))
        with agents:
            authority.enroll(enroll_request(agents.identities, "alice", ticket, now=NOW), now=NOW)
        shutil.copytree(node_dir(tmp_path, "agents"), node_dir(tmp_path, "stolen"))
        with open_node("agents", home=tmp_path) as agents:
            agents.identities.rotate("alice", now=NOW + 10)
            announce = rotated_request(
                agents.identities, "alice", authority.identifier, now=NOW + 11
            )
            authority.rotated(announce, now=NOW + 11)
        late = NOW + DEFAULT_TICKET_TTL + 60
        with open_node("stolen", home=tmp_path) as stolen:
            repeat = enroll_request(stolen.identities, "alice", ticket, now=late)
            refresh = refresh_request(stolen.identities, "alice", authority.identifier, now=late)
        with pytest.raises(AuthorityError) as by_repeat:
            authority.enroll(repeat, now=late)
        with pytest.raises(AuthorityError) as by_refresh:
            authority.refresh(refresh, now=late)
        assert by_repeat.value.reason is by_refresh.value.reason
        assert str(by_repeat.value) == str(by_refresh.value)


def parse(text: str) -> Ticket:
    return Ticket.parse(text)


def test_a_resume_to_an_address_where_another_answers_gets_and_trusts_nothing(
    tmp_path: Path,
) -> None:
    """A ticket names the hub's authority at another node's address: the resumed enrollment's
    channel admits only that authority (as `troth enroll` did), so nothing is sent to the
    other node, nothing held, nothing trusted; the record stays (backed off)."""

    async def test(net: MemNet) -> None:
        await net.node("other", listen=("other", 4000))
        agent = await net.node("agent")
        node = agent.node
        ticket = _ticket(net.authority, {"agents.team": "x"}, "/tcp/other:4000", net.clock.now())
        steps = enrollment(node.identities, node.wallet, "agent", ticket, clock=net.clock)
        request_of(steps)
        steps.close()
        net.clock.advance(RESUME_AFTER)
        assert await agent.resume_enrollments() == 0
        assert node.wallet.held("agent") == []
        assert net.authority.identifier not in node.wallet.trusted()
        assert len(node.wallet.pending_enrollments("agent")) == 1

    run_memnet(test, tmp_path)


def test_a_resume_racing_the_operators_enroll_ends_with_one_credential(tmp_path: Path) -> None:
    """The node's maintenance resumes a record while the operator runs `troth enroll` with the
    same ticket through the node: the authority answers both with the one credential it
    recorded; one credential is held and nothing is left pending."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        node = agent.node
        ticket = net.ticket()
        steps = enrollment(node.identities, node.wallet, "agent", ticket, clock=net.clock)
        net.authority.enroll(request_of(steps), now=net.clock.now())  # answer lost
        steps.close()
        net.clock.advance(RESUME_AFTER)
        await asyncio.gather(agent.resume_enrollments(), agent.enroll(ticket, "agent"))
        (held,) = node.wallet.held("agent")
        assert held.authority == net.authority.identifier.digest
        assert node.wallet.pending_enrollments("agent") == []

    run_memnet(test, tmp_path)


def test_a_vault_key_cut_to_nothing_is_reported_not_replaced(tmp_path: Path) -> None:
    init_node("agent", home=tmp_path)
    with open_node("agent", home=tmp_path) as node:
        node.identities.create(now=NOW, name="agent")
    key_file = node_dir(tmp_path, "agent") / "vault.key"
    key_file.write_bytes(b"")
    with pytest.raises(ConfigError, match="must hold exactly 32 bytes"):
        open_node("agent", home=tmp_path)
    assert key_file.read_bytes() == b""


@pytest.mark.parametrize(
    "answer", [b"not a chain", "not bytes", RemoteError("busy")], ids=["garbage", "text", "error"]
)
def test_a_garbage_answer_to_a_resume_holds_nothing_and_keeps_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: object
) -> None:
    """The authority's node (or whoever holds its key) answers a resumed enrollment with
    bytes that are no chain, a value that is no bytes, or an error other than `ticket
    unknown`: nothing is held or trusted, the record stays (and is backed off)."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        node = agent.node
        steps = enrollment(node.identities, node.wallet, "agent", net.ticket(), clock=net.clock)
        request_of(steps)
        steps.close()

        async def hostile(*_args: object, **_kwargs: object) -> object:
            if isinstance(answer, Exception):
                raise answer
            return answer

        monkeypatch.setattr(membership, "call", hostile)
        net.clock.advance(RESUME_AFTER)
        assert await agent.resume_enrollments() == 0
        assert node.wallet.held("agent") == []
        assert net.authority.identifier not in node.wallet.trusted()
        assert len(node.wallet.pending_enrollments("agent")) == 1

    run_memnet(test, tmp_path)
