"""Review 70v, link revocation reasons: attacks on review 70q's member bound that did not work
(each passes on the code it was tried on, and pins what holds)."""

from __future__ import annotations

import unicodedata

import pytest

from tests import test_authority
from tests.conftest import NOW
from tests.test_authority import ORDERS, A, Setup
from tests.test_authority_feed import delegations
from troth import limits
from troth.authority.requests import REQUEST_TYPE, VERSION, make_request
from troth.credentials import RevocationEntry
from troth.encoding import cbor
from troth.errors import AuthorityError

setup = test_authority.setup  # the fixture, shared

BOUND = limits.MAX_MEMBER_REVOCATION_REASON_BYTES
_MARK = "\x00\x01\x02"  # three bytes of text, found once in the body and replaced


def _refused(setup: Setup, request: bytes) -> AuthorityError:
    """The authority's refusal of `request`, the feed left as it was."""
    length = setup.feed_length()
    with pytest.raises(AuthorityError) as caught:
        setup.authority.revoke_link(request, now=NOW)
    assert setup.feed_length() == length
    return caught.value


def test_a_lone_surrogate_in_the_signed_reason_is_no_text(setup: Setup) -> None:
    """70v refuted 1: a member signs a revoke request whose reason's CBOR text holds the
    bytes of a lone surrogate (ED A0 80: what `reason.encode()` could not count): the body is
    malformed CBOR to the authority (request invalid), before any reason is measured."""
    ((target, chain),) = delegations(setup, 1)
    arguments = [target, chain, _MARK]
    authority = setup.authority.identifier.digest
    body = cbor.encode([REQUEST_TYPE, VERSION, "revoke", authority, NOW, arguments])
    marked = cbor.encode(_MARK)
    assert body.count(marked) == 1
    body = body.replace(marked, b"\x63\xed\xa0\x80")
    signer = setup.agents.identities.signer("customer", now=NOW)
    request = cbor.encode([body, signer.sign(body), signer.attestation, signer.identity.history])
    assert _refused(setup, request).reason is A.REQUEST_INVALID


def test_the_bound_counts_the_reason_as_signed_never_normalised(setup: Setup) -> None:
    """70v refuted 2: NFD against NFC. A reason of 22 decomposed "é" (66 bytes; 44 composed)
    is refused: the bound counts the text the request carries, not a normalised form; 21 of
    them (63 bytes) are written as they were signed, byte for byte (nothing normalises them
    into a longer or shorter entry)."""
    ((target, chain),) = delegations(setup, 1)
    over = "e\u0301" * 22
    assert len(unicodedata.normalize("NFC", over).encode()) <= BOUND < len(over.encode())
    request = setup.revoke_request("customer", target, chain, reason=over)
    assert _refused(setup, request).reason is A.REQUEST_INVALID
    within = "e\u0301" * 21
    seq = setup.revoke_link("customer", target, chain, reason=within)
    (row,) = setup.authority.store.revocation_page(seq, 1 << 20, len)
    assert RevocationEntry.decode(row).reason.encode() == within.encode()


def test_a_rotated_announcement_carries_no_reason_into_the_feed(setup: Setup) -> None:
    """70v refuted 3: the other request a member's delegate can send that writes an entry, a
    `rotated` announcement (a supersession), given the longest reason as an argument: refused
    (request invalid), nothing written; a supersession has no reason at all
    (RevocationEntry refuses one), so no request kind but `revoke` writes a member's text."""
    delegations(setup, 1)
    signer = setup.agents.identities.signer("customer", now=NOW)
    wide = "\U0001f600" * limits.MAX_REVOCATION_REASON
    request = make_request(signer, "rotated", setup.authority.identifier, [wide], now=NOW)
    length = setup.feed_length()
    with pytest.raises(AuthorityError) as caught:
        setup.authority.rotated(request, now=NOW)
    assert caught.value.reason is A.REQUEST_INVALID
    assert setup.feed_length() == length


def test_a_member_s_delegate_is_held_to_the_member_bound(setup: Setup) -> None:
    """70v refuted 4: the member's delegate (`helper`, holding a link from `customer`)
    revokes a link it issued itself with a reason one byte past the bound, charged to the
    account of the member's delegates, not to the member: refused all the same (request
    invalid), nothing written; within the bound, taken."""
    delegations(setup, 1)
    wallet = setup.agents.wallet
    setup.agents.identities.create(now=NOW, name="helper")
    to_it = wallet.delegate(
        "customer", to=setup.id("helper"), attributes=ORDERS, now=NOW, ttl=600, purpose="h"
    )
    wallet.hold("helper", to_it, now=NOW)
    ((target, chain),) = delegations(setup, 1, by="helper")
    request = setup.revoke_request("helper", target, chain, reason="x" * (BOUND + 1))
    assert _refused(setup, request).reason is A.REQUEST_INVALID
    length = setup.feed_length()
    assert setup.revoke_link("helper", target, chain, reason="x" * BOUND) == length
