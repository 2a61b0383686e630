"""Review 45c, refuted: attacks on enrollment, tickets and the TCP frame limits tried and found
closed, pinned.

- one identity racing itself: two enroll requests of the same member with the same code of a
  two-use ticket, at once on two connections, take one use and answer one credential (the
  redemption and its record are one BEGIN IMMEDIATE transaction: the second finds the first);
- a stolen backup's history: an enroll request signed with the key a member rotated away
  (and announced) is refused as a rollback, and takes none of the ticket's uses;
- the ticket's window at its edge: its redeemer's repeat one second before the expiry is
  answered the same credential, a newcomer at the expiry is TICKET_UNKNOWN;
- the frame limit end to end: a routed message of exactly MAX_TRANSPORT_FRAME bytes is framed
  by the sender, cut by the reader and parsed on arrival; one byte more is refused by the
  sender (`frame`) and by the reader from the header alone, before any body is buffered.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent
from troth import limits
from troth.authority.client import enroll_request, rotated_request
from troth.credentials import Attributes
from troth.errors import AuthorityError, AuthorityFailure, DecodeError
from troth.routing import Address, RoutedMessage
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION, FrameReader, frame

NOW = 1_800_000_000


def test_a_member_racing_itself_takes_one_use_and_one_credential(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, _ticket):
        two = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": "x"}),
            address="node:acme",
            now=NOW,
            uses=2,
        )
        requests = [enroll_request(agent.identities, "agent", two, now=NOW) for _ in range(2)]
        barrier = threading.Barrier(2)
        answers: list[bytes] = []

        def redeem(request: bytes) -> None:
            barrier.wait()
            answers.append(authority.enroll(request, now=NOW).encode())

        threads = [threading.Thread(target=redeem, args=(r,)) for r in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(answers) == 2
        assert answers[0] == answers[1]
        assert authority.store.count_redemptions(member.digest) == 1
        # the second use is still there for someone else
        agent.identities.create(now=NOW, name="other")
        authority.enroll(enroll_request(agent.identities, "other", two, now=NOW), now=NOW)


def test_a_stolen_backups_history_enrolls_nowhere_and_takes_no_use(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        authority.enroll(enroll_request(agent.identities, "agent", ticket, now=NOW), now=NOW)
        one = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": "y"}),
            address="node:acme",
            now=NOW,
        )
        # what a backup taken now signs later with the key the member rotates away next
        stolen = enroll_request(agent.identities, "agent", one, now=NOW + 20)
        agent.identities.rotate("agent", now=NOW + 10)
        announce = rotated_request(agent.identities, "agent", authority.identifier, now=NOW + 10)
        authority.rotated(announce, now=NOW + 10)
        with pytest.raises(AuthorityError) as caught:
            authority.enroll(stolen, now=NOW + 20)
        assert caught.value.reason is AuthorityFailure.REQUEST_INVALID
        assert "older than the stored copy" in str(caught.value)
        assert authority.store.count_redemptions(member.digest) == 1
        # the ticket's one use is left: the member's own (rotated) request redeems it
        authority.enroll(enroll_request(agent.identities, "agent", one, now=NOW + 21), now=NOW + 21)
        assert authority.store.count_redemptions(member.digest) == 2


def test_the_tickets_window_at_its_edge(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, _ticket):
        edge = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": "x"}),
            address="node:acme",
            now=NOW,
            uses=2,
            ttl=60,
        )
        first = authority.enroll(enroll_request(agent.identities, "agent", edge, now=NOW), now=NOW)
        again = enroll_request(agent.identities, "agent", edge, now=NOW + 59)
        assert authority.enroll(again, now=NOW + 59).encode() == first.encode()
        agent.identities.create(now=NOW, name="late")
        late = enroll_request(agent.identities, "late", edge, now=NOW + 60)
        with pytest.raises(AuthorityError) as caught:
            authority.enroll(late, now=NOW + 60)
        assert caught.value.reason is AuthorityFailure.TICKET_UNKNOWN


def _message_of(size: int) -> RoutedMessage:
    """A routed message whose encoding is exactly `size` bytes."""
    empty = RoutedMessage((Address("service", "echo"),), (), b"")
    return RoutedMessage(empty.onward, (), b"\x00" * (size - len(empty.encode())))


def test_a_frame_at_the_limit_goes_end_to_end_and_one_byte_more_nowhere() -> None:
    at_limit = _message_of(limits.MAX_TRANSPORT_FRAME).encode()
    assert len(at_limit) == limits.MAX_TRANSPORT_FRAME
    reader = FrameReader()
    (body,) = reader.feed(frame(at_limit), now=0.0)
    arrived = RoutedMessage.arrived(body, Address("tcp", "10.0.0.7:4000"))
    assert len(arrived.payload) == len(_message_of(limits.MAX_TRANSPORT_FRAME).payload)
    over = _message_of(limits.MAX_TRANSPORT_FRAME + 1).encode()
    with pytest.raises(DecodeError):
        frame(over)
    header = FRAME_HEADER.pack(FRAME_VERSION, len(over))
    with pytest.raises(DecodeError):
        FrameReader().feed(header, now=0.0)
    with pytest.raises(DecodeError):
        RoutedMessage.decode(over)
