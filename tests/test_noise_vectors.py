"""Noise XX against the published vectors (cacophony and snow), both cipher suites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixed_vault import FixedDhKey
from troth.channel.noise import HandshakeState

FOLDER = Path(__file__).parent / "vectors" / "noise"
VECTORS: list[dict[str, Any]] = [
    {**vector, "file": path.name}
    for path in sorted(FOLDER.glob("*.json"))
    for vector in json.loads(path.read_text())["vectors"]
]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['file']}:{v['protocol_name']}")
def test_vector(vector: dict[str, Any]) -> None:
    name = vector["protocol_name"]
    initiator = HandshakeState(
        name,
        initiator=True,
        prologue=bytes.fromhex(vector["init_prologue"]),
        static=FixedDhKey(bytes.fromhex(vector["init_static"])),
        ephemeral=FixedDhKey(bytes.fromhex(vector["init_ephemeral"])),
    )
    responder = HandshakeState(
        name,
        initiator=False,
        prologue=bytes.fromhex(vector["resp_prologue"]),
        static=FixedDhKey(bytes.fromhex(vector["resp_static"])),
        ephemeral=FixedDhKey(bytes.fromhex(vector["resp_ephemeral"])),
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
