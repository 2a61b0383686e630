"""Review 45d: attacks on identity, vault and credentials that the code already refuses.
Each test pins the defence it found."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cbor2
import pytest

from tests.conftest import NOW
from tests.support.parties import make_party
from troth import limits
from troth.credentials import Attributes
from troth.credentials.format import CredentialBody
from troth.credentials.issue import check_fits
from troth.credentials.vc import export_credential_vc
from troth.crypto import KeyType
from troth.encoding.ijson import load_json
from troth.errors import ConfigError, CredentialError, DecodeError, IdentityError, VaultError
from troth.errors import IdentityFailure as IF
from troth.identity import Identifier, verify_history
from troth.identity.change import ChangeBody, SignedChange, encode_history, next_key_digest
from troth.identity.create import new_identity, rotate_identity
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import KeyPurpose, SoftwareVault

KEK = bytes(range(32))


def test_the_largest_attributes_an_authority_grants_fit_a_vc_every_verifier_reads() -> None:
    """Refuted: "a VC exported for attributes `check_fits` admits is bigger than
    MAX_VC_BYTES, so the authority issues what no verifier reads". JSON escapes a control
    character in six bytes (CBOR: one) and the CLI writes the VC indented (`json.dumps(...,
    indent=2)`, `troth credential issue --format vc`), yet the worst case found (every set
    value one or two control characters, the CBOR budget filled) stays under the limit, by
    about 1%: this pins that margin."""
    pool = [chr(c) for c in range(1, 32)] + [chr(1) + chr(c) for c in range(1, 34)]
    items: dict[str, frozenset[str]] = {}
    full = False
    for n in range(limits.MAX_ATTRIBUTES):
        values: list[str] = []
        for value in pool:
            try:
                check_fits(Attributes({**items, f"a.k{n:02d}": frozenset([*values, value])}))
            except CredentialError:
                full = True
                break
            values.append(value)
        if values:
            items[f"a.k{n:02d}"] = frozenset(values)
        if full:
            break
    party = make_party(SoftwareVault(), now=NOW)
    document = export_credential_vc(
        party.signer,
        credential_id=bytes(16),
        subject=Identifier(bytes(32)),
        attributes=Attributes(items),
        valid_from=NOW,
        valid_until=party.signer.expires_at,  # as long as it signs (review 75l, issuance 2)
        now=NOW,
    )
    written = json.dumps(document, indent=2).encode() + b"\n"
    assert len(written) > 60_000  # the case is the worst one, not a small one
    assert load_json(written, max_bytes=limits.MAX_VC_BYTES, what="VC") == document


def _credential_body(attributes_cbor: bytes) -> bytes:
    """A credential body whose attributes map is `attributes_cbor` exactly as given."""
    marker = {"z.marker": "m"}
    body = CredentialBody(
        bytes(16),
        Identifier(bytes(32)),
        Identifier(bytes([1]) * 32),
        Attributes(marker),
        NOW,
        NOW,
        NOW + 60,
        1,
        None,
    ).encode()
    encoded_marker = cbor2.dumps(marker, canonical=True)
    assert body.count(encoded_marker) == 1
    return body.replace(encoded_marker, attributes_cbor)


@pytest.mark.parametrize(
    "attributes",
    [
        # a duplicate key: a decoder keeping the last value would see "admin"
        b"\xa2"
        + cbor2.dumps("app.role")
        + cbor2.dumps("user")
        + cbor2.dumps("app.role")
        + cbor2.dumps("admin"),
        # keys out of canonical order
        b"\xa2" + cbor2.dumps("b.x") + cbor2.dumps("1") + cbor2.dumps("a.x") + cbor2.dumps("1"),
        # a set value not sorted, or with a duplicate (a set of one read as two)
        b"\xa1" + cbor2.dumps("app.role") + cbor2.dumps(["user", "admin"]),
        b"\xa1" + cbor2.dumps("app.role") + cbor2.dumps(["user", "user"]),
        # a key in another case or script than the parent's (a look-alike, U+0430)
        b"\xa1" + cbor2.dumps("App.role") + cbor2.dumps("admin"),
        b"\xa1" + cbor2.dumps("\u0430pp.role") + cbor2.dumps("admin"),
        # a non-shortest length header for the key
        b"\xa1" + b"\x78\x08" + b"app.role" + cbor2.dumps("admin"),
    ],
)
def test_attribute_maps_that_could_read_two_ways_are_refused(attributes: bytes) -> None:
    """Refuted: widening a delegation through attribute-name tricks. Every map whose keys or
    sets could be read two ways (duplicates, order, case, look-alike script, a long header)
    is refused when the body is decoded, before narrowing compares anything."""
    with pytest.raises(DecodeError):
        CredentialBody.decode(_credential_body(attributes))


def test_a_thief_of_the_committed_next_key_alone_cannot_rotate() -> None:
    """Refuted: a stolen pre-rotation key (the committed next key) without the current key.
    The thief reveals it in a change of their own, but a rotation needs the current key's
    signature too: with none, or with a key of the thief's, every verifier refuses it."""
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=NOW, valid_for=86_400)
    thief_next = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    body = ChangeBody(
        1,
        held.identity.current_change_hash,
        vault.public_key(held.next_key),
        next_key_digest(vault.public_key(thief_next)),
        NOW + 1,
        NOW + 1,
        NOW + 86_400,
    ).encode()
    signature = vault.sign(held.next_key, body)
    first = held.identity.changes[0].signed
    stranger = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    for previous, reason in (
        (None, IF.MISSING_PREVIOUS_SIGNATURE),
        (vault.sign(stranger, body), IF.BAD_PREVIOUS_SIGNATURE),
        (bytes(64), IF.BAD_PREVIOUS_SIGNATURE),
    ):
        forged = encode_history([first, SignedChange(body, signature, previous)])
        with pytest.raises(IdentityError) as raised:
            verify_history(forged, now=NOW + 2)
        assert raised.value.reason is reason


def test_replayed_duplicated_and_reordered_changes_are_refused() -> None:
    """Refuted: a rotation shown twice, changes swapped, or one left out: each change names
    its position and its predecessor's hash, so only the one order verifies."""
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=NOW, valid_for=86_400)
    held = rotate_identity(
        vault, held.identity, held.primary, held.next_key, now=NOW + 1, valid_for=86_400
    )
    held = rotate_identity(
        vault, held.identity, held.primary, held.next_key, now=NOW + 2, valid_for=86_400
    )
    c0, c1, c2 = (change.signed for change in held.identity.changes)
    verify_history(encode_history([c0, c1, c2]), now=NOW + 3)
    for changes in ([c0, c1, c1], [c0, c2, c1], [c0, c2], [c1, c2], [c0, c1, c2, c2]):
        with pytest.raises(IdentityError) as raised:
            verify_history(encode_history(changes), now=NOW + 3)
        assert raised.value.reason is IF.BROKEN_LINK


def test_no_vault_failure_names_a_key_or_the_kek(tmp_path: Path) -> None:
    """Refuted: key bytes in an exception message or repr. A tampered sealed row, a row moved
    to another key's number, a wrong KEK: every error names the handle only, and neither
    the vault nor its cached key objects print a byte of a key."""
    path = tmp_path / "v.db"
    db = SqliteDatabase(path)
    vault = SoftwareVault(SqliteKeyStore(db), KEK)
    with db.transaction():
        a = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
        b = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    raw = {key_id: key.private_bytes() for key_id, key in vault._cache.items()}
    shown = repr(vault) + repr(vault.__dict__) + repr(list(vault._cache.values()))
    db.close()
    with sqlite3.connect(path) as conn:  # b's sealed key moved onto a's row
        sealed_b = conn.execute(
            "SELECT sealed FROM vault_keys WHERE key_id = ?", (int(b.key_id, 16),)
        ).fetchone()[0]
        conn.execute(
            "UPDATE vault_keys SET sealed = ? WHERE key_id = ?", (sealed_b, int(a.key_id, 16))
        )
    messages = [shown]
    db = SqliteDatabase(path)
    reopened = SoftwareVault(SqliteKeyStore(db), KEK)
    with pytest.raises(VaultError) as moved:
        reopened.sign(a, b"data")
    messages.append(str(moved.value))
    with pytest.raises(ConfigError) as wrong:
        SoftwareVault(SqliteKeyStore(db), bytes(32))
    messages.append(str(wrong.value))
    db.close()
    text = "\n".join(messages)
    for secret in [*raw.values(), KEK]:
        for form in (secret.hex(), repr(secret), secret.hex().upper()):
            assert form not in text
