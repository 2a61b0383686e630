"""A batch's first changes are encoded from one template (`FirstChanges`): byte for byte what
`ChangeBody.encode` and `encode_history` write, for every key type and window; and what a batch
stores reads back as it was made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.conftest import NOW
from troth.crypto import KeyType, PublicKey
from troth.errors import IdentityError, IdentityFailure, InvalidKey
from troth.identity import verify_history
from troth.identity.change import ChangeBody, FirstChanges, SignedChange, encode_history
from troth.identity.create import new_identities, new_identity
from troth.node import init_node, open_node
from troth.vault import SoftwareVault

UINT = st.integers(min_value=0, max_value=(1 << 64) - 1)
SIGNING_TYPES = st.sampled_from([KeyType.ED25519, KeyType.P256])


def _key(key_type: KeyType, data: bytes) -> PublicKey:
    if key_type is KeyType.P256:
        data = b"\x04" + data[1:]
    return PublicKey(key_type, data)


@settings(max_examples=200)
@given(
    key_type=SIGNING_TYPES,
    window=st.tuples(UINT, UINT, UINT),
    seed=st.binary(min_size=65, max_size=65),
    digest=st.binary(min_size=32, max_size=32),
    signature=st.binary(min_size=0, max_size=80),
)
def test_the_template_writes_what_the_encoder_writes(
    key_type: KeyType,
    window: tuple[int, int, int],
    seed: bytes,
    digest: bytes,
    signature: bytes,
) -> None:
    first = FirstChanges(key_type, *window)
    try:
        key = _key(key_type, seed[: key_type.public_length])
    except InvalidKey:  # a small-order Ed25519 encoding: no key
        assume(False)
        raise
    body, encoded = first.body(key, digest)
    assert body == ChangeBody(0, None, key, digest, *window)
    assert encoded == body.encode()
    signed = SignedChange(encoded, signature, None)
    assert first.history(signed) == encode_history([signed])
    again = SignedChange(encoded, bytes(reversed(signature)), None)  # the cached template
    assert first.history(again) == encode_history([again])


def test_values_off_the_template_are_encoded_as_ever() -> None:
    """Another key type, a digest of another length, a rotation's signed change: the encoder
    runs (the template only fits the batch's own values)."""
    first = FirstChanges(KeyType.ED25519, NOW, NOW, NOW + 10)
    p256 = _key(KeyType.P256, os.urandom(65))
    body, encoded = first.body(p256, bytes(32))
    assert encoded == body.encode()
    ed = _key(KeyType.ED25519, os.urandom(32))
    body, encoded = first.body(ed, bytes(31))
    assert encoded == body.encode()
    rotated = SignedChange(os.urandom(150), os.urandom(64), os.urandom(64))
    assert first.history(rotated) == encode_history([rotated])


def test_a_window_the_format_cannot_carry_is_refused_as_before() -> None:
    # refused by the maker before a key is generated (review 45d, identity 1), not by the
    # CBOR encoder after both were (a DecodeError, MALFORMED, before)
    vault = SoftwareVault()
    with pytest.raises(IdentityError) as raised:
        new_identity(vault, KeyType.ED25519, now=NOW, valid_for=1 << 64)
    assert raised.value.reason is IdentityFailure.KEY_OUTSIDE_VALIDITY
    with pytest.raises(IdentityError) as raised:
        list(new_identities(vault, KeyType.ED25519, 3, now=NOW, valid_for=1 << 64))
    assert raised.value.reason is IdentityFailure.KEY_OUTSIDE_VALIDITY
    assert not vault._cache


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_batch_identities_verify_and_match_their_keys(key_type: KeyType) -> None:
    vault = SoftwareVault()
    made = list(new_identities(vault, key_type, 20, now=NOW, valid_for=1000))
    assert len({held.identity.identifier for held in made}) == 20
    for held in made:
        verified = verify_history(held.identity.history, now=NOW)
        assert verified.identifier == held.identity.identifier
        assert verified.current_key == vault.public_key(held.primary)
        assert verified.current.body == held.identity.current.body
        assert held.identity.current.signed.body == held.identity.current.body.encode()


def test_a_batch_reads_back_byte_for_byte(troth_home: Path) -> None:
    """Rows are bound as the sqlite3 module's fast types (bytearray, NULL written in the
    statement): what is read back is bytes, equal to what was made, names NULL or kept."""
    init_node("n")
    with open_node("n") as node:
        anonymous = node.identities.create_many(3, now=NOW)
        named = node.identities.create_many(3, now=NOW, name_prefix="x")
    with open_node("n") as node:
        records = {r.identifier: r for r in node.identities.list_local()}
        for local in [*anonymous, *named]:
            record = records[local.identifier.digest]
            assert type(record.identifier) is bytes
            assert type(record.history) is bytes
            assert record.history == local.identity.history
            assert record.name == local.name
            key = node.vault.public_key(local.primary_key)
            assert key == local.identity.current_key
        assert node.db.fetch_one("SELECT typeof(name) FROM identities LIMIT 1")[0] == "null"
        assert node.db.fetch_one("SELECT typeof(sealed) FROM vault_keys LIMIT 1")[0] == "blob"
