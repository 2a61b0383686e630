"""Review 64h, refuted: attacks on enrollment and its crash recovery that the defences held
against (each test would fail if the defence it names broke).

- One identity enrolling twice at once with the same ticket, from two connections to its node
  (two `troth enroll` processes): the authority's conditional write and its redemption record
  take one use and issue one credential, both answered with it (`Authority.enroll`).
- `troth enroll` killed with SIGKILL while its request waits for the authority (the pending
  record committed, nothing answered): never stranded, the next `troth enroll` with the ticket
  resumes it and the member holds the one credential its one redemption issued.
- Bogus redemptions: many strangers (each a fresh identity, as costs nothing) sending signed
  enroll requests with made-up codes, then with the code of another authority's ticket: each
  refused `ticket unknown`, and the authority's store does not grow (no member, no redemption,
  no stranger's history kept: `_learn` only once a ticket is redeemed), the real ticket's use
  left.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.test_resilience_enrollment import Hub, hub, now, prepare, troth  # noqa: F401
from troth.authority.client import enroll_request
from troth.authority.tickets import Ticket, new_code
from troth.clock import SystemClock
from troth.credentials import Attributes
from troth.errors import AuthorityError, AuthorityFailure
from troth.faults import CRASH_ENV
from troth.node import init_node, open_node
from troth.node.authorities import enroll_locally
from troth.storage import SqliteAuthorityStore


def test_one_identity_enrolling_twice_at_once_takes_one_use() -> None:
    """A two-use ticket, the same identity enrolling with it from two connections at once:
    one redemption, one credential (both answered with it), and the second use left for
    another identity."""
    init_node("acme")
    init_node("agent")
    with open_node("acme") as acme, open_node("agent") as agent:
        authority = acme.create_authority("acme", now=now())
        member = agent.identities.create(now=now(), name="agent").identifier
        agent.identities.create(now=now(), name="other")
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": "x"}),
            address="node:acme",
            now=now(),
            uses=2,
        )
    answers: list[bytes | Exception] = []
    start = threading.Barrier(2)

    def enroll() -> None:
        with open_node("agent") as node:
            start.wait()
            try:
                done = enroll_locally(node, ticket, "agent", clock=SystemClock())
                answers.append(done.enrolled.credential.links[-1].hash)
            except Exception as exc:
                answers.append(exc)

    threads = [threading.Thread(target=enroll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 2, answers
    assert answers[0] == answers[1], answers
    with open_node("agent") as holder, open_node("acme") as acme:
        assert [h.id for h in holder.wallet.held("agent")] == [answers[0]]
        store = SqliteAuthorityStore(acme.db)
        assert store.count_redemptions(member.digest) == 1
        assert store.unexpired_issued(member.digest, now()) == [answers[0]]
        other = enroll_locally(holder, ticket, "other", clock=SystemClock())
    assert other.enrolled.identity == "other"  # the second use was left


def test_an_enroll_killed_while_it_waits_for_the_authority_is_resumed(hub: Hub) -> None:  # noqa: F811
    """`troth enroll` over TCP to an address that accepts and never answers, SIGKILLed once
    its pending record is committed; the authority then listens there: the next `troth
    enroll` resumes the enrollment, one redemption, one credential, nothing pending."""
    setup = prepare(hub.route)
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", hub.port))
        hole.listen()
        command = [sys.executable, "-m", "troth.cli.main", "enroll", "-", "--as", "agent"]
        enrolling = subprocess.Popen(
            [*command, "--node", "agent"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            assert enrolling.stdin is not None
            enrolling.stdin.write(setup.ticket.encode())
            enrolling.stdin.close()
            deadline = time.monotonic() + 30
            while setup.state() != (0, 1, 0):
                assert enrolling.poll() is None, "the enrollment ended before it was killed"
                assert time.monotonic() < deadline, "no pending record"
                time.sleep(0.05)
        finally:
            enrolling.kill()
            enrolling.wait()
    assert setup.state() == (0, 1, 0)
    hub.start()
    again = json.loads(
        troth("enroll", setup.ticket, "--as", "agent", "--node", "agent", "--json").stdout
    )
    assert again["resumed_from"] is not None
    setup.check_enrolled_once()


def test_bogus_redemptions_are_refused_and_leave_the_store_as_it_was() -> None:
    """64 strangers' enroll requests, made-up codes and another authority's ticket's code:
    TICKET_UNKNOWN each, no member, no redemption, no stranger's history stored at acme."""
    init_node("acme")
    init_node("agent")
    init_node("other")
    with open_node("acme") as acme, open_node("agent") as agent, open_node("other") as other:
        authority = acme.create_authority("acme", now=now())
        elsewhere = other.create_authority("other", now=now())
        real = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": "x"}),
            address="node:acme",
            now=now(),
        )
        foreign = elsewhere.create_ticket(
            creator=elsewhere.identifier,
            attributes=Attributes({"team.name": "x"}),
            address="node:acme",  # its code sent to acme
            now=now(),
        )
        strangers = agent.identities.create_many(64, now=now(), name_prefix="s")
        for i, stranger in enumerate(strangers):
            code = foreign.code if i % 2 else new_code()
            ticket = Ticket(code, real.authority_history, real.address)
            request = enroll_request(agent.identities, stranger.name or "", ticket, now=now())
            with pytest.raises(AuthorityError) as refused:
                authority.enroll(request, now=now())
            assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN
        store = SqliteAuthorityStore(acme.db)
        assert authority.members() == []
        for stranger in strangers:
            digest = stranger.identity.identifier
            assert store.count_redemptions(digest.digest) == 0
            assert acme.identities.stored_changes(digest) is None
    with open_node("agent") as node:
        node.identities.create(now=now(), name="agent")
        assert enroll_locally(node, real, "agent", clock=SystemClock()).enrolled
