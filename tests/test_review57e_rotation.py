"""Review 57e, rotation 1: a member stranded by its authority's rotation between the redemption
and the answer, with real processes over TCP on loopback.

The hub (hosting authority acme) is SIGKILLed once it committed agent's redemption (its answer
never sent: crash point `authority.enroll.after-commit`); its operator rotates the authority's
key and starts it again on the same port. Meanwhile a storm of enroll requests from agent's
node spends its budget at the hub (review 56g, budgets 1; agent's own, as a member's since
review 57e, storm 1, not its network's), so agent's enroll with the same ticket (what `troth
enroll` runs, in the storm's process right after it: a CLI started after the storm could find a
request refilled under load, review 66b2) is refused as rate limited; but its channel to the
hub showed the rotated history, and agent's node stored it (store-or-extend). From then on,
the hub restarted and its budgets whole again, the ticket's authority history (change 0) is
older than the stored copy (change 1): `troth enroll` with the same ticket, `troth credential
refresh` and the node's own resumption all refused it as ROLLBACK ("history is older than the
stored copy") before anything was sent, for good, so the member held nothing although the
authority had redeemed its ticket, and only a second ticket made it a member.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, enroll_answer_lost, resume_in_process
from tests.test_resilience_enrollment import Hub, driver, hub, prepare, troth  # noqa: F401
from troth.authority.client import enroll_request
from troth.authority.tickets import Ticket, new_code
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure, RemoteError
from troth.faults import CRASH_EXIT_CODE
from troth.limits import ENROLL_REQUEST_SECONDS, ENROLL_REQUESTS_BURST
from troth.node import open_node
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.routing import parse_route
from troth.storage import SqliteAuthorityStore

NOW = 1_800_000_000
RATE_LIMITED = AuthorityFailure.RATE_LIMITED.value  # "too many enroll and refresh requests..."
UNKNOWN = AuthorityFailure.TICKET_UNKNOWN.value  # a made-up code, once charged to the budget


async def _storm_then_enroll(route: str, history: bytes, ticket: str) -> AuthorityFailure:
    """Enroll requests at `route` from agent's node, with made-up codes, until its budget is
    spent (a member's own since review 57e, storm 1: a storm from other nodes of its network
    spends it no more), then agent's enroll with `ticket` at once, in the same process, as
    `troth enroll` runs it (`perform` "enroll", what `run_transient` runs): the hub's answer.

    The hub runs on the real clock and refills one request per ENROLL_REQUEST_SECONDS; a CLI
    started after the storm could take longer than that to start under load and find one
    request refilled (review 66b2). So the storm reads what the hub answered: it sends until
    the hub refuses one as rate limited, then until the hub takes one again (a refill just
    spent, the budget at its lowest), and the enroll follows with a whole refill period to
    arrive in."""
    from troth.node.control import perform  # the runtime's: as run_transient imports it

    with open_node("agent") as node:
        runtime = NodeRuntime(node)
        await runtime.start()
        try:
            bogus = Ticket(new_code(), history, route)
            authority = node.identities.check_history(history, now=runtime.clock.now())
            end = await runtime.channel_to(
                parse_route(route),
                also_trust=frozenset({authority.identifier}),
                expect=authority.identifier,
                claimed=True,
            )
            request = enroll_request(node.identities, "agent", bogus, now=runtime.clock.now())

            async def limited() -> bool:
                """One bogus request: True if the hub refused it as rate limited, False if it
                took it (its budget charged: refused as TICKET_UNKNOWN)."""
                try:
                    await call(
                        runtime.router, (end.enc, service_address("authority")), "enroll", request
                    )
                except RemoteError as exc:
                    if RATE_LIMITED in str(exc):
                        return True
                    if UNKNOWN in str(exc):
                        return False
                    raise
                raise AssertionError("a made-up ticket code was accepted")

            for _ in range(ENROLL_REQUESTS_BURST + 1):  # the burst, then one refused
                if await limited():
                    break
            else:
                raise AssertionError("the hub never answered rate limited")
            # then until the hub takes one (a refill, at most ENROLL_REQUEST_SECONDS away):
            # paced, not timed, it is the hub's answer that ends the wait
            for _ in range(40 * ENROLL_REQUEST_SECONDS):
                if not await limited():
                    break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError("the hub's enroll budget never refilled")
            arguments = {"ticket": ticket, "identity": "agent", "authority_pin": None}
            with pytest.raises(AuthorityError) as refused:
                await perform(runtime, "enroll", arguments, via="this process")
            return refused.value.reason
        finally:
            await runtime.stop()


def _rotated_and_seen(running: Hub, home: Path) -> str:
    """agent's redemption committed at the hub, the answer lost (the hub killed); the hub's
    authority rotated, the hub started again; a storm of enroll requests from agent's node,
    then agent's enroll with its ticket (as `troth enroll` runs it) refused as rate limited
    (its channel showed the rotated history: stored); the hub restarted (its budgets whole).
    The ticket."""
    setup = prepare(running.route)
    running.start(crash="authority.enroll.after-commit")
    failed = driver(setup.ticket, code=None)
    assert failed.returncode not in (0, CRASH_EXIT_CODE), failed.stderr  # no answer came
    running.wait_dead(home)
    assert setup.state() == (0, 1, 1)  # pending at agent, redeemed at the hub
    troth("identity", "rotate", "acme", "--node", "acme")
    running.start()
    with open_node("acme") as acme:
        history = acme.authority().history()
    limited = asyncio.run(_storm_then_enroll(running.route, history, setup.ticket))
    assert limited is AuthorityFailure.RATE_LIMITED, limited
    running.stop()
    running.start()
    with open_node("agent") as agent, open_node("acme") as acme:
        authority = acme.authority().identifier
        stored = agent.identities.stored_changes(authority)
        assert stored == 2, stored  # the rotation, seen by agent
    return setup.ticket


def _enrolled_once(member_ref: str = "agent") -> None:
    """agent holds a credential of acme's, nothing pending, one redemption at the hub."""
    with open_node("agent") as agent, open_node("acme") as acme:
        authority = acme.authority().identifier
        member = agent.identities.find(member_ref).identifier
        assert not agent.wallet.pending_enrollments(member_ref)
        held = agent.wallet.held(member_ref)
        assert [h.authority for h in held] == [authority.digest]
        assert SqliteAuthorityStore(acme.db).count_redemptions(member) == 1


def test_the_same_ticket_completes_an_enrollment_its_authority_rotated_after(
    hub: Hub,  # noqa: F811 - the fixture imported above
    troth_home: Path,
) -> None:
    ticket = _rotated_and_seen(hub, troth_home)
    done = troth("enroll", ticket, "--as", "agent", "--node", "agent", "--json", code=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["identity"] == "agent"
    _enrolled_once()


def test_a_resumption_completes_an_enrollment_its_authority_rotated_after(tmp_path: Path) -> None:
    """The same in one process, as the node's maintenance resumes it (`troth.enrollment.resume`,
    what `_resume_remote` runs): the rotated history stored first (an attempt whose channel
    opened and whose call failed), the pending record is sent again and completes."""
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, clock)
        clock.advance(5)
        authority.identities.rotate("acme", now=clock.now())
        agent.identities.import_history(authority.history(), now=clock.now())  # a channel's
        (pending,) = agent.wallet.pending_enrollments("agent")
        done = resume_in_process(agent, pending, authority, clock)
        assert done.credential.authority == authority.identifier
        assert not agent.wallet.pending_enrollments("agent")
        assert authority.store.count_redemptions(member.digest) == 1
