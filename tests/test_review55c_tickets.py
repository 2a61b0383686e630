"""Review 55c, tickets: one-time enrollment tickets after their expiry, and once seen by someone
else (shoulder surfing, a log, a shell's history).

Tickets 1: an expired ticket came back to life when the authority's clock was set back. The
redemption is one conditional write, `expires_at > now`, against a row kept for good: a ticket
refused as expired at one enrollment was redeemed by the next once the clock read an earlier
time (a clock corrected back after running ahead, a host restored with its clock behind, NTP
spoofed). The secrets broker has kept a clock that never goes back since review 54e; the
authority kept nothing.

Tickets 2: a ticket once seen by someone else could not be voided. A ticket lives up to MAX_TTL
with up to MAX_TICKET_USES uses, and the authority had no way to void one before its expiry
short of removing its creator (its own tickets: none at all): whoever copied it from a shell's
history enrolls as a member until then.

Both were strict xfails until the authority deleted the tickets past their expiry at each
enrollment, each ticket made and each round of its running node (`forget_expired_tickets`), and
`Authority.void_ticket` (`troth authority ticket void`) deleted one before its expiry, counted by
the rollback guard, its redeemers' repeats still answered (the redemptions are kept apart).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import troth
from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from tests.support.enroll import acme_and_agent, enroll_in_process
from tests.support.nodes import MemNet, run_memnet
from troth.authority.core import DEFAULT_TICKET_TTL
from troth.authority.tickets import Ticket
from troth.cli.main import cli
from troth.clock import FixedClock
from troth.credentials import CredentialChain
from troth.enrollment import enroll
from troth.errors import AuthorityError, AuthorityFailure, RemoteError, StorageError
from troth.node import open_node
from troth.node.services.authority import AuthorityService

NOW = 1_800_000_000


def test_a_ticket_refused_as_expired_stays_expired_when_the_clock_is_set_back(
    tmp_path: Path,
) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        late = FixedClock(NOW + DEFAULT_TICKET_TTL + 60)
        with pytest.raises(AuthorityError) as caught:
            enroll_in_process(agent, "agent", authority, ticket, late)
        assert caught.value.reason is AuthorityFailure.TICKET_UNKNOWN
        back = FixedClock(NOW + 60)  # the clock set back: within the ticket's window again
        with pytest.raises(AuthorityError) as caught:
            enroll_in_process(agent, "agent", authority, ticket, back)
        assert caught.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert authority.members() == []


def test_a_running_authority_forgets_a_ticket_past_its_expiry(tmp_path: Path) -> None:
    """No one tried the ticket after its expiry; the node hosting the authority ran a round
    then (as it does every MAINTENANCE_SECONDS), and its clock was set back after."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        ticket = net.ticket()
        net.clock.advance(DEFAULT_TICKET_TTL + 60)
        await net.hub.maintain()
        net.clock.advance(-(DEFAULT_TICKET_TTL + 60))
        late = await net.node("late")
        with pytest.raises((AuthorityError, RemoteError), match="ticket unknown"):
            await late.enroll(ticket, "late")
        assert net.authority.members() == []

    run_memnet(test, tmp_path / "home")


def test_a_ticket_seen_by_someone_else_can_be_voided(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        assert authority.void_ticket(ticket, now=NOW + 1)
        with pytest.raises(AuthorityError) as caught:
            enroll_in_process(agent, "agent", authority, ticket, FixedClock(NOW + 2))
        assert caught.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert authority.members() == []


def test_a_ticket_voided_leaves_its_redeemers_answered(tmp_path: Path) -> None:
    """Voiding a ticket takes nothing from a member that redeemed it and lost the answer
    (nothing lost on a crash): its repeat is answered with the credential recorded."""
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        answers: list[CredentialChain] = []

        def lost(request: bytes) -> bytes:
            answers.append(authority.enroll(request, now=clock.now()))
            raise RemoteError("connection lost")

        with pytest.raises(RemoteError):
            enroll(agent.identities, agent.wallet, "agent", ticket, clock=clock, send=lost)
        assert authority.void_ticket(ticket, now=NOW + 1)
        enrolled = enroll_in_process(agent, "agent", authority, ticket, clock)
        assert enrolled.credential.links[-1].hash == answers[0].credentials[0].hash


def test_troth_authority_ticket_void(troth_home: Path) -> None:
    """The operator voids a ticket read from stdin (never on a command line); a second time
    there is nothing to void, and another authority's ticket is refused, naming the one given."""
    run("authority", "create", "acme")
    run("authority", "create", "globex")
    ticket = run("authority", "ticket", "create", "--authority", "acme").stdout.strip()
    other = run("authority", "ticket", "create", "--authority", "globex").stdout.strip()

    def void(text: str, code: int = 0) -> Result:
        args = ["authority", "ticket", "void", "-", "--authority", "acme", "--json"]
        result = CliRunner().invoke(cli, args, input=text, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    assert json.loads(void(ticket).stdout)["voided"] is True
    assert json.loads(void(ticket).stdout)["voided"] is False
    assert "was not made by acme" in void(other, code=2).output
    with open_node("acme") as node:
        assert node.authority().void_ticket(Ticket.parse(ticket), now=int(time.time())) is False


def test_a_voided_ticket_stays_void_in_a_restored_copy(troth_home: Path, tmp_path: Path) -> None:
    """A copy of node.db taken while the ticket was live, put back after it was voided: the
    voiding was counted, so the restored authority uses up every ticket it holds."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
    copy = tmp_path / "acme.db"
    copy_db(node_db(troth_home, "acme"), copy)
    with open_node("acme") as node:
        assert node.authority().void_ticket(Ticket.parse(ticket), now=int(time.time()))
    restore_db(node_db(troth_home, "acme"), copy)
    with troth.Node.open("b") as b, pytest.raises(AuthorityError, match="ticket unknown"):
        b.enroll(ticket)


def test_a_failed_sweep_holds_back_no_other_maintenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node.db busy at the round's sweep: logged, not raised (the runtime maintains its
    services one after the other, and one that raised skipped those after it that round)."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        service = net.hub.host.services["authority"]
        assert isinstance(service, AuthorityService)

        def busy(*, now: int) -> int:
            raise StorageError("database is locked")

        monkeypatch.setattr(service.authority, "forget_expired_tickets", busy)
        await service.maintain(net.clock.now())

    run_memnet(test, tmp_path / "home")
