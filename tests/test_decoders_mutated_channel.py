"""Mutation fuzzing of the decoders of MCP frames, the secure channel (packets, keepalive
frames, handshake payloads, route errors) and leased secrets (lease ids, tokens, JWKS,
sealed blobs).

The mutations and the rule every property checks: tests/support/decoder_vectors.py.
"""

from __future__ import annotations

import json
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.decoder_vectors import (
    AT,
    AUTHORITY,
    CHANNEL,
    CREDENTIALS,
    ED,
    FUZZ,
    MCP,
    SECRETS,
    feed,
)
from tests.support.mutations import as_text, jwt_mutation, mutated, typed
from troth.channel import parse_route_error, split_packet
from troth.channel.noise import CipherState
from troth.channel.payloads import AuthPayload, unpack
from troth.channel.policy import AnyAuthenticatedIdentity
from troth.channel.verification import ChannelTrust, HandshakeClaim, verify_peer
from troth.credentials import ChainVerifier, TrustPolicy
from troth.crypto import Aead, AeadAlgorithm, KeyType
from troth.crypto.private import load_private_key
from troth.integrations.mcp.frames import McpFrame
from troth.secrets import Jwks, LeaseId, validate_token
from troth.secrets.lease import LeaseHandle
from troth.vault import SealKey, SoftwareVault

# -- MCP frames -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["message_frame", "end_frame"])
@FUZZ
@given(data=st.data())
def test_mcp_frame(name: str, data: st.DataObject) -> None:
    typed(McpFrame.decode, data.draw(mutated(bytes.fromhex(MCP[name]), is_cbor=True)))


# -- secure channel: packets, keepalive frames, route errors ----------------------------------

KEEPALIVE = [(name, algorithm) for name in ("ping", "pong") for algorithm in AeadAlgorithm]


@pytest.mark.parametrize(
    ("name", "algorithm"), KEEPALIVE, ids=lambda v: str(getattr(v, "value", v))
)
@FUZZ
@given(data=st.data())
def test_keepalive_frame(name: str, algorithm: AeadAlgorithm, data: st.DataObject) -> None:
    vector = CHANNEL["keepalive"][name]
    cipher = CipherState(algorithm, bytes.fromhex(CHANNEL["key"]))
    frame = data.draw(mutated(bytes.fromhex(vector[f"frame_{algorithm.value}"])))
    plain = typed(lambda b: cipher.decrypt_at(int.from_bytes(b[1:9], "big"), b"", b[9:]), frame)
    typed(unpack, data.draw(mutated(bytes.fromhex(vector["plaintext"]))))
    if plain is not None:
        typed(unpack, plain)  # type: ignore[arg-type]
    # the same bytes as a packet (length-prefixed frames) a relay splits
    typed(split_packet, frame)


@cache
def auth_payload(chains: int) -> bytes:
    """A handshake payload from the vectors: the Ed25519 identity's history, its channel-key
    attestation (the RFC 7748 X25519 key), and `chains` chains (not its own: refused)."""
    chain = bytes.fromhex(CREDENTIALS["chain1"])
    history, attestation = (bytes.fromhex(ED[n]) for n in ("history2", "channel_attestation"))
    return AuthPayload(history, attestation, (chain,) * chains).encode()


def read_auth(data: bytes) -> object:
    """What a channel does with the peer's handshake payload: decode, then verify_peer."""
    payload = AuthPayload.decode(data)
    static = load_private_key(KeyType.X25519, bytes.fromhex(ED["x25519_private_key"]))
    trust = ChannelTrust(
        AnyAuthenticatedIdentity(),
        ChainVerifier(TrustPolicy(frozenset({AUTHORITY}))),
        feeds=lambda: {AUTHORITY: feed()},
    )
    claim = HandshakeClaim(payload.history, payload.attestation, static.public_key)
    return verify_peer(trust, claim, payload.credentials, AT)


@FUZZ
@given(data=st.data())
def test_channel_auth_payload(data: st.DataObject) -> None:
    assert read_auth(auth_payload(0)) is not None
    original = auth_payload(data.draw(st.integers(0, 1)))
    typed(read_auth, data.draw(mutated(original, is_cbor=True)))


@FUZZ
@given(data=st.data())
def test_route_error(data: st.DataObject) -> None:
    original = bytes.fromhex(CHANNEL["route_error"]["bytes"])
    typed(parse_route_error, data.draw(mutated(original, is_cbor=True)))


# -- leased secrets: lease ids, tokens, JWKS, sealed blobs ------------------------------------


@FUZZ
@given(data=st.data())
def test_lease_text(data: st.DataObject) -> None:
    lease = SECRETS["lease"]
    typed(lambda b: LeaseId.parse(as_text(b)), data.draw(mutated(lease["text"].encode())))
    typed(lambda b: LeaseHandle.parse(as_text(b)), data.draw(mutated(lease["handle"].encode())))


@FUZZ
@given(data=st.data())
def test_token(data: st.DataObject) -> None:
    vector = SECRETS["token"]
    jwks = {"keys": [vector["jwk"]]}
    token = as_text(
        data.draw(
            st.one_of(
                mutated(vector["token"].encode()),
                jwt_mutation(vector["token"], vector["signing_key"]),
            )
        )
    )
    typed(
        lambda _: validate_token(token, jwks, audience="payments", now=vector["issued_at"] + 1),
        b"",
    )


@FUZZ
@given(data=st.data())
def test_jwks(data: st.DataObject) -> None:
    vector = SECRETS["token"]
    original = json.dumps({"keys": [vector["jwk"]]}).encode()
    typed(Jwks.parse, data.draw(mutated(original, is_json=True)))


@cache
def sealing_vault() -> SoftwareVault:
    vault = SoftwareVault()
    key = SealKey.parse(SECRETS["sealed"]["seal_key_handle"])
    # test-only key injection, as tests/test_secrets_vectors.py does
    vault._seal_keys[key.key_id] = (  # its values: one (review 55d, vault 1)
        Aead(AeadAlgorithm.AES_256_GCM, bytes.fromhex(SECRETS["sealed"]["seal_key"])),
    )
    return vault


@FUZZ
@given(data=st.data())
def test_sealed_blob(data: st.DataObject) -> None:
    vector = SECRETS["sealed"]
    key = SealKey.parse(vector["seal_key_handle"])
    aad = bytes.fromhex(vector["aad"])
    original = bytes.fromhex(vector["sealed"])
    mutant = data.draw(mutated(original))
    typed(
        lambda b: sealing_vault().unseal(key, b, aad), mutant, valid_if=lambda _: mutant == original
    )
    handle = vector["seal_key_handle"].encode()  # local configuration: ValueError, as documented
    typed(lambda b: SealKey.parse(as_text(b)), data.draw(mutated(handle)), documented=(ValueError,))
