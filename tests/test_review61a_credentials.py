"""Review 61a (credentials and delegation, adversarially).

1. `CredentialWallet.hold` (`troth credential import FILE`, and a refresh's answer) stored the
   chain's expiry as it is signed: a credential may expire as late as 2**64 - 1 (a CBOR
   unsigned integer; its issuer's signing-key attestation as late), and a chain whose root
   expires at 2**63 or later failed with a bare OverflowError from SQLite instead of being
   held. The held row's expiry is now capped at the largest a store holds (2**63 - 1: no
   clock reads later, so the chain orders and expires as it would).
2. `export_credential_vc` (and `xsd_datetime`) failed with a bare ValueError, OSError or
   OverflowError (by platform and size) for a window past 9999-12-31, what an xsd:dateTime
   carries: a signer attested for longer, or a long `valid_until`, could not export. The
   window's times are now checked first: CredentialError MALFORMED, as for a window that
   ends before it starts (review 56a, credentials 3).
4. `issue_credential` and `delegate` signed what no verifier reads when given a `credential_id`
   of 16 that is not bytes (a str of 16 characters, a list of 16 numbers, a memoryview): the
   body checked only its length, CBOR encoded a text string or an array, and every verifier
   refuses the credential as malformed (review 56a, credentials 1, for numbers). A `subject` or
   `attributes` of another type failed with a bare AttributeError. Each is now an
   ArgumentError before anything is signed (a bytearray id is taken as its bytes), a body
   refuses an id that is not bytes (ValueError, as for one not 16 bytes long), and a
   `Delegation` a parent that is not bytes, a purpose or caveat that is not text (in bytes:
   signed as CBOR bytes).
5. A revocation entry took a target of 32 that is not bytes (a str of 32 characters, as
   `troth.authority.Authority.revoke_credential` was given one), or a reason in bytes: the
   authority appended it, encoded as CBOR text (bytes), and every verifier refused its feed
   from then on (`revocation feed invalid`: target, expected a byte string), for good, the
   feed being append-only: every chain of the authority failed closed. `RevocationEntry` (and
   `Supersession`) now refuse a field that is not of the type a reader takes (ValueError, as
   for a target not 32 bytes long), so nothing is written.
6. A VC's `proofValue` was base58-decoded whatever its length, before its key was resolved:
   base58 decoding takes time that grows with the square of the text (~4 s for 40,000
   characters here), and a VC naming any trusted issuer (free to write) with one proofValue
   filling MAX_VC_BYTES cost a verifier (`troth credential verify --format vc`,
   `verify_troth_vc`) seconds of CPU each. An eddsa-jcs-2022 proofValue is "z" and the base58
   of a 64-byte signature, at most 89 characters (`limits.MAX_PROOF_VALUE_CHARS`): longer is
   refused (`bad signature`) before decoding, as a did:key Multikey is
   (MAX_ED25519_MULTIKEY_CHARS).
3. (fixed by the lead in troth/node/vouchers.py) A node that verifies a
   chain whose root, issued by an authority it trusts, expires at 2**63 or later (a signing key
   attested that long: the library's `issue_credential`) records the root as a voucher with
   that expiry, and `Vouchers.vouch` fails with SQLite's OverflowError (at a handshake: the
   peer's channel fails with an internal error). The fix: the row's expiry capped at
   `STORED_LATEST`, as a held chain's (1).
"""

from __future__ import annotations

import copy
import types
from pathlib import Path
from typing import Any

import base58
import pytest

from tests.support.parties import Party, make_party, verified_feed
from tests.test_credentials_vc import VcWorld
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationEntry,
    RevocationKind,
    Supersession,
    TrustPolicy,
    delegate,
    issue_credential,
    vc,
    verify_feed,
)
from troth.credentials.format import (
    STORED_LATEST,
    CredentialBody,
    Delegation,
    SignedCredential,
)
from troth.credentials.vc import export_credential_vc, xsd_datetime
from troth.errors import ArgumentError, CredentialError, CredentialFailure
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.node.vouchers import Vouchers
from troth.storage.sqlite import SqliteDatabase
from troth.storage.sqlite_vouchers import SqliteVoucherStore
from troth.vault import SoftwareVault

T = 1_780_000_000
LAST = 2**64 - 1  # the latest time a credential's body carries
READ = Attributes({"orders.access": "read"})


def latest_chain(authority: Party, subject: Identifier) -> bytes:
    """`authority`'s credential for `subject` expiring at 2**64 - 1, the latest a body carries
    (`authority` a signing key attested as long, and a primary key as long: review 75g caps
    a credential at it)."""
    credential = issue_credential(
        authority.signer, subject=subject, attributes=READ, now=T, ttl=LAST - T, depth=1
    )
    assert CredentialBody.decode(credential.body).expires_at == LAST
    return CredentialChain((credential,), (authority.identity.history,)).encode()


def test_a_chain_expiring_past_2_63_is_held(tmp_path: Path) -> None:
    authority = make_party(SoftwareVault(), now=T, signing_ttl=LAST - T, valid_for=LAST - T)
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        chain = latest_chain(authority, me.identifier)
        held = node.wallet.hold("me", chain, now=T + 5)
        assert held.expires_at == LAST
        (row,) = node.wallet.held("me")
        assert row.chain == chain
        assert row.expires_at == STORED_LATEST == 2**63 - 1
        assert node.wallet.best("me", now=T + 5) == chain


@pytest.mark.parametrize("valid_until", [253_402_300_800, 2**40, 2**62, LAST])
def test_a_vc_window_past_year_9999_is_a_credential_error(valid_until: int) -> None:
    vault = SoftwareVault()
    authority, member = (make_party(vault, now=T) for _ in range(2))
    with pytest.raises(CredentialError) as caught:
        export_credential_vc(
            authority.signer,
            credential_id=bytes(16),
            subject=member.identifier,
            attributes=READ,
            valid_from=T,
            valid_until=valid_until,
            now=T,
        )
    assert caught.value.reason is CredentialFailure.MALFORMED
    with pytest.raises(CredentialError):
        xsd_datetime(valid_until)
    assert xsd_datetime(253_402_300_799) == "9999-12-31T23:59:59Z"  # the last one it carries


def test_a_voucher_of_a_root_expiring_past_2_63_is_recorded(tmp_path: Path) -> None:
    vault = SoftwareVault()
    authority = make_party(vault, now=T, signing_ttl=LAST - T, valid_for=LAST - T)
    member = make_party(vault, now=T)
    chain = latest_chain(authority, member.identifier)
    feeds = {authority.identifier: verified_feed(authority, now=T + 5)}
    verified = ChainVerifier(TrustPolicy(frozenset({authority.identifier}))).verify(
        chain, presenter=member.identity, feeds=feeds, now=T + 5
    )
    assert verified.expires_at == LAST
    vouchers = Vouchers(
        SqliteVoucherStore(SqliteDatabase(tmp_path / "node.db")),
        feeds=lambda: feeds,
        stored_changes=lambda identifier: None,
    )
    vouchers.load()
    assert vouchers.vouch(member.identifier, [verified])
    assert vouchers.of(member.identifier) == {authority.identifier}


ID_NOT_BYTES = ["0123456789abcdef", [0] * 16, memoryview(bytes(16))]


def _made(make: str, **changed: Any) -> object:
    vault = SoftwareVault()
    authority, member, other = (make_party(vault, now=T) for _ in range(3))
    root = issue_credential(
        authority.signer, subject=member.identifier, attributes=READ, now=T, ttl=600, depth=1
    )
    if make == "issue":
        arguments: dict[str, Any] = {"subject": member.identifier, "attributes": READ, **changed}
        return issue_credential(authority.signer, now=T, ttl=60, depth=1, **arguments)
    chain = CredentialChain((root,), (authority.identity.history,))
    arguments = {"subject": other.identifier, "attributes": READ, **changed}
    return delegate(member.signer, chain, now=T, ttl=60, purpose="p", **arguments)


@pytest.mark.parametrize("make", ["issue", "delegate"])
@pytest.mark.parametrize(
    "changed",
    [
        *({"credential_id": value} for value in ID_NOT_BYTES),
        {"subject": "T" + "00" * 32},
        {"attributes": {"orders.access": "read"}},
    ],
)
def test_a_maker_refuses_what_is_not_its_type(make: str, changed: dict[str, Any]) -> None:
    with pytest.raises(ArgumentError):
        _made(make, **changed)


def test_a_body_refuses_an_id_that_is_not_bytes() -> None:
    nobody = Identifier(bytes(32))
    with pytest.raises(ValueError, match="16 bytes"):
        CredentialBody("0123456789abcdef", nobody, nobody, READ, T, T, T, 0, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("parent", "purpose", "caveats"),
    [("x" * 32, "p", ()), (bytes(32), b"p", ()), (bytes(32), "p", (b"true",))],
)
def test_a_delegation_refuses_what_a_reader_does_not_take(
    parent: object, purpose: object, caveats: tuple[object, ...]
) -> None:
    with pytest.raises(ValueError, match=r"32 bytes|text"):
        Delegation(parent, purpose, caveats)  # type: ignore[arg-type]


def test_a_bytearray_id_is_taken_as_its_bytes() -> None:
    made = _made("issue", credential_id=bytearray(b"\x07" * 16))
    assert isinstance(made, SignedCredential)
    assert CredentialBody.decode(made.body).id == b"\x07" * 16


def test_a_revocation_of_a_target_not_bytes_leaves_the_feed_readable(tmp_path: Path) -> None:
    init_node("auth", home=tmp_path)
    with open_node("auth", home=tmp_path) as node:
        authority = node.create_authority("acme", now=T)
        with pytest.raises(ValueError, match="32 bytes"):
            authority.revoke_credential("x" * 32, now=T + 1)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="reason text"):
            authority.revoke_credential(b"\x02" * 32, now=T + 1, reason=b"oops")  # type: ignore[arg-type]
        assert authority.revoke_credential(b"\x01" * 32, now=T + 2) == 0
        page = authority.feed(now=T + 3)
        feed = verify_feed(page, authority=authority.identifier, now=T + 3, max_staleness=60)
        assert feed.count == 1
        assert b"\x01" * 32 in feed.revoked_credentials


@pytest.mark.parametrize("target", ["x" * 32, memoryview(bytes(32)), bytearray(32)])
def test_a_revocation_entry_refuses_a_target_not_bytes(target: object) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        RevocationEntry(0, RevocationKind.CREDENTIAL, target, Identifier(bytes(32)), T, "")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("seq", True), ("revoked_at", 1.5), ("revoked_by", bytes(32)), ("reason", b"oops")],
)
def test_a_revocation_entry_refuses_a_field_of_another_type(field: str, value: object) -> None:
    fields: dict[str, Any] = {
        "seq": 0,
        "kind": RevocationKind.CREDENTIAL,
        "target": bytes(32),
        "revoked_by": Identifier(bytes(32)),
        "revoked_at": T,
        "reason": "",
        field: value,
    }
    with pytest.raises(ValueError, match="integers"):
        RevocationEntry(**fields)
    with pytest.raises(ValueError, match="change hash"):
        Supersession(2, "x" * 32)  # type: ignore[arg-type]


def test_a_long_proof_value_is_refused_before_it_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = VcWorld()
    decoded: list[int] = []

    def spy(text: str | bytes) -> bytes:
        decoded.append(len(text))
        return base58.b58decode(text)

    monkeypatch.setattr(vc, "base58", types.SimpleNamespace(b58decode=spy))
    world.verify()  # the proof as made: decoded (88 characters at most)
    assert decoded
    assert max(decoded) <= 88
    decoded.clear()
    long = copy.deepcopy(world.vc)
    long["proof"]["proofValue"] = "z" + "2" * 5_000
    with pytest.raises(CredentialError) as caught:
        world.verify(long)
    assert caught.value.reason is CredentialFailure.BAD_SIGNATURE
    assert decoded == []
