"""Golden vectors: fixed keys give exactly the stored bytes, and the stored bytes verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.vectors.identity.generate import build
from troth.crypto import KeyType
from troth.identity import Identifier, verify_attestation, verify_history
from troth.vault import KeyPurpose

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "vectors" / "identity" / "identity_vectors.json").read_text()
)["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["key_type"])
def test_regenerates_byte_for_byte(vector: dict[str, Any]) -> None:
    assert build(vector["key_type"]) == vector


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["key_type"])
def test_stored_bytes_verify(vector: dict[str, Any]) -> None:
    now = vector["rotated_at"] + 3600
    one = verify_history(bytes.fromhex(vector["history1"]), now=now)
    two = verify_history(bytes.fromhex(vector["history2"]), now=now)
    assert str(one.identifier) == str(two.identifier) == vector["identifier"]
    assert two.identifier.did == vector["did"]
    assert (
        Identifier.parse(vector["did"]) == Identifier.parse(vector["identifier"]) == two.identifier
    )
    assert two.current_key.key_type is KeyType.from_label(vector["key_type"])
    assert two.changes[0].signed.body.hex() == vector["change0_body"]
    assert two.changes[1].signed.previous_signature is not None
    attested = verify_attestation(
        two,
        bytes.fromhex(vector["channel_attestation"]),
        purpose=KeyPurpose.SECURE_CHANNEL,
        now=now,
    )
    assert attested.key.key_type is KeyType.X25519


def test_identifier_is_sha256_of_first_body() -> None:
    import hashlib

    for vector in VECTORS:
        digest = hashlib.sha256(bytes.fromhex(vector["change0_body"])).hexdigest()
        assert vector["identifier"] == "T" + digest


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["key_type"])
def test_next_key_digests_commit_to_the_listed_keys(vector: dict[str, Any]) -> None:
    """Change i commits to SHA-256("troth.identity.next-key/1" 0x00 || CBOR [type, key]) of
    private key i+1's public key (formats.md, "Pre-rotation and stored histories")."""
    import hashlib

    from troth.crypto.private import load_private_key
    from troth.encoding import cbor

    key_type = KeyType.from_label(vector["key_type"])
    publics = [
        load_private_key(key_type, bytes.fromhex(raw)).public_key for raw in vector["private_keys"]
    ]
    for change, key in (("change0", publics[1]), ("change1", publics[2])):
        encoded = cbor.encode([int(key.key_type), key.data])
        digest = hashlib.sha256(b"troth.identity.next-key/1\x00" + encoded).hexdigest()
        assert vector[f"{change}_next_key_digest"] == digest
    two = verify_history(bytes.fromhex(vector["history2"]), now=vector["rotated_at"])
    assert two.current_key == publics[1]  # the rotation revealed the committed key


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["key_type"])
def test_checkpointed_history(vector: dict[str, Any]) -> None:
    """`history2_from_change1`: the same identity presented from change 1, its checkpoint
    naming the listed authority (formats.md, "Checkpointed histories")."""
    import hashlib

    from troth.errors import IdentityError, IdentityFailure
    from troth.identity import Checkpoint

    now = vector["rotated_at"] + 3600
    data = bytes.fromhex(vector["history2_from_change1"])
    change1 = hashlib.sha256(bytes.fromhex(vector["change1_body"])).digest()
    expected = Checkpoint(
        Identifier.parse(vector["identifier"]).digest,
        bytes.fromhex(vector["checkpoint_authority"]),
        1,
    )
    seen: list[tuple[Checkpoint, bytes]] = []

    def attests(checkpoint: Checkpoint, change_hash: bytes) -> bool:
        seen.append((checkpoint, change_hash))
        return True

    identity = verify_history(data, now=now, checkpoints=attests)
    assert seen == [(expected, change1)]
    assert str(identity.identifier) == vector["identifier"]
    assert identity.history == data
    assert (
        identity.current_key
        == verify_history(bytes.fromhex(vector["history2"]), now=now).current_key
    )
    with pytest.raises(IdentityError) as caught:
        verify_history(data, now=now)
    assert caught.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
