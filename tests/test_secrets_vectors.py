"""Leased-secret golden vectors: fixed keys give exactly the stored values, and the stored token
and sealed blob are read by code that is not troth's (PyJWT, hashlib) or by the vault."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jwt

from tests.vectors.secrets.generate import build
from troth.crypto import Aead, AeadAlgorithm
from troth.secrets import Jwks, LeaseId, validate_token
from troth.vault import SealKey, SoftwareVault

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "secrets" / "secret_vectors.json").read_text()
)["vectors"]


def test_regenerates_byte_for_byte() -> None:
    assert build() == VECTOR


def test_lease_handle_is_the_documented_hash() -> None:
    lease = VECTOR["lease"]
    raw = bytes.fromhex(lease["id"])
    digest = hashlib.sha256(b"troth.lease.handle/2\x00" + raw).digest()
    assert int.from_bytes(raw[:8], "big") == lease["locator"]
    assert lease["locator"] >> 28 == VECTOR["token"]["issued_at"]  # the issue second
    assert jwt.utils.base64url_encode(raw[:8] + digest[:8]).decode() == lease["handle"]
    assert digest[8:24].hex() == lease["proof"]
    parsed = LeaseId.parse(lease["text"])
    assert parsed.reveal() == raw
    assert str(parsed.handle) == lease["handle"]


def test_stored_token_validates_with_pyjwt_and_troth() -> None:
    vector = VECTOR["token"]
    key = jwt.PyJWK.from_dict(vector["jwk"])
    claims = jwt.decode(
        vector["token"],
        key,
        algorithms=["EdDSA"],
        audience="payments",
        options={"verify_exp": False, "verify_iat": False},
    )
    ids = vector["identities"]
    did = {name: "did:troth:" + text[1:] for name, text in ids.items()}
    assert claims["sub"] == did["agent"]
    assert claims["act"] == {"sub": did["orchestrator"], "act": {"sub": did["user"]}}
    assert claims["jti"] == VECTOR["lease"]["handle"]
    checked = validate_token(
        vector["token"],
        Jwks.parse({"keys": [vector["jwk"]]}),
        audience="payments",
        now=vector["issued_at"] + 1,
    )
    assert checked.actors == (did["orchestrator"], did["user"])


def test_stored_sealed_blob_unseals_in_the_software_vault() -> None:
    vector = VECTOR["sealed"]
    vault = SoftwareVault()
    key = SealKey.parse(vector["seal_key_handle"])
    # test-only key injection (like tests/support/fixed_vault.py): the vault has no import API
    vault._seal_keys[key.key_id] = (  # its values: one (review 55d, vault 1)
        Aead(AeadAlgorithm.AES_256_GCM, bytes.fromhex(vector["seal_key"])),
    )
    plaintext = vault.unseal(key, bytes.fromhex(vector["sealed"]), bytes.fromhex(vector["aad"]))
    assert plaintext == bytes.fromhex(vector["plaintext"])
