"""Review 55c, enroll 1: a repeat of an enrollment was answered with the credential recorded at
its redemption, whatever became of that credential since.

The authority answers a repeat of the same enrollment (same member, same ticket, within the
ticket's window) with the chain it recorded, so a member whose answer was lost (a crash on
either side) gets it (docs/storage.md, "Recovery rules"). A ticket's window may be far longer
than a credential's TTL (`--ttl 1d` for a team's ticket, an hour's credential), and within it
the recorded chain was answered even once no verifier would take it: expired (the holder
held it, and `troth enroll` reported a credential that had expired before it was answered),
or issued under a change of the authority's its rotation retired. Nothing a refresh by that
very member would not give it is needed: after the window the authority already answers the
repeat as a refresh (review 38c, enroll 1). A revoked one is still answered as it is (review
50g, refuted 4: a repeat never undoes a revocation; `tests/test_review50g_refuted.py`).

Was a strict xfail until the recorded chain was answered only while unexpired and under the
authority's current change (`Issuing._answers_again`), else a
credential as the member's refresh would give it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, acme_ticket, enroll_answer_lost, resume_in_process
from troth.authority import Authority
from troth.clock import FixedClock
from troth.credentials.wallet import authority_changes
from troth.enrollment import enroll
from troth.identity import Identifier

NOW = 1_800_000_000
DAY = 86_400


def _expired(authority: Authority, clock: FixedClock, member: Identifier) -> None:
    clock.advance(authority.config.credential_ttl + 100)  # the holder's node down for a while


def _rotated(authority: Authority, clock: FixedClock, member: Identifier) -> None:
    clock.advance(60)
    authority.identities.rotate(authority.config.name, now=clock.now())
    clock.advance(60)


@pytest.mark.parametrize("since", [_expired, _rotated])
def test_a_repeat_is_answered_with_a_credential_that_verifies(
    tmp_path: Path, since: Callable[[Authority, FixedClock, Identifier], None]
) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, _ticket):
        ticket = acme_ticket(authority, NOW, ttl=DAY)
        enroll_answer_lost(agent, "agent", authority, ticket, clock)
        since(authority, clock, member)
        (pending,) = agent.wallet.pending_enrollments("agent")
        enrolled = resume_in_process(agent, pending, authority, clock)
        assert enrolled.credential.expires_at > clock.now()
        (held,) = agent.wallet.held("agent")
        assert authority_changes(held) == authority.changes()


def test_a_repeat_never_undoes_a_revocation_once_expired(tmp_path: Path) -> None:
    """Review 50g, refuted 4 with the credential expired too: the revoked credential is
    answered again as it is, not a fresh one."""
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, _ticket):
        ticket = acme_ticket(authority, NOW, ttl=DAY)
        sent: list[bytes] = []

        def send(request: bytes) -> bytes:
            sent.append(request)
            return authority.enroll(request, now=clock.now()).encode()

        enrolled = enroll(agent.identities, agent.wallet, "agent", ticket, clock=clock, send=send)
        credential = enrolled.credential.links[-1].hash
        authority.revoke_credential(credential, now=NOW + 1)
        clock.advance(authority.config.credential_ttl + 100)
        # the same enrollment sent again (a new request, the ticket's window still open)
        again = enroll(agent.identities, agent.wallet, "agent", ticket, clock=clock, send=send)
        assert again.credential.links[-1].hash == credential
