"""Review 64h (adversarial review of enrollment and crash recovery).

Enroll 1: an authority's refusal of an enrollment over the network (a ticket used up by
another identity, expired, voided; an identity revoked for good) reached `troth enroll` as a
`RemoteError` whose text was the service's answer (`AuthorityError: ticket unknown, used up or
expired`), where the same refusal by an authority on this machine is an `AuthorityError` with
its reason: `--json` carried no `reason` and no `detail`, and the CLI's explanation of
TICKET_UNKNOWN ("ask the authority for a new ticket") was never given, so a script reading
`reason` (docs/cli.md: typed errors) told the two apart, and a person was told less over the
network. The node's enrollment now raises the authority's refusal as the AuthorityError it
was (`troth.authority.client.authority_refusal`), whichever way it came.

Enroll 2: an enrollment through the running node (a ticket of an authority on this machine
while the node runs, or any ticket over the network) whose feed sync failed after it
committed said nothing of it: the node's answer carried `feed: {synced: false, error}`, and
`troth enroll` printed "enrolled ..." with no warning, where the same enrollment done in
process warns that the feed was not synced (and that `troth credential refresh` retries). The
CLI now reads the answer's `feed` whichever way the enrollment went.

Enroll 3: an authority's own identity enrolled with one of its tickets (`troth enroll TICKET
--as acme --node acme`): the authority took the ticket's use, made itself a member with the
ticket's attributes, recorded the redemption and issued a credential from itself to itself,
which the holder refused (`delegation cycle`, exit 1) and left pending: the node sent it
again every round for a week (RESUME_FOR), each answered with that credential and refused
again, the ticket spent and the authority listing itself among its members. An authority is
no member of itself: the holder refuses such an enrollment before it records anything, the
authority refuses the request before any use is taken (REQUEST_INVALID), and a record of one
left by an earlier version is dropped as one that can never complete (`unusable`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.nodes import MemNet, run_memnet
from tests.test_resilience_enrollment import prepare
from troth.authority.client import enroll_request
from troth.cli import credential_cmds
from troth.cli.main import cli
from troth.clock import SystemClock
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import open_node
from troth.node.authorities import (
    FeedOutcome,
    LocalEnrollment,
    drop_unusable,
    enroll_locally,
    parse_ticket,
)


def test_a_ticket_used_up_over_the_network_is_refused_with_its_reason(tmp_path: Path) -> None:
    """A one-use ticket redeemed by `first`, then by `second` over the hub's channel: the
    refusal is TICKET_UNKNOWN, as the authority on this machine says it, and `second` is left
    nothing pending."""

    async def test(net: MemNet) -> None:
        first, second = await net.node("first"), await net.node("second")
        ticket = net.ticket()
        await first.enroll(ticket, "first")
        with pytest.raises(AuthorityError) as refused:
            await second.enroll(ticket, "second")
        assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert second.node.wallet.pending_enrollments("second") == []

    run_memnet(test, tmp_path)


def test_an_identity_revoked_for_good_is_refused_over_the_network_with_its_detail(
    tmp_path: Path,
) -> None:
    """A second local identity of a member node, revoked for good by the hub's authority,
    enrolls with a fresh ticket over the network: NOT_A_MEMBER with the authority's detail,
    nothing pending."""

    async def test(net: MemNet) -> None:
        agent = await net.member("agent")
        other = agent.node.identities.create(now=net.clock.now(), name="other").identifier
        await agent.enroll(net.ticket(), "other")
        net.authority.revoke_identity(other, now=net.clock.now())
        with pytest.raises(AuthorityError) as refused:
            await agent.enroll(net.ticket(), "other")
        assert refused.value.reason is AuthorityFailure.NOT_A_MEMBER
        assert "revoked for good" in refused.value.detail
        assert agent.node.wallet.pending_enrollments("other") == []

    run_memnet(test, tmp_path)


def test_an_enrollment_through_the_running_node_warns_of_its_feed_not_synced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The running node's answer to `enroll` (what `troth.node.membership.enroll` returns for
    a ticket of an authority on this machine): committed, its feed sync failed. `troth enroll`
    warns of it, as it does when it enrolls in process."""
    setup = prepare("node:acme")
    with open_node("agent") as node:
        done = enroll_locally(node, parse_ticket(setup.ticket), "agent", clock=SystemClock())
    answer = LocalEnrollment(done.enrolled, FeedOutcome(False, error="the node.db is busy"))
    asked: list[str] = []

    def running_node(node: str, op: str, arguments: dict[str, object]) -> object:
        asked.append(op)
        return answer.to_json()

    monkeypatch.setattr(credential_cmds, "node_running", lambda name: True)
    monkeypatch.setattr(credential_cmds, "ask_node", running_node)
    command = ["enroll", "-", "--as", "agent", "--node", "agent"]
    result = CliRunner().invoke(cli, command, input=setup.ticket)
    assert result.exit_code == 0, result.output
    assert asked == ["enroll"]
    assert "was not synced: the node.db is busy" in result.stderr
    as_json = CliRunner().invoke(cli, [*command, "--json"], input=setup.ticket)
    assert as_json.exit_code == 0, as_json.output
    assert "was not synced" in as_json.stdout  # in the result's warnings


def _acme_ticket() -> str:
    """Nodes `acme` (authority acme) and `agent` (identity `agent`), and a ticket of acme."""
    return prepare("node:acme").ticket


def test_an_authority_enrolling_itself_is_refused_before_anything_is_recorded() -> None:
    """`troth enroll TICKET --as acme --node acme`: REQUEST_INVALID, nothing pending, acme no
    member of itself, and the ticket's one use left for `agent`."""
    ticket = parse_ticket(_acme_ticket())
    with open_node("acme") as acme:
        with pytest.raises(AuthorityError) as refused:
            enroll_locally(acme, ticket, "acme", clock=SystemClock())
        assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
        assert acme.wallet.pending_enrollments("acme") == []
        assert acme.authority().members() == []
    with open_node("agent") as agent:
        assert enroll_locally(agent, ticket, "agent", clock=SystemClock()).enrolled
    with open_node("acme") as acme:
        assert len(acme.authority().members()) == 1


def test_an_authority_refuses_its_own_enroll_request_before_a_use_is_taken() -> None:
    """The signed enroll request of the authority's own identity, made by hand (past the
    holder's check): refused REQUEST_INVALID, no member, the use left."""
    ticket = parse_ticket(_acme_ticket())
    with open_node("acme") as acme:
        authority = acme.authority()
        now = SystemClock().now()
        request = enroll_request(acme.identities, "acme", ticket, now=now)
        with pytest.raises(AuthorityError) as refused:
            authority.enroll(request, now=now)
        assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
        assert authority.members() == []
    with open_node("agent") as agent:
        assert enroll_locally(agent, ticket, "agent", clock=SystemClock()).enrolled


def test_a_pending_enrollment_of_an_authority_with_itself_is_dropped() -> None:
    """A record an earlier version left (the authority's identity enrolling with itself):
    `troth credential refresh`, as a running node's round, drops it (it can never complete)."""
    ticket = parse_ticket(_acme_ticket())
    with open_node("acme") as acme:
        authority = acme.authority().identifier
        acme.wallet.record_enrollment(
            "acme", authority, str(ticket), ticket.address, now=SystemClock().now()
        )
        dropped = drop_unusable(acme, "acme")
        assert [why for _, why in dropped] == ["an authority is no member of itself"]
        assert acme.wallet.pending_enrollments("acme") == []
