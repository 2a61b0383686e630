"""Credential golden vectors: fixed keys give exactly the stored bytes; the bytes verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.vectors.credentials.generate import build
from troth.credentials import (
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    RevocationEntry,
    Supersession,
    TrustPolicy,
    verify_feed,
    verify_page,
)
from troth.credentials.revocation_held import feed_from_store
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "credentials" / "credential_vectors.json").read_text()
)["vectors"]
T = VECTOR["created_at"]


def test_regenerates_byte_for_byte() -> None:
    assert build() == VECTOR


def test_stored_chain_verifies_and_feed_revokes_the_link() -> None:
    authority = Identifier.parse(VECTOR["authority"])
    sub = Identifier.parse(VECTOR["sub"])
    feed = verify_feed(
        bytes.fromhex(VECTOR["feed"]), authority=authority, now=T + 300, max_staleness=600
    )
    assert feed.count == 3
    assert feed.head.hex() == VECTOR["feed_head"]
    assert [RevocationEntry.decode(bytes.fromhex(e)) for e in VECTOR["revocation_entries"]] == list(
        feed.new_entries
    )
    assert feed.supersession(sub) == Supersession(2, bytes([8]) * 32)
    # a holder of the first two entries verifies the page that follows them
    first_two = [RevocationEntry.decode(bytes.fromhex(e)) for e in VECTOR["revocation_entries"]][:2]
    held = feed_from_store(
        authority,
        count=2,
        head=bytes.fromhex(VECTOR["feed_head_after_2"]),
        latest=2,
        issued_at=T,
        rows=[(e.seq, int(e.kind), e.target, None, None) for e in first_two],
    )
    extended = verify_page(
        bytes.fromhex(VECTOR["feed_page_from_2"]), authority=authority, now=T + 300, previous=held
    )
    assert (extended.count, extended.head.hex()) == (3, VECTOR["feed_head"])
    assert bytes([9]) * 32 in extended.revoked_identities
    verifier = ChainVerifier(TrustPolicy(frozenset({authority})))
    chain = bytes.fromhex(VECTOR["chain2"])
    checked = verifier.verify_structure(chain, now=T + 300)
    assert checked.actor == sub
    assert [link.id for link in checked.links] == [b"\x01" * 16, b"\x02" * 16]
    with pytest.raises(CredentialError) as caught:
        verifier.verify(chain, presenter=sub, feeds={authority: feed}, now=T + 300)
    assert caught.value.reason is CredentialFailure.REVOKED
    assert caught.value.link == 1


def test_body_fields() -> None:
    body = CredentialBody.decode(bytes.fromhex(VECTOR["delegation_body"]))
    assert body.delegation is not None
    assert body.delegation.purpose == "resolve complaint 123"
    assert body.delegation.caveats == ('context.complaint == "123"',)
    chain = CredentialChain.decode(bytes.fromhex(VECTOR["chain2"]))
    assert body.delegation.parent == chain.credentials[0].hash
    assert body.depth == 1
    assert body.expires_at == T + 60 + 1800
