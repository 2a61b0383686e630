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
