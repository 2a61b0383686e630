"""Review 45e, tickets: what an authority may create, a redeemer accepts.

Tickets 1. `Authority.create_ticket` never measured the ticket it made: one whose encoding
passed MAX_TICKET_BYTES (an authority's long history and a long address) was stored and
handed out, and every `Ticket.parse` of it (`troth enroll`, the authority's own node)
refused it as too long: a ticket no one could redeem. Was a strict xfail until
`create_ticket` refused it (AuthorityError REQUEST_INVALID naming the size and the limit)
before storing anything. The boundary is exact: the largest ticket it creates parses, one
byte more is refused at creation.

With the address a route (review 45e, address 1: at most MAX_ROUTE_LENGTH hops of
MAX_ADDRESS_TEXT characters) and the history at most MAX_IDENTITY_HISTORY_BYTES, no ticket
reaches MAX_TICKET_BYTES today: the boundary tests lower the limit (both sides read it), and
a pinning test measures the largest possible ticket against the real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent
from troth import limits
from troth.authority import Authority, Ticket
from troth.credentials import Attributes
from troth.errors import AuthorityError, AuthorityFailure, DecodeError

NOW = 1_800_000_000


def _address(length: int) -> str:
    """A route of one tcp hop, `length` characters in all."""
    tail = ":4000"
    return "/tcp/" + "h" * (length - len("/tcp/") - len(tail)) + tail


def _create(authority: Authority, address: str) -> Ticket:
    return authority.create_ticket(
        creator=authority.identifier, attributes=Attributes(), address=address, now=NOW
    )


def _stored(authority: Authority) -> int:
    (count,) = authority.store._db.execute("SELECT COUNT(*) FROM tickets").fetchone()  # type: ignore[attr-defined]
    return int(count)


@pytest.fixture
def authority(tmp_path: Path) -> Iterator[Authority]:
    with acme_and_agent(tmp_path, NOW) as (acme, _agent, _member, _ticket):
        yield acme


def test_the_largest_ticket_an_authority_creates_parses(
    authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the limit exactly: created, and its text parses back to the same ticket."""
    address = _address(200)
    size = len(Ticket(b"\x00" * 32, authority.history(), address).encode())
    monkeypatch.setattr(limits, "MAX_TICKET_BYTES", size)
    ticket = _create(authority, address)
    assert len(ticket.encode()) == size
    assert Ticket.parse(str(ticket)) == ticket


def test_one_byte_more_is_refused_at_creation(
    authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tickets 1: one byte over the limit is refused by `create_ticket`, naming the size and
    the limit, and nothing is stored (before: created, stored, and refused by every parse)."""
    address = _address(200)
    size = len(Ticket(b"\x00" * 32, authority.history(), address).encode())
    monkeypatch.setattr(limits, "MAX_TICKET_BYTES", size)
    before = _stored(authority)
    longer = _address(201)
    with pytest.raises(DecodeError, match="over the limit"):  # what a redeemer says
        Ticket.parse(str(Ticket(b"\x00" * 32, authority.history(), longer)))
    with pytest.raises(AuthorityError) as caught:
        _create(authority, longer)
    assert caught.value.reason is AuthorityFailure.REQUEST_INVALID
    assert f"{size + 1} bytes" in str(caught.value)
    assert f"MAX_TICKET_BYTES ({size})" in str(caught.value)
    assert _stored(authority) == before


def test_no_ticket_a_valid_address_allows_reaches_the_limit() -> None:
    """Pinning: a history of MAX_IDENTITY_HISTORY_BYTES and the longest route (its every hop
    at MAX_ADDRESS_TEXT, the longest kind) encode under MAX_TICKET_BYTES."""
    hop = "/service/" + "s" * limits.MAX_ADDRESS_TEXT
    route = hop * limits.MAX_ROUTE_LENGTH
    history = b"\x00" * limits.MAX_IDENTITY_HISTORY_BYTES
    ticket = Ticket(b"\x00" * 32, history, route)
    assert len(ticket.encode()) < limits.MAX_TICKET_BYTES
    assert Ticket.parse(str(ticket)).address == route
