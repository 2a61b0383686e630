"""Review 57m (performance of credential.verify, identity.rotate, secrets.token.issue): the cuts
made on the hot paths keep every check. Each test is an attempt that would pass a forged or
altered input if a cut had dropped or weakened what it replaced."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from troth.bench.credentials_bench import NOW, _chain
from troth.credentials import ChainVerifier, CredentialChain, SignedCredential, TrustPolicy
from troth.crypto import KeyType, sha256, verify_signature
from troth.crypto.private import generate_private_key
from troth.errors import CredentialError, CredentialFailure, DecodeError, InvalidSignature


def _world() -> tuple[bytes, object, dict[object, object], TrustPolicy]:
    data, actor, feeds, authority = _chain(1)
    return data, actor, feeds, TrustPolicy(frozenset({authority.identity.identifier}))


def test_decoded_chain_built_through_slots_is_the_constructed_one() -> None:
    """CredentialChain.decode sets its objects' slots directly: they are still equal to (and
    hash as) the constructor's, frozen, and re-encode to the same bytes."""
    data, *_ = _world()
    chain = CredentialChain.decode(data)
    built = CredentialChain(
        tuple(SignedCredential(c.body, c.signature, c.attestation) for c in chain.credentials),
        chain.histories,
    )
    assert chain == built
    assert hash(chain) == hash(built)
    assert chain.encode() == data
    with pytest.raises(dataclasses.FrozenInstanceError):
        chain.credentials[0].body = b"x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        chain.histories = ()  # type: ignore[misc]


def test_decode_still_refuses_a_short_signature_on_the_slot_path() -> None:
    """The inline checks before the slot path: a 63-byte signature is not taken."""
    data, *_ = _world()
    chain = CredentialChain.decode(data)
    signed = chain.credentials[0]
    short = CredentialChain(
        (SignedCredential(signed.body, signed.signature, signed.attestation),), chain.histories
    )
    raw = short.encode().replace(signed.signature, signed.signature[:63])
    with pytest.raises(DecodeError):
        CredentialChain.decode(raw)


@pytest.mark.parametrize("where", ["body", "signature", "attestation"])
def test_a_tampered_byte_after_a_verify_is_refused(where: str) -> None:
    """A verifier that verified a chain (its result cached by the bytes) refuses the same chain
    with one byte of the credential's body, signature or attestation changed, and so does a
    new verifier."""
    data, actor, feeds, policy = _world()
    verifier = ChainVerifier(policy)
    verifier.verify(data, presenter=actor, feeds=feeds, now=NOW + 1)  # type: ignore[arg-type]
    signed = CredentialChain.decode(data).credentials[0]
    part = getattr(signed, where)
    at = data.index(part) + len(part) - 1  # the last byte: inside the part, format kept
    tampered = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    for judge in (verifier, ChainVerifier(policy)):
        with pytest.raises(CredentialError) as refused:
            judge.verify(tampered, presenter=actor, feeds=feeds, now=NOW + 1)  # type: ignore[arg-type]
        assert refused.value.reason in {
            CredentialFailure.BAD_SIGNATURE,
            CredentialFailure.ATTESTATION_INVALID,
            CredentialFailure.MALFORMED,
        }


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_private_key_without_casts_signs_what_verifies_and_nothing_else(
    key_type: KeyType,
) -> None:
    """PrivateKey.sign dispatches on its key type without typing.cast: its signature verifies
    under its public key over the message signed, and not over another."""
    key = generate_private_key(key_type)
    signature = key.sign(b"message")
    verify_signature(key.public_key, signature, b"message")
    with pytest.raises(InvalidSignature):
        verify_signature(key.public_key, signature, b"messagf")


def test_sha256_bound_once_is_sha256() -> None:
    for data in (b"", b"abc", bytes(range(256)) * 5):
        assert sha256(data) == hashlib.sha256(data).digest()
