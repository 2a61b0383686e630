"""Noise XX against the published vectors (cacophony and snow), both cipher suites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from troth.channel.noise import CipherState, HandshakeState
from troth.crypto import KeyType
from troth.crypto.aead import Aead, AeadAlgorithm
from troth.crypto.private import PrivateKey, load_private_key

FOLDER = Path(__file__).parent / "vectors" / "noise"
VECTORS: list[dict[str, Any]] = [
    {**vector, "file": path.name}
    for path in sorted(FOLDER.glob("*.json"))
    for vector in json.loads(path.read_text())["vectors"]
]


def _key(hex_text: str) -> PrivateKey:
    """A vector's raw X25519 key as a test-only software key (troth's vault never exports)."""
    return load_private_key(KeyType.X25519, bytes.fromhex(hex_text))


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['file']}:{v['protocol_name']}")
def test_vector(vector: dict[str, Any]) -> None:
    name = vector["protocol_name"]
    initiator = HandshakeState(
        name,
        initiator=True,
        prologue=bytes.fromhex(vector["init_prologue"]),
        static=_key(vector["init_static"]),
        ephemeral=_key(vector["init_ephemeral"]),
    )
    responder = HandshakeState(
        name,
        initiator=False,
        prologue=bytes.fromhex(vector["resp_prologue"]),
        static=_key(vector["resp_static"]),
        ephemeral=_key(vector["resp_ephemeral"]),
    )
    messages = vector["messages"]
    for index, message in enumerate(messages[:3]):
        writer, reader = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        payload = bytes.fromhex(message["payload"])
        ciphertext = writer.write_message(payload)
        assert ciphertext.hex() == message["ciphertext"], f"handshake message {index}"
        assert reader.read_message(ciphertext) == payload
    assert initiator.handshake_hash == responder.handshake_hash
    if "handshake_hash" in vector:
        assert initiator.handshake_hash.hex() == vector["handshake_hash"]
    assert initiator.rs == responder.s.public_key
    assert responder.rs == initiator.s.public_key
    i_send, i_recv = initiator.split()
    r_recv, r_send = responder.split()
    # transport: alternating, the first from the responder (§5.2: c1 initiator->responder)
    for index, message in enumerate(messages[3:]):
        payload = bytes.fromhex(message["payload"])
        sender, receiver = (r_send, i_recv) if index % 2 == 0 else (i_send, r_recv)
        ciphertext = sender.encrypt_with_ad(b"", payload)
        assert ciphertext.hex() == message["ciphertext"], f"transport message {index}"
        assert receiver.decrypt_with_ad(b"", ciphertext) == payload


@pytest.mark.parametrize("algorithm", list(AeadAlgorithm))
def test_rekey_is_the_specs_rekey_and_keeps_the_nonce(algorithm: AeadAlgorithm) -> None:
    key = bytes(range(32))
    # §4.2 REKEY(k) = ENCRYPT(k, 2^64-1, zerolen, zeros)[:32]; §12: nonce byte order per cipher
    nonce = bytes(4) + bytes([0xFF] * 8)  # 2^64-1 reads the same in either byte order
    expected = CipherState(algorithm, Aead(algorithm, key).encrypt(nonce, bytes(32), b"")[:32])
    cipher = CipherState(algorithm, key)
    cipher.encrypt_with_ad(b"", b"first")
    fresh = cipher.rekeyed()
    cipher.rekey()
    assert (cipher.n, fresh.n) == (1, 0)
    expected.n = 1
    sealed = cipher.encrypt_with_ad(b"", b"hello")
    assert sealed == expected.encrypt_with_ad(b"", b"hello")
    assert fresh.encrypt_with_ad(b"", b"hello") != sealed  # n = 0, not 1
