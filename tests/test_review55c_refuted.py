"""Review 55c, refuted (guards, they pass): attacks on enrollment, tickets and authority requests
that did not work. Each would fail if its defence broke.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backups import node_db
from tests.support.enroll import acme_ticket, enroll_in_process
from troth.authority import Authority
from troth.authority.client import enroll_request, refresh_request
from troth.authority.tickets import Ticket, new_code
from troth.clock import FixedClock
from troth.credentials import CredentialChain
from troth.credentials.wallet import authority_changes
from troth.enrollment import enroll
from troth.errors import AuthorityError, AuthorityFailure, DecodeError
from troth.limits import MAX_CLOCK_SKEW_SECONDS, MAX_LIVE_CREDENTIALS_PER_MEMBER
from troth.node import Node, init_node, open_node

NOW = 1_800_000_000
A = AuthorityFailure


@pytest.fixture
def two_openings(troth_home: Path) -> Iterator[tuple[Authority, Authority, Node]]:
    """acme's node.db opened twice (two processes sharing it: each its own connections and
    caches), and a members' node `agents`."""
    init_node("acme")
    init_node("agents")
    with open_node("acme") as first, open_node("agents") as agents:
        first.create_authority("acme", now=NOW)
        with open_node("acme") as second:
            yield first.authority(), second.authority(), agents


def _race(openings: list[Authority], requests: list[bytes]) -> list[CredentialChain | A]:
    """Each request redeemed on its own thread through its opening, all at once."""
    barrier = threading.Barrier(len(requests))
    outcomes: list[CredentialChain | A] = [A.REQUEST_INVALID] * len(requests)

    def redeem(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = openings[index].enroll(requests[index], now=NOW)
        except AuthorityError as exc:
            outcomes[index] = exc.reason

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_processes_sharing_node_db_redeem_a_one_use_ticket_once(
    two_openings: tuple[Authority, Authority, Node],
) -> None:
    first, second, agents = two_openings
    ticket = acme_ticket(first, NOW)
    requests = []
    for name in ("alice", "bob"):
        agents.identities.create(now=NOW, name=name)
        requests.append(enroll_request(agents.identities, name, ticket, now=NOW))
    outcomes = _race([first, second], requests)
    assert sorted(isinstance(o, CredentialChain) for o in outcomes) == [False, True]
    assert A.TICKET_UNKNOWN in outcomes
    assert len(first.members()) == len(second.members()) == 1


def test_a_member_racing_itself_on_two_processes_takes_one_use(
    two_openings: tuple[Authority, Authority, Node],
) -> None:
    """The same enrollment sent twice at once (a `troth enroll` and the node's resumption),
    each to its own process: one use taken, one credential, answered to both."""
    first, second, agents = two_openings
    ticket = acme_ticket(first, NOW, uses=2)
    agents.identities.create(now=NOW, name="alice")
    request = enroll_request(agents.identities, "alice", ticket, now=NOW)
    again = enroll_request(agents.identities, "alice", ticket, now=NOW + 1)
    outcomes = _race([first, second], [request, again])
    assert all(isinstance(o, CredentialChain) for o in outcomes)
    hashes = {o.credentials[0].hash for o in outcomes if isinstance(o, CredentialChain)}
    assert len(hashes) == 1
    alice = agents.identities.get("alice", now=NOW).identifier
    assert first.store.count_redemptions(alice.digest) == 1
    agents.identities.create(now=NOW, name="bob")  # the second use is still there
    first.enroll(enroll_request(agents.identities, "bob", ticket, now=NOW), now=NOW)


def test_a_captured_enroll_request_replayed_gains_nothing(
    two_openings: tuple[Authority, Authority, Node],
) -> None:
    """An enroll request's bytes replayed (a transcript captured, a log): answered with the
    member's own credential (its subject's key needed to use it), no use taken, nothing
    issued; once out of the clock skew, refused before anything is read."""
    authority, _second, agents = two_openings
    ticket = acme_ticket(authority, NOW, uses=2)
    agents.identities.create(now=NOW, name="alice")
    request = enroll_request(agents.identities, "alice", ticket, now=NOW)
    chain = authority.enroll(request, now=NOW)
    alice = agents.identities.get("alice", now=NOW).identifier
    replayed = authority.enroll(request, now=NOW + 10)
    assert replayed.credentials[0].hash == chain.credentials[0].hash
    assert authority.store.unexpired_issued(alice.digest, NOW) == [chain.credentials[0].hash]
    with pytest.raises(AuthorityError) as caught:
        authority.enroll(request, now=NOW + MAX_CLOCK_SKEW_SECONDS + 1)
    assert caught.value.reason is A.CLOCK_SKEW
    agents.identities.create(now=NOW, name="bob")
    authority.enroll(enroll_request(agents.identities, "bob", ticket, now=NOW), now=NOW)


def test_a_ticket_edited_to_name_another_authority_redeems_nowhere(troth_home: Path) -> None:
    """The ticket's code with globex's history (the text edited on its way): at globex the
    code is unknown, at acme the request is addressed to another authority."""
    for name in ("acme", "globex", "agents"):
        init_node(name)
    with open_node("acme") as a, open_node("globex") as g, open_node("agents") as agents:
        acme, globex = a.create_authority("acme", now=NOW), g.create_authority("globex", now=NOW)
        ticket = acme_ticket(acme, NOW)
        edited = Ticket(ticket.code, globex.history(), "node:globex")
        agents.identities.create(now=NOW, name="alice")
        request = enroll_request(agents.identities, "alice", edited, now=NOW)
        with pytest.raises(AuthorityError) as caught:
            globex.enroll(request, now=NOW)
        assert caught.value.reason is A.TICKET_UNKNOWN
        with pytest.raises(AuthorityError, match="addressed to another authority"):
            acme.enroll(request, now=NOW)
        assert acme.members() == globex.members() == []


def test_a_removal_revokes_the_credential_whose_answer_is_in_flight(
    two_openings: tuple[Authority, Authority, Node],
) -> None:
    """The member is removed (by `troth authority members remove`, another process) after its
    enrollment committed and before its answer arrived: the removal revokes that credential,
    and the member's repeat of the enrollment is `not a member`."""
    authority, other, agents = two_openings
    ticket = acme_ticket(authority, NOW)
    agents.identities.create(now=NOW, name="alice")
    request = enroll_request(agents.identities, "alice", ticket, now=NOW)
    in_flight = authority.enroll(request, now=NOW)
    alice = agents.identities.get("alice", now=NOW).identifier
    assert other.remove_member(alice, now=NOW + 1) == [in_flight.credentials[0].hash]
    with pytest.raises(AuthorityError) as caught:
        authority.enroll(enroll_request(agents.identities, "alice", ticket, now=NOW + 2), now=NOW)
    assert caught.value.reason is A.NOT_A_MEMBER


def test_an_authority_rotated_mid_flight_answers_under_its_new_change(
    two_openings: tuple[Authority, Authority, Node],
) -> None:
    """The authority rotates after the member signed its request and before it is redeemed
    (the ticket carries the older history): the credential is signed under the newer change,
    and the member's node holds a chain carrying it."""
    authority, _other, agents = two_openings
    ticket = acme_ticket(authority, NOW)
    clock = FixedClock(NOW + 10)

    def rotate_then_enroll(request: bytes) -> bytes:
        authority.identities.rotate("acme", now=NOW + 5)
        return authority.enroll(request, now=clock.now()).encode()

    agents.identities.create(now=NOW, name="alice")
    enroll(agents.identities, agents.wallet, "alice", ticket, clock=clock, send=rotate_then_enroll)
    (held,) = agents.wallet.held("alice")
    assert authority_changes(held) == authority.changes() == 2
    assert enroll_in_process(agents, "alice", authority, acme_ticket(authority, NOW), clock)


def test_a_tickets_parse_errors_never_echo_it() -> None:
    """A ticket whose address was edited to one no node can reach is refused, and the error
    names neither its code nor its text (it may end in a log, a `--json` error)."""
    code = bytes(range(32))
    edited = str(Ticket(code, b"\x80", "http://evil.example/" + "x" * 200))
    with pytest.raises(DecodeError) as caught:
        Ticket.parse(edited)
    message = str(caught.value)
    assert code.hex() not in message
    assert edited.removeprefix("troth-ticket:")[:24] not in message


def _content(path: Path) -> list[str]:
    """Every row of the database at `path` (and its schema), as SQL."""
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_a_flood_of_enrollments_with_made_up_codes_writes_nothing(
    two_openings: tuple[Authority, Authority, Node], troth_home: Path
) -> None:
    """Strangers (fresh identities, free to mint) sending enroll requests with codes the
    authority never issued: every one `ticket unknown`, and node.db unchanged, row for row
    (no history learned, nothing issued, no feed entry, no ticket swept: none expired)."""
    authority, _other, agents = two_openings
    path = node_db(troth_home, "acme")
    before = _content(path)
    for index in range(24):
        name = f"stranger-{index}"
        agents.identities.create(now=NOW, name=name)
        made_up = Ticket(new_code(), authority.history(), "node:acme")
        with pytest.raises(AuthorityError) as caught:
            authority.enroll(enroll_request(agents.identities, name, made_up, now=NOW), now=NOW)
        assert caught.value.reason is A.TICKET_UNKNOWN
    assert _content(path) == before


def test_a_members_refresh_flood_is_bounded(
    two_openings: tuple[Authority, Authority, Node],
) -> None:
    """A member refreshing in a loop: at most MAX_LIVE_CREDENTIALS_PER_MEMBER credentials
    issued, then the newest answered again; no feed entry written."""
    authority, _other, agents = two_openings
    agents.identities.create(now=NOW, name="alice")
    authority.enroll(
        enroll_request(agents.identities, "alice", acme_ticket(authority, NOW), now=NOW), now=NOW
    )
    alice = agents.identities.get("alice", now=NOW).identifier
    feed = authority.store.revocation_tip()[0]
    for second in range(3 * MAX_LIVE_CREDENTIALS_PER_MEMBER):
        request = refresh_request(agents.identities, "alice", authority.identifier, now=NOW)
        authority.refresh(request, now=NOW + second)
    issued = authority.store.unexpired_issued(alice.digest, NOW)
    assert len(issued) == MAX_LIVE_CREDENTIALS_PER_MEMBER
    assert authority.store.revocation_tip()[0] == feed
