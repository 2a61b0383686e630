"""Review 45g (limits end to end): the largest identity history, ticket and trace record each
producing API makes, fed to their readers; one step past, refused by the producer, typed.

1. `Authority.create_ticket` (and `troth.Authority.ticket(at=...)`) took any address text: a
   ticket whose address is no route (`parse_route`: at most MAX_ROUTE_LENGTH hops of
   MAX_ADDRESS_TEXT) was made and refused by the enrolling node, and one of ~60,000 characters
   made a ticket over MAX_TICKET_BYTES that `Ticket.parse` refuses ("ticket too long"). A
   strict xfail here; fixed by review 45e (`create_ticket`: the address `node:NAME` or a route
   `parse_route` takes, and the encoded ticket within MAX_TICKET_BYTES, else AuthorityError
   REQUEST_INVALID).

The passing tests pin what holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder
from troth import limits
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.crypto import KeyType
from troth.errors import AuthorityError, TraceError, TraceFailure
from troth.identity import (
    attest_purpose_key,
    new_identity,
    rotate_identity,
    verify_history,
)
from troth.identity.attestation import PurposeKeyAttestation
from troth.node import init_node, open_node
from troth.routing import parse_route
from troth.trace import Decision, Kind, RecordContent, ToolCall
from troth.trace.record import Links
from troth.trace.record_decode import decode_payload
from troth.trace.signing import open_envelope
from troth.vault import KeyPurpose, SoftwareVault

# -- identity: the largest history ------------------------------------------------------------


def test_the_largest_history_fits_every_reader() -> None:
    """P-256 keys (the larger public keys and signatures) at the latest times a window takes,
    MAX_IDENTITY_CHANGES changes: ~20.7 KB, within MAX_IDENTITY_HISTORY_BYTES, each change
    within MAX_CHANGE_BYTES, its purpose-key attestation within MAX_ATTESTATION_BYTES."""
    vault = SoftwareVault()
    now = 1 << 62
    valid_for = (1 << 64) - now - 10**6
    held = new_identity(vault, KeyType.P256, now=now, valid_for=valid_for)
    for n in range(limits.MAX_IDENTITY_CHANGES - 1):
        held = rotate_identity(
            vault,
            held.identity,
            held.primary,
            held.next_key,
            now=now + n + 1,
            valid_for=valid_for - n - 2,
        )
    identity = held.identity
    assert len(identity.changes) == limits.MAX_IDENTITY_CHANGES
    assert len(identity.history) <= limits.MAX_IDENTITY_HISTORY_BYTES
    assert all(len(c.signed.body) <= limits.MAX_CHANGE_BYTES for c in identity.changes)
    assert verify_history(identity.history, now=now + 100).changes == identity.changes
    key = vault.public_key(vault.generate(KeyType.P256, KeyPurpose.SIGNING))
    attestation = attest_purpose_key(
        vault,
        held.primary,
        identity,
        KeyPurpose.SIGNING,
        key,
        now=now + 100,
        expires_at=(1 << 64) - 1,
    )
    assert len(attestation) <= limits.MAX_ATTESTATION_BYTES
    PurposeKeyAttestation.decode(attestation)


# -- tickets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "no route here",
        "/tcp/" + "a" * 60_000,
        "/tcp/" + "/tcp/".join(["a" * limits.MAX_ADDRESS_TEXT] * (limits.MAX_ROUTE_LENGTH + 1)),
    ],
)
def test_a_ticket_is_made_only_with_an_address_its_redeemer_reads(
    tmp_path: Path, address: str
) -> None:
    init_node("acme", home=tmp_path)
    with open_node("acme", home=tmp_path) as acme:
        authority = acme.create_authority("acme", now=NOW)
        try:
            ticket = authority.create_ticket(
                creator=authority.identifier,
                attributes=Attributes({"team.name": "x"}),
                address=address,
                now=NOW,
            )
        except AuthorityError:
            return  # the maker refuses, typed
        parse_route(Ticket.parse(str(ticket)).address)  # RoutingError / DecodeError before 45e


def test_a_ticket_at_the_longest_route_is_one_its_redeemer_reads(tmp_path: Path) -> None:
    longest = "/" + "/".join(["tcp/" + "a" * limits.MAX_ADDRESS_TEXT] * limits.MAX_ROUTE_LENGTH)
    init_node("acme", home=tmp_path)
    with open_node("acme", home=tmp_path) as acme:
        authority = acme.create_authority("acme", now=NOW)
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": "x"}),
            address=longest,
            now=NOW,
        )
    text = str(ticket)
    assert len(text) <= limits.MAX_TICKET_TEXT
    assert len(parse_route(Ticket.parse(text).address)) == limits.MAX_ROUTE_LENGTH


# -- trace records ----------------------------------------------------------------------------


def _text(fill: str) -> str:
    return fill * limits.MAX_TRACE_TEXT


def test_a_record_past_the_payload_limit_is_refused_by_its_signer(tmp_path: Path) -> None:
    """Every text field at MAX_TRACE_TEXT of 4-byte characters and MAX_TRACE_POLICY_IDS policy
    ids (each field within its own limit) add up past MAX_TRACE_PAYLOAD_BYTES: the recorder
    refuses it, typed (TraceError OVER_LIMIT), never signs what `decode_payload` refuses; a
    record of ASCII fields at their limits with 40 policy ids is signed and reads back."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    sink = recorder(log, Held(), clock)

    def content(fill: str, policies: int) -> RecordContent:
        text = _text(fill)
        return RecordContent(
            Kind.TOOL_INVOCATION,
            tool=ToolCall(text, text),
            decision=Decision(text, text, (text,) * policies),
            links=Links(trace=text, span=text, parent_span=text, conversation=text),
        )

    with pytest.raises(TraceError) as refused:
        sink.record(content("\U0001f600", limits.MAX_TRACE_POLICY_IDS))
    assert refused.value.reason is TraceFailure.OVER_LIMIT
    with pytest.raises(TraceError) as refused:
        sink.record(content("a", limits.MAX_TRACE_POLICY_IDS))  # ASCII alone is over too
    assert refused.value.reason is TraceFailure.OVER_LIMIT
    sink.record(content("a", 40))
    (entry,) = list(log.stored())
    record, payload, _, _ = open_envelope(entry.envelope)
    assert len(payload) <= limits.MAX_TRACE_PAYLOAD_BYTES
    assert len(entry.envelope) <= limits.MAX_TRACE_ENVELOPE_BYTES
    assert decode_payload(payload) == record
    log.close()
