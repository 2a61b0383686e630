"""Review 56a (credentials and delegation): attacks tried that did not work, each a real
attempt that fails if its defence breaks, and negative tests for verification steps that had
none (an issuer whose identity lapsed under a cached chain; a VC proof naming a key other than
the one its attestation vouches for)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.parties import Party, hand_link, make_party, signer_as, verified_feed
from tests.test_credentials_vc import VcWorld
from troth import limits
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    delegate,
    issue_credential,
)
from troth.credentials.format import CredentialBody, SignedCredential
from troth.credentials.vc import sign_eddsa_jcs_2022, troth_resolver, verify_eddsa_jcs_2022
from troth.crypto import KeyType
from troth.errors import CredentialError, CredentialFailure
from troth.identity import new_identity
from troth.vault import SoftwareVault

F = CredentialFailure
T = 1_780_000_000
READ = Attributes({"orders.access": "read"})


class World:
    """An authority (and its feed) and two members."""

    def __init__(self) -> None:
        self.vault = SoftwareVault()
        self.authority, self.alice, self.bob = (make_party(self.vault, now=T) for _ in range(3))
        self.verifier = ChainVerifier(TrustPolicy(frozenset({self.authority.identifier})))

    def verify(self, chain: bytes, presenter: Party, *, now: int = T) -> Any:
        feed = verified_feed(self.authority, now=now)
        return self.verifier.verify(
            chain, presenter=presenter.identifier, feeds={self.authority.identifier: feed}, now=now
        )

    def root(self, body: bytes) -> bytes:
        """A one-link chain of `body` (any bytes), signed by the authority's real key."""
        signer = self.authority.signer
        signed = SignedCredential(body, signer.sign(body), signer.attestation)
        return CredentialChain((signed,), (self.authority.identity.history,)).encode()

    def body(self, attributes: Attributes = READ) -> CredentialBody:
        return CredentialBody(
            b"\x56" * 16,
            self.alice.identifier,
            self.authority.identifier,
            attributes,
            T,
            T,
            T + 600,
            1,
            None,
        )


def _refused(call: Callable[[], object], *reasons: CredentialFailure) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        call()
    assert caught.value.reason in reasons, caught.value
    return caught.value


# -- signed bodies in another CBOR form: the bytes are signed, every other form refused --------

_READ_MAP = bytes.fromhex("a16d") + b"orders.access" + bytes.fromhex("64") + b"read"
_WRITE = bytes.fromhex("65") + b"write"
_FORMS: dict[str, Callable[[bytes], bytes]] = {
    # the attributes map indefinite-length
    "indefinite-map": lambda b: b.replace(_READ_MAP, b"\xbf" + _READ_MAP[1:] + b"\xff"),
    # the attributes map holding its key twice, the second wider (a last-wins reader's "write")
    "duplicate-key": lambda b: b.replace(
        _READ_MAP, b"\xa2" + _READ_MAP[1:] + _READ_MAP[1:-5] + _WRITE
    ),
    # the whole body behind the self-describing tag 55799
    "self-describe-tag": lambda b: b"\xd9\xd9\xf7" + b,
    # depth 1 (the body's last-but-one item) as 0x18 0x01, not shortest
    "long-depth": lambda b: b[:-2] + b"\x18\x01" + b[-1:],
    # depth 1 as a half-precision float 1.0
    "float-depth": lambda b: b[:-2] + b"\xf9\x3c\x00" + b[-1:],
    # depth as a bignum (tag 2) of 1
    "bignum-depth": lambda b: b[:-2] + b"\xc2\x41\x01" + b[-1:],
}


@pytest.mark.parametrize("form", sorted(_FORMS))
def test_a_signed_body_in_another_cbor_form_is_refused(form: str) -> None:
    """The authority's key signs a credential body in another CBOR form (an issuer, or whoever
    holds its signing key, crafting one that a lax reader takes otherwise: a duplicate key read
    last-wins widens the attributes). Every such body is refused, though its signature is
    good: a body has one byte form (troth.encoding.cbor)."""
    world = World()
    canonical = world.body().encode()
    assert canonical[-2:] == b"\x01\xf6"  # depth 1, no delegation: what the forms replace
    altered = _FORMS[form](canonical)
    assert altered != canonical
    world.verify(world.root(canonical), world.alice)  # the control
    _refused(lambda: world.verify(world.root(altered), world.alice), F.MALFORMED)


# -- attribute names and values: no normalization that could widen ----------------------------


@pytest.mark.parametrize(
    "name",
    ["Orders.access", "orders.acce\u0455s", "orders.\uff41ccess", "orders.access\n"],
    ids=["uppercase", "cyrillic-dze", "fullwidth-a", "trailing-newline"],
)
def test_an_attribute_name_not_in_its_one_form_is_refused_even_signed(name: str) -> None:
    """A body whose attribute name is a look-alike of a held one (uppercase, a confusable
    letter, a fullwidth one, a trailing newline a `$` regex would pass) is refused when read,
    though the authority signed it: names are lowercase ASCII, matched whole."""
    world = World()
    canonical = world.body().encode()
    altered = canonical.replace(b"orders.access", name.encode())
    if len(name.encode()) != len("orders.access"):  # the text header holds the length
        altered = altered.replace(
            bytes([0x60 + 13]) + name.encode(), bytes([0x60 + len(name.encode())]) + name.encode()
        )
    error = _refused(lambda: world.verify(world.root(altered), world.alice), F.MALFORMED)
    assert "invalid attribute name" in error.detail


def test_a_value_in_another_normal_form_is_not_the_value_held() -> None:
    """Values are compared as text, not normalized: a delegate of `café` (NFC) is refused one
    of `café` in NFD (another string a Unicode-normalizing policy engine would read alike,
    so neither side can be widened by normalization)."""
    world = World()
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    root = issue_credential(
        world.authority.signer,
        subject=world.alice.identifier,
        attributes=Attributes({"orders.customer": nfc}),
        now=T,
        ttl=600,
        depth=1,
    )
    chain = CredentialChain((root,), (world.authority.identity.history,))
    _refused(
        lambda: delegate(
            world.alice.signer,
            chain,
            subject=world.bob.identifier,
            attributes=Attributes({"orders.customer": nfd}),
            now=T,
            ttl=60,
            purpose="p",
        ),
        F.AMPLIFIED,
    )
    wider = Attributes({"orders.customer": nfd})
    forged = hand_link(
        world.alice, chain, world.bob.identifier, wider, now=T, expires_at=T + 60
    ).encode()
    error = _refused(lambda: world.verify(forged, world.bob), F.AMPLIFIED)
    assert error.link == 1


# -- a verification step that had no negative test ---------------------------------------------


def test_a_cached_chain_is_refused_once_its_issuers_identity_lapses() -> None:
    """`ChainVerifier` caches what depends on the bytes and re-checks the issuers' key
    validity on every call: an authority whose identity (its current change) is valid only to
    T + 600 issues to T + 600; verified (and cached) at T, the chain is refused at T + 601 as
    the issuer's key has lapsed (ISSUER_INVALID), though the link is still within its skew.
    A fresh verifier refuses it as well."""
    vault = SoftwareVault()
    primary, identity, _ = new_identity(vault, KeyType.ED25519, now=T, valid_for=600)
    signer = signer_as(vault, primary, identity, now=T, ttl=600)
    authority = Party(identity, primary, signer, primary)
    alice = make_party(vault, now=T)
    root = issue_credential(
        signer, subject=alice.identifier, attributes=READ, now=T, ttl=600, depth=0
    )
    chain = CredentialChain((root,), (identity.history,)).encode()
    policy = TrustPolicy(frozenset({authority.identifier}))
    verifier = ChainVerifier(policy)

    def verify(at: int, by: ChainVerifier) -> Any:
        feed = verified_feed(authority, now=T)
        feeds = {authority.identifier: feed}
        return by.verify(chain, presenter=alice.identifier, feeds=feeds, now=at)

    assert verify(T, verifier).expires_at == T + 600
    error = _refused(lambda: verify(T + 601, verifier), F.ISSUER_INVALID)
    assert "expired" in error.detail
    _refused(lambda: verify(T + 601, ChainVerifier(policy)), F.ISSUER_INVALID)


def test_a_vc_proof_naming_a_key_other_than_its_attested_one_is_refused() -> None:
    """A troth VC's proof names its verification method, and its attestation vouches for one
    key: the authority's proof naming another key id (a `did:troth` signing key of another
    hash, or a `did:key`) is refused (MALFORMED), though it signed the proof; the control
    names its own and verifies."""
    world = VcWorld()
    unsecured = {k: v for k, v in world.vc.items() if k != "proof"}
    options = {k: v for k, v in world.vc["proof"].items() if k not in ("proofValue", "@context")}
    own = options["verificationMethod"]
    resolve = troth_resolver(world.authority.identity, at=NOW)
    for method in (own[:-1] + ("0" if own[-1] != "0" else "1"), "did:key:z6Mk#z6Mk", own + "#"):
        document = sign_eddsa_jcs_2022(
            unsecured, {**options, "verificationMethod": method}, world.authority.signer.sign
        )
        with pytest.raises(CredentialError) as caught:
            verify_eddsa_jcs_2022(document, resolve)
        assert caught.value.reason is F.MALFORMED, caught.value
        assert "not the attested key" in caught.value.detail
    document = sign_eddsa_jcs_2022(unsecured, options, world.authority.signer.sign)
    assert verify_eddsa_jcs_2022(document, resolve) == unsecured


def test_a_context_appended_after_signing_is_not_what_verifies() -> None:
    """Data Integrity lets a document's `@context` extend the proof's (vc-di-eddsa §3.3.2:
    the document's must start with the proof's, which replaces it): a context appended after
    signing leaves the proof valid, so two documents share it. The verifier reports what was
    signed, the appended context dropped; one put before the signed context is refused."""
    world = VcWorld()
    signed_context = world.vc["@context"]
    appended = {**world.vc, "@context": [*signed_context, "https://attacker.example/ctx"]}
    resolve = troth_resolver(world.authority.identity, at=NOW)
    assert verify_eddsa_jcs_2022(appended, resolve)["@context"] == signed_context
    assert world.verify(appended).attributes == world.verify().attributes
    prepended = {**world.vc, "@context": ["https://attacker.example/ctx", *signed_context]}
    _refused(lambda: verify_eddsa_jcs_2022(prepended, resolve), F.MALFORMED)


# -- chain length at and over the limit, signed by hand ----------------------------------------


def _hand_chain(world: World, links: int, root_depth: int) -> tuple[bytes, Party]:
    """A chain of `links` credentials, the root issued to a new party and each link below it
    signed by hand (`hand_link`, depth one less each link, never below 0), and its last
    subject."""
    holders = [make_party(world.vault, now=T) for _ in range(links)]
    root = issue_credential(
        world.authority.signer,
        subject=holders[0].identifier,
        attributes=READ,
        now=T,
        ttl=600,
        depth=root_depth,
    )
    chain = CredentialChain((root,), (world.authority.identity.history,))
    for index, (issuer, holder) in enumerate(itertools.pairwise(holders)):
        depth = max(root_depth - index - 1, 0)
        chain = hand_link(
            issuer, chain, holder.identifier, READ, now=T, expires_at=T + 600, depth=depth
        )
    return chain.encode(), holders[-1]


def test_a_chain_at_the_limit_verifies_and_one_past_it_is_refused_unread() -> None:
    """MAX_DELEGATION_LINKS links below the root (a root of depth MAX_DELEGATION_LINKS) verify;
    one more credential, every link signed by its issuer, is refused as over a limit when
    decoded (before a signature is checked), and a root signed with a depth past the limit is
    malformed."""
    world = World()
    most = limits.MAX_DELEGATION_LINKS
    at_limit, last = _hand_chain(world, most + 1, most)
    assert len(world.verify(at_limit, last).links) == most + 1
    over, last = _hand_chain(world, most + 2, most)
    _refused(lambda: world.verify(over, last), F.OVER_LIMIT)
    body = world.body().encode()
    deep = body[:-2] + bytes([most + 1]) + body[-1:]  # depth 9, the authority's signature
    _refused(lambda: world.verify(world.root(deep), world.alice), F.MALFORMED)


@pytest.mark.parametrize(
    "text",
    [
        "\u0662\u0660\u0662\u0666-09-21T12:00:00Z",
        "2026-09-21T12:00:00\uff3a",
        "2026-09-21 12:00:00Z",
    ],
    ids=["arabic-indic-digits", "fullwidth-z", "space"],
)
def test_a_vc_date_in_other_digits_or_letters_is_malformed(text: str) -> None:
    """The xsd:dateTimeStamp pattern's `\\d` matches any Unicode digit: a `validUntil` in
    Arabic-Indic digits (a form no other verifier reads alike) is still refused, as are other
    look-alikes of the one form."""
    world = VcWorld()
    unsecured = {k: v for k, v in world.vc.items() if k != "proof"}
    document = world.resigned({**unsecured, "validUntil": text})
    _refused(lambda: world.verify(document), F.MALFORMED)
