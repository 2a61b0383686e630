"""Mutation fuzzing of the decoders of identities' parts, read before any signature is checked:
change bodies, change histories (from change 0, and from a checkpoint) and purpose-key
attestations, at the limits too (tests/support/limit_mutations.py: as many changes as a history
may hold and one more, nested to the depth limit and one past it), and change bodies mutated
(and attestations) signed again with the vectors' keys. Their verifiers are fuzzed in
tests/test_decoders_mutated_credentials.py.

The mutations and the rule every property checks: tests/support/decoder_vectors.py. Every
format here is canonical CBOR (docs/formats.md, "Encoding"): what decodes encodes again to the
same bytes.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.decoder_vectors import AT, IDENTITY
from tests.support.limit_mutations import QUICK, hostile, values
from tests.support.mutations import typed
from tests.test_decoders_mutated_credentials import identity_two
from troth import limits
from troth.crypto import KeyType
from troth.crypto.private import load_private_key
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem
from troth.identity import verify_attestation, verify_history
from troth.identity.attestation import PurposeKeyAttestation
from troth.identity.change import ChangeBody, SignedChange, UnverifiedHistory, encode_history
from troth.vault import KeyPurpose


@pytest.mark.parametrize("vector", IDENTITY, ids=lambda v: v["key_type"])
@pytest.mark.parametrize("name", ["change0_body", "change1_body"])
@QUICK
@given(data=st.data())
def test_change_body(vector: dict[str, Any], name: str, data: st.DataObject) -> None:
    mutant = data.draw(hostile(bytes.fromhex(vector[name])))
    typed(ChangeBody.decode, mutant, valid_if=lambda body: body.encode() == mutant)


@pytest.mark.parametrize("vector", IDENTITY, ids=lambda v: v["key_type"])
@pytest.mark.parametrize("name", ["history1", "history2", "history2_from_change1"])
@QUICK
@given(data=st.data())
def test_unverified_history(vector: dict[str, Any], name: str, data: st.DataObject) -> None:
    mutant = data.draw(hostile(bytes.fromhex(vector[name])))
    typed(
        UnverifiedHistory.decode,
        mutant,
        valid_if=lambda h: encode_history(h.changes, h.checkpoint) == mutant == h.data,
    )


@pytest.mark.parametrize("vector", IDENTITY, ids=lambda v: v["key_type"])
@QUICK
@given(data=st.data())
def test_purpose_key_attestation(vector: dict[str, Any], data: st.DataObject) -> None:
    mutant = data.draw(hostile(bytes.fromhex(vector["channel_attestation"])))
    typed(
        PurposeKeyAttestation.decode,
        mutant,
        valid_if=lambda a: cbor.encode([a.body, a.signature]) == mutant,
    )


def _history_of(count: int) -> bytes:
    """The Ed25519 vector's 2-change history with its last change repeated to `count`."""
    value = cbor.decode(bytes.fromhex(IDENTITY[0]["history2"]))
    value[2] = value[2] + [value[2][-1]] * (count - len(value[2]))
    return cbor.encode(value)


def test_a_history_of_the_most_changes_decodes_and_one_more_is_over_the_limit() -> None:
    """MAX_IDENTITY_CHANGES changes decode (verifying them is the verifier's work); one more is
    refused before any is read, as over a limit."""
    at_limit = _history_of(limits.MAX_IDENTITY_CHANGES)
    assert len(UnverifiedHistory.decode(at_limit).changes) == limits.MAX_IDENTITY_CHANGES
    with pytest.raises(DecodeError) as refused:
        UnverifiedHistory.decode(_history_of(limits.MAX_IDENTITY_CHANGES + 1))
    assert refused.value.problem is DecodeProblem.OVER_LIMIT


# -- re-signed changes: what only the key's holder could write reaches the checks after it ----


@pytest.mark.parametrize("vector", IDENTITY, ids=lambda v: v["key_type"])
@QUICK
@given(data=st.data())
def test_resigned_change(vector: dict[str, Any], data: st.DataObject) -> None:
    """A change body mutated (a value replaced, or at the limits) and signed again with the
    vector's keys (change 0 by its own key; change 1 by the next key and the previous one):
    verify_history answers or raises IdentityError."""
    key_type = KeyType.ED25519 if vector["key_type"] == "ed25519" else KeyType.P256
    keys = [load_private_key(key_type, bytes.fromhex(k)) for k in vector["private_keys"]]
    first = SignedChange(
        bytes.fromhex(vector["change0_body"]), bytes.fromhex(vector["change0_signature"]), None
    )
    if data.draw(st.booleans()):
        body = data.draw(values(first.body))
        changes = [SignedChange(body, keys[0].sign(body), None)]
    else:
        body = data.draw(values(bytes.fromhex(vector["change1_body"])))
        changes = [first, SignedChange(body, keys[1].sign(body), keys[0].sign(body))]
    typed(lambda b: verify_history(b, now=AT), encode_history(changes))


@pytest.mark.parametrize("vector", IDENTITY, ids=lambda v: v["key_type"])
@QUICK
@given(data=st.data())
def test_resigned_attestation(vector: dict[str, Any], data: st.DataObject) -> None:
    """The channel-key attestation's body mutated and signed again by the identity's current
    primary key (the vector's second): verify_attestation answers or raises IdentityError."""
    key_type = KeyType.ED25519 if vector["key_type"] == "ed25519" else KeyType.P256
    primary = load_private_key(key_type, bytes.fromhex(vector["private_keys"][1]))
    body = cbor.decode(bytes.fromhex(vector["channel_attestation"]))[0]
    mutant = data.draw(values(body))
    identity = identity_two(vector["key_type"])
    typed(
        lambda b: verify_attestation(
            identity, cbor.encode([b, primary.sign(b)]), purpose=KeyPurpose.SECURE_CHANNEL, now=AT
        ),
        mutant,
    )
