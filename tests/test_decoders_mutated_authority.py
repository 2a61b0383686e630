"""Mutation fuzzing of the decoders of the authority's inputs: enrollment tickets (the text a
member is handed, and its CBOR inside) and the signed requests members send (enroll, refresh,
revoke, rotated), at the limits too (tests/support/limit_mutations.py).

The mutations and the rule every property checks: tests/support/decoder_vectors.py.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.decoder_vectors import FUZZ, vectors
from tests.support.limit_mutations import hostile
from tests.support.mutations import as_text, mutated, typed
from troth.authority.requests import verify_request
from troth.authority.tickets import TICKET_PREFIX, Ticket
from troth.errors import DecodeError, DecodeProblem
from troth.identity import Identifier
from troth.node.authorities import parse_ticket

AUTHORITY = vectors("authority/authority_vectors.json")


def _text(data: bytes) -> str:
    return TICKET_PREFIX + base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("name", ["ticket", "ticket_local"])
@FUZZ
@given(data=st.data())
def test_ticket_text(name: str, data: st.DataObject) -> None:
    """A ticket's text, mutated: a ticket whose text is the canonical one (docs/formats.md,
    "Enrollment tickets": unpadded base64url), or DecodeError."""
    mutant = as_text(data.draw(mutated(AUTHORITY[name].encode())))
    typed(lambda _: Ticket.parse(mutant), b"", valid_if=lambda t: str(t) == mutant.strip())
    typed(lambda _: parse_ticket(mutant), b"")


@FUZZ
@given(data=st.data())
def test_ticket_cbor(data: st.DataObject) -> None:
    """The CBOR inside a ticket, mutated (at the limits too) and written as a ticket's text."""
    mutant = data.draw(hostile(bytes.fromhex(AUTHORITY["ticket_cbor"])))
    typed(lambda b: Ticket.parse(_text(b)), mutant, valid_if=lambda t: t.encode() == mutant)


@pytest.mark.parametrize(
    "text",
    [
        AUTHORITY["ticket"] + "==",  # padded
        AUTHORITY["ticket"][:40] + "!" + AUTHORITY["ticket"][40:],  # not base64url at all
        AUTHORITY["ticket"][:40] + " " + AUTHORITY["ticket"][40:],
        TICKET_PREFIX  # the standard alphabet's + and /
        + AUTHORITY["ticket"][len(TICKET_PREFIX) :].replace("-", "+").replace("_", "/"),
    ],
)
def test_a_ticket_not_in_unpadded_base64url_is_refused(text: str) -> None:
    """Found by test_ticket_text (review 54b, decoders 1): `Ticket.parse` decoded with
    `base64.urlsafe_b64decode`, which drops every character out of its alphabet and takes
    padding and the standard alphabet's `+` and `/`: texts other than the one docs/formats.md
    defines (`base64url-without-padding`) enrolled with the same ticket."""
    assert text != AUTHORITY["ticket"]
    with pytest.raises(DecodeError, match="not unpadded base64url"):
        Ticket.parse(text)


def test_a_ticket_with_unused_bits_set_is_refused() -> None:
    """The last character of a ticket's text carries unused low bits: another character with
    them set decodes to the same bytes, a second text for one ticket (review 54b, decoders 1)."""
    text = AUTHORITY["ticket_local"]
    assert len(text[len(TICKET_PREFIX) :]) % 4 in (2, 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(text[-1]) | 1]  # 3 characters left: 2 unused bits
    assert last != text[-1]
    with pytest.raises(DecodeError) as refused:
        Ticket.parse(text[:-1] + last)
    assert refused.value.problem is DecodeProblem.NON_CANONICAL


def test_a_ticket_copied_with_spaces_around_it_parses() -> None:
    """What a terminal adds around a pasted ticket (a newline, spaces) is not part of it."""
    assert str(Ticket.parse(f"  {AUTHORITY['ticket']}\n")) == AUTHORITY["ticket"]


@pytest.mark.parametrize("kind", sorted(AUTHORITY["requests"]))
@FUZZ
@given(data=st.data())
def test_signed_request(kind: str, data: st.DataObject) -> None:
    """A member's signed request, mutated: verified (the same request) or AuthorityError."""
    original = bytes.fromhex(AUTHORITY["requests"][kind])
    mutant = data.draw(hostile(original))
    authority = Identifier.parse(AUTHORITY["authority"])
    typed(
        lambda b: verify_request(b, authority=authority, kind=kind, now=AUTHORITY["requested_at"]),
        mutant,
        valid_if=lambda _: mutant == original,
    )
