"""Mutation fuzzing of the decoders of the authority's inputs: enrollment tickets (the text a
member is handed, and its CBOR inside) and the signed requests members send (enroll, refresh,
revoke, rotated), at the limits too (tests/support/limit_mutations.py); and those requests'
bodies mutated and signed again by a member, so that each kind's handler reads hostile
arguments (an authority hosted by a node, kept for the module); and an authority's pin, given
with its ticket.

The mutations and the rule every property checks: tests/support/decoder_vectors.py.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import NOW
from tests.support.decoder_vectors import FUZZ, vectors
from tests.support.limit_mutations import QUICK, hostile, values
from tests.support.mutations import as_text, mutated, typed
from troth.authority import Authority
from troth.authority.client import authority_pin_of, check_ticket, enroll_request
from troth.authority.requests import REQUEST_TYPE, verify_request
from troth.authority.requests import VERSION as REQUEST_VERSION
from troth.authority.tickets import TICKET_PREFIX, Ticket
from troth.credentials import Attributes, CredentialChain
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem
from troth.identity import Identifier
from troth.node import Node, init_node, open_node
from troth.node.authorities import parse_ticket

ORDERS = Attributes({"orders.access": frozenset({"read", "write"}), "orders.customer": "4471"})

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


# -- re-signed requests: what only a member could send reaches each kind's handler -----------


@dataclass
class Hosted:
    """An authority hosted by a node, and a member of it (alice) on another node, enrolled
    with a ticket of many uses, holding its chain."""

    authority: Authority
    agents: Node
    ticket: Ticket
    chain: bytes

    @property
    def code(self) -> bytes:
        return self.ticket.code


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    home = tmp_path_factory.mktemp("home")
    init_node("auth", home=home)
    init_node("agents", home=home)
    with open_node("auth", home=home) as node, open_node("agents", home=home) as agents:
        authority = node.create_authority("acme", now=NOW)
        ticket = authority.create_ticket(
            creator=authority.identifier, attributes=ORDERS, address="node:auth", now=NOW, uses=9
        )
        agents.identities.create(now=NOW, name="alice")
        chain = authority.enroll(
            enroll_request(agents.identities, "alice", ticket, now=NOW), now=NOW
        )
        yield Hosted(authority, agents, ticket, chain.encode())


@settings(QUICK, suppress_health_check=list(HealthCheck))  # a module's authority
@given(data=st.data())
def test_resigned_request(hosted: Hosted, data: st.DataObject) -> None:
    """A request's arguments, or anything in its body (kind, authority, time), mutated and
    signed again by the member: answered by its kind's handler, or AuthorityError."""
    authority, signer = hosted.authority, hosted.agents.identities.signer("alice", now=NOW)
    kind = data.draw(st.sampled_from(["enroll", "refresh", "revoke", "rotated"]))
    taken: dict[str, list[Any]] = {
        "enroll": [hosted.code],
        "refresh": [],
        "revoke": [CredentialChain.decode(hosted.chain).credentials[0].hash, hosted.chain, "x"],
        "rotated": [],
    }
    arguments = taken[kind]
    head = [REQUEST_TYPE, REQUEST_VERSION, kind, authority.identifier.digest, NOW, arguments]
    if data.draw(st.booleans()):  # any part of the body
        mutant = data.draw(hostile(cbor.encode(head)))
    else:  # the arguments only, maybe past the limits: they replace the last item (one byte)
        mutant = cbor.encode([*head[:-1], None])[:-1] + data.draw(values(cbor.encode(arguments)))
    request = cbor.encode(
        [mutant, signer.sign(mutant), signer.attestation, signer.identity.history]
    )
    handler = {
        "enroll": authority.enroll,
        "refresh": authority.refresh,
        "revoke": authority.revoke_link,
        "rotated": authority.rotated,
    }[kind]
    typed(lambda b: handler(b, now=NOW), request)


@settings(QUICK, suppress_health_check=list(HealthCheck))  # the module's nodes
@given(data=st.data())
def test_authority_pin(hosted: Hosted, data: st.DataObject) -> None:
    """The authority's pin (`IDENTIFIER:KEY`, told out of band) mutated, given with its ticket
    (`troth enroll --authority-pin`): the authority, or ConfigError (not a pin) or IdentityError
    (not this authority's)."""
    history = hosted.agents.identities.check_history(hosted.ticket.authority_history, now=NOW)
    pin = authority_pin_of(history)
    mutant = as_text(data.draw(mutated(pin.encode())))
    identities = hosted.agents.identities
    typed(
        lambda _: check_ticket(identities, hosted.ticket, now=NOW, authority_pin=mutant),
        b"",
        valid_if=lambda identifier: identifier == history.identifier,
    )
