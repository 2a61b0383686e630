"""Properties: delegation only narrows; revocation sticks; decoders raise only DecodeError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.feeds import entries, pages
from tests.support.parties import Party, make_party, verified_feed
from troth.authority import Ticket
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    RevocationEntry,
    TrustPolicy,
    delegate,
    issue_credential,
    verify_feed,
    verify_pages,
)
from troth.encoding import cbor
from troth.errors import CredentialError, CredentialFailure, DecodeError
from troth.vault import SoftwareVault

T = 1_780_000_000
VAULT = SoftwareVault()
PARTIES = [make_party(VAULT, now=T) for _ in range(6)]
AUTHORITY = PARTIES[0]
VERIFIER = ChainVerifier(TrustPolicy(frozenset({AUTHORITY.identifier})))
FEED = verified_feed(AUTHORITY, now=T)

KEYS = ["orders.access", "orders.customer", "support.tier", "billing.scope"]
VALUES = ["a", "b", "c", "d"]
ATTRIBUTES = st.dictionaries(
    st.sampled_from(KEYS),
    st.sampled_from(VALUES) | st.frozensets(st.sampled_from(VALUES), min_size=1),
    min_size=1,
).map(Attributes)


@st.composite
def narrowing(draw: st.DrawFn, parent: Attributes) -> Attributes:
    """Some of `parent`'s keys, each with a subset of its values."""
    chosen: dict[str, str | frozenset[str]] = {}
    for key, value in parent.items():
        if not draw(st.booleans()):
            continue
        values = sorted((value,) if isinstance(value, str) else value)
        subset = draw(st.lists(st.sampled_from(values), min_size=1, unique=True))
        chosen[key] = subset[0] if len(subset) == 1 and draw(st.booleans()) else frozenset(subset)
    return Attributes(chosen)


def build_chain(data: st.DataObject, links: int) -> tuple[CredentialChain, list[Attributes]]:
    root_attributes = data.draw(ATTRIBUTES)
    holders = PARTIES[1 : links + 2]
    chain = CredentialChain(
        (
            issue_credential(
                AUTHORITY.signer,
                subject=holders[0].identifier,
                attributes=root_attributes,
                now=T,
                ttl=3600,
                depth=links,
            ),
        ),
        (AUTHORITY.identity.history,),
    )
    granted = [root_attributes]
    remaining = 3600
    for index in range(links):
        attributes = data.draw(narrowing(granted[-1]))
        ttl = remaining = data.draw(st.integers(1, remaining))
        chain = delegate(
            holders[index].signer,
            chain,
            subject=holders[index + 1].identifier,
            attributes=attributes,
            now=T,
            ttl=ttl,
            purpose="p",
        )
        granted.append(attributes)
    return chain, granted


def holder(links: int) -> Party:
    return PARTIES[links + 1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(1, 4))
def test_child_authority_is_a_subset_of_its_parent(data: st.DataObject, links: int) -> None:
    chain, granted = build_chain(data, links)
    result = VERIFIER.verify(
        chain.encode(),
        presenter=holder(links).identifier,
        feeds={AUTHORITY.identifier: FEED},
        now=T,
    )
    for parent, child in zip(result.links, result.links[1:], strict=False):
        assert child.attributes.first_excess_over(parent.attributes) is None
        assert child.expires_at <= parent.expires_at
        assert child.depth < parent.depth
    assert result.attributes == granted[-1]
    assert result.expires_at == min(link.expires_at for link in result.links)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(1, 4))
def test_a_revoked_link_never_verifies_again(data: st.DataObject, links: int) -> None:
    chain, _ = build_chain(data, links)
    target = data.draw(st.integers(0, links))
    revoked_id = chain.credentials[target].hash
    feed = verified_feed(AUTHORITY, [(1, revoked_id)], now=T, revoked_at=T)
    later_entries = data.draw(st.lists(st.binary(min_size=32, max_size=32), max_size=3))
    targets = [(1, revoked_id), *((1, e) for e in later_entries if e != revoked_id)]
    later = verify_pages(
        pages(AUTHORITY, entries(AUTHORITY, targets, at=T), now=T + 1, per_page=2, start=1),
        authority=AUTHORITY.identifier,
        now=T + 1,
        previous=feed,
    )
    for held in (feed, later):
        with pytest.raises(CredentialError) as caught:
            VERIFIER.verify(
                chain.encode(),
                presenter=holder(links).identifier,
                feeds={AUTHORITY.identifier: held},
                now=T + 1,
            )
        assert caught.value.reason is CredentialFailure.REVOKED
        assert caught.value.link == target


@given(st.binary(max_size=400))
def test_decoders_raise_only_decode_error(data: bytes) -> None:
    for decode in (CredentialBody.decode, CredentialChain.decode, RevocationEntry.decode):
        with contextlib.suppress(DecodeError):
            decode(data)
    with contextlib.suppress(DecodeError):
        Ticket.parse("troth-ticket:" + data.hex())
    with contextlib.suppress(DecodeError):
        Attributes.from_cbor(cbor.decode(data))


@given(st.binary(max_size=400))
def test_verifier_raises_only_credential_error(data: bytes) -> None:
    with contextlib.suppress(CredentialError):
        VERIFIER.verify(
            data, presenter=AUTHORITY.identifier, feeds={AUTHORITY.identifier: FEED}, now=T
        )
    with contextlib.suppress(CredentialError):
        verify_feed(data, authority=AUTHORITY.identifier, now=T, max_staleness=60)


_CHAIN = CredentialChain(
    (
        issue_credential(
            AUTHORITY.signer,
            subject=PARTIES[1].identifier,
            attributes=Attributes({"orders.access": frozenset({"read", "write"})}),
            now=T,
            ttl=3600,
            depth=2,
        ),
    ),
    (AUTHORITY.identity.history,),
)
_CHAIN2 = delegate(
    PARTIES[1].signer,
    _CHAIN,
    subject=PARTIES[2].identifier,
    attributes=Attributes({"orders.access": "read"}),
    now=T,
    ttl=600,
    purpose="p",
).encode()
_RESULT = VERIFIER.verify(
    _CHAIN2, presenter=PARTIES[2].identifier, feeds={AUTHORITY.identifier: FEED}, now=T
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_tampering_any_byte_never_yields_more(data: st.DataObject) -> None:
    """Flip bytes anywhere in a 2-link chain: it is refused, or verifies to the very same
    authority (a byte inside an unused part of the encoding cannot exist: never different)."""
    mutated = bytearray(_CHAIN2)
    for _ in range(data.draw(st.integers(1, 3))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] ^= data.draw(st.integers(1, 255))
    verifier = ChainVerifier(TrustPolicy(frozenset({AUTHORITY.identifier})))
    try:
        result = verifier.verify(
            bytes(mutated),
            presenter=PARTIES[2].identifier,
            feeds={AUTHORITY.identifier: FEED},
            now=T,
        )
    except CredentialError:
        return
    assert result.attributes == _RESULT.attributes
    assert [link.id for link in result.links] == [link.id for link in _RESULT.links]
