"""Public vectors: DSSE (spec vector, and troth's envelopes under securesystemslib), RFC 9162
Merkle trees and proofs (transparency-dev, probes included), C2SP signed notes (golang/mod,
C2SP). Each file in tests/vectors/{dsse,merkle} carries its source, commit and license."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer._key import SSlibKey

from tests.support.fixed_vault import FixedKeyVault
from tests.support.traces import NOW, Held, tool_call
from troth.crypto import KeyType, PublicKey, verify_signature
from troth.errors import TraceError, TraceFailure
from troth.trace.checkpoint import (
    format_note,
    note_key_id,
    parse_checkpoint_text,
    parse_note,
    verifier_key,
    verify_note,
)
from troth.trace.dsse import decode_envelope, pae, parse_envelope
from troth.trace.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from troth.trace.signing import sign_record
from troth.vault import KeyPurpose

VECTORS = Path(__file__).parent / "vectors"
DSSE: dict[str, Any] = json.loads((VECTORS / "dsse" / "dsse_spec_vector.json").read_text())
MERKLE: dict[str, Any] = json.loads(
    (VECTORS / "merkle" / "rfc9162_transparency_dev.json").read_text()
)
# troth checks every hash is 32 bytes; transparency-dev does not check root lengths, so this
# probe (12-byte equal roots, size 1 -> 1, empty proof) is the one deliberate deviation
# (docs/traces.md, "Proof rules")
DEVIATIONS = {"testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- DSSE -------------------------------------------------------------------------------------


def _p256(vector: dict[str, Any]) -> PublicKey:
    x, y = int(vector["public_key"]["x"]), int(vector["public_key"]["y"])
    return PublicKey(KeyType.P256, b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big"))


def test_dsse_spec_vector_pae_and_signature() -> None:
    """protocol.md's vector: the PAE is byte for byte, and the P-256 signature (raw r||s)
    verifies over it under troth's verifier."""
    envelope = parse_envelope(json.dumps(DSSE["envelope"]).encode())
    assert envelope.pae() == DSSE["pae"].encode()
    assert pae(envelope.payload_type, envelope.payload) == DSSE["pae"].encode()
    verify_signature(_p256(DSSE), envelope.signatures[0].sig, envelope.pae())


def test_dsse_spec_vector_tampered_payload_fails() -> None:
    envelope = parse_envelope(json.dumps(DSSE["envelope"]).encode())
    with pytest.raises(Exception, match="signature"):
        verify_signature(_p256(DSSE), envelope.signatures[0].sig, pae(envelope.payload_type, b"x"))


def test_dsse_spec_vector_is_not_a_troth_envelope() -> None:
    """troth's trace envelopes need a keyid (securesystemslib matches keys by it)."""
    with pytest.raises(Exception, match="keyid"):
        decode_envelope(json.dumps(DSSE["envelope"]).encode())


def _sslib_key(keyid: str, public: bytes) -> SSlibKey:
    return SSlibKey(keyid, "ed25519", "ed25519", {"public": public.hex()})


def test_troth_envelopes_verify_under_securesystemslib() -> None:
    """An independent DSSE implementation verifies troth's record envelopes as they are."""
    agent = Held()
    signer = agent.signer()
    record = sign_record(signer, tool_call(), seq=0, prev=None, time=NOW)
    key = _sslib_key(record.epoch.keyid, signer.vault.public_key(signer.handle).data)
    parsed = SslibEnvelope.from_dict(json.loads(record.envelope))
    accepted = parsed.verify([key], 1)
    assert list(accepted) == [record.epoch.keyid]
    assert parsed.pae() == pae(parsed.payload_type, parsed.payload)


def test_securesystemslib_refuses_a_tampered_troth_envelope() -> None:
    agent = Held()
    signer = agent.signer()
    record = sign_record(signer, tool_call(), seq=0, prev=None, time=NOW)
    key = _sslib_key(record.epoch.keyid, signer.vault.public_key(signer.handle).data)
    data = json.loads(record.envelope)
    payload = base64.b64decode(data["payload"]).replace(b'"seq":0', b'"seq":1')
    data["payload"] = base64.b64encode(payload).decode()
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(copy.deepcopy(data)).verify([key], 1)


def test_securesystemslib_signature_verifies_under_troth() -> None:
    """The other direction: an envelope signed by securesystemslib's own DSSE code, with a
    key troth holds, verifies with troth's PAE (the PAEs agree)."""
    vault = FixedKeyVault([(KeyType.ED25519, bytes(range(32)))])
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    public = vault.public_key(handle)
    envelope = SslibEnvelope(b'{"a":1}', "application/vnd.troth.trace.v1+json", {})
    signature = vault.sign(handle, envelope.pae())
    verify_signature(public, signature, pae("application/vnd.troth.trace.v1+json", b'{"a":1}'))


# -- RFC 9162 Merkle trees --------------------------------------------------------------------


def test_tree_roots_of_every_size() -> None:
    leaves = [leaf_hash(h(x)) for x in MERKLE["tree"]["leaf_inputs"]]
    assert [x.hex() for x in leaves] == MERKLE["tree"]["leaf_hashes"]
    tree = MemoryTree(leaves)
    roots = MERKLE["tree"]["roots_by_size"]
    assert sorted(int(size) for size in roots) == list(range(9))
    for size, root in roots.items():
        assert tree.root(int(size)).hex() == root, size
    assert tree.root(0) == EMPTY_ROOT
    assert node_hash(leaves[0], leaves[1]).hex() == MERKLE["tree"]["node_hashes_by_level"][1][0]
    assert MERKLE["tree"]["node_hashes_by_level"][0] == MERKLE["tree"]["leaf_hashes"]


@pytest.mark.parametrize(
    "case", MERKLE["inclusion_proofs"], ids=lambda c: f"{c['leaf_index']}/{c['tree_size']}"
)
def test_inclusion_proofs(case: dict[str, Any]) -> None:
    proof = [h(p) for p in case["proof"]]
    verify_inclusion(
        case["leaf_index"], case["tree_size"], h(case["leaf_hash"]), proof, h(case["root"])
    )
    leaves = [leaf_hash(h(x)) for x in MERKLE["tree"]["leaf_inputs"]]
    assert MemoryTree(leaves[: case["tree_size"]]).inclusion_proof(case["leaf_index"]) == proof


@pytest.mark.parametrize(
    "case", MERKLE["consistency_proofs"], ids=lambda c: f"{c['size1']}-{c['size2']}"
)
def test_consistency_proofs(case: dict[str, Any]) -> None:
    proof = [h(p) for p in case["proof"]]
    verify_consistency(case["size1"], case["size2"], h(case["root1"]), h(case["root2"]), proof)
    leaves = [leaf_hash(h(x)) for x in MERKLE["tree"]["leaf_inputs"]]
    if case["size1"] < case["size2"]:
        assert MemoryTree(leaves[: case["size2"]]).consistency_proof(case["size1"]) == proof


@pytest.mark.parametrize("probe", MERKLE["inclusion_probes"], ids=lambda p: p["file"])
def test_inclusion_probes(probe: dict[str, Any]) -> None:
    args = (
        probe["leaf_index"],
        probe["tree_size"],
        h(probe["leaf_hash"]),
        [h(p) for p in probe["proof"]],
        h(probe["root"]),
    )
    if probe["want_err"]:
        with pytest.raises(TraceError) as caught:
            verify_inclusion(*args)
        assert caught.value.reason is TraceFailure.PROOF_INVALID
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("probe", MERKLE["consistency_probes"], ids=lambda p: p["file"])
def test_consistency_probes(probe: dict[str, Any]) -> None:
    args = (
        probe["size1"],
        probe["size2"],
        h(probe["root1"]),
        h(probe["root2"]),
        [h(p) for p in probe["proof"]],
    )
    if probe["want_err"] or probe["file"] in DEVIATIONS:
        with pytest.raises(TraceError) as caught:
            verify_consistency(*args)
        assert caught.value.reason is TraceFailure.PROOF_INVALID
    else:
        verify_consistency(*args)


def test_the_deviation_is_only_the_root_length() -> None:
    """The probe troth refuses passes once its roots are 32 bytes: only the length differs."""
    (probe,) = [p for p in MERKLE["consistency_probes"] if p["file"] in DEVIATIONS]
    assert len(h(probe["root1"])) == 12
    assert not probe["proof"]
    verify_consistency(probe["size1"], probe["size2"], bytes(32), bytes(32), [])


def test_consistency_from_zero_is_refused_even_to_zero() -> None:
    with pytest.raises(TraceError, match="empty tree"):
        verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(TraceError, match="empty tree"):
        verify_consistency(0, 3, EMPTY_ROOT, bytes(32), [])


# -- C2SP signed notes and checkpoints --------------------------------------------------------


@pytest.mark.parametrize("case", MERKLE["signed_notes"], ids=lambda c: c["vkey"].split("+")[0])
def test_signed_notes_verify(case: dict[str, Any]) -> None:
    note = case["note"].encode()
    assert verify_note(note, case["vkey"]) == case["text"].encode()
    tampered = bytes([note[0] ^ 0x20]) + note[1:]  # one letter's case in the text
    with pytest.raises(TraceError) as caught:
        verify_note(tampered, case["vkey"])
    assert caught.value.reason is TraceFailure.CHECKPOINT_INVALID
    assert "bad signature" in caught.value.detail


def test_signed_note_resigned_byte_for_byte() -> None:
    """golang/mod's PeterNeumann note: the key id rule, the verifier key text, and re-signing
    the text with the test-only seed reproduce the note exactly (Ed25519 is deterministic)."""
    (case,) = [c for c in MERKLE["signed_notes"] if "skey_test_only" in c]
    _private, _key, name, key_id, encoded = case["skey_test_only"].split("+", 4)
    seed = base64.b64decode(encoded)[1:]
    vault = FixedKeyVault([(KeyType.ED25519, seed)])
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    public = vault.public_key(handle)
    assert note_key_id(name, public).hex() == key_id
    assert verifier_key(name, public) == case["vkey"]
    text = case["text"].encode()
    note = format_note(text, [(name, note_key_id(name, public), vault.sign(handle, text))])
    assert note == case["note"].encode()
    assert parse_note(note) == (text, [(name, bytes.fromhex(key_id), vault.sign(handle, text))])


def test_checkpoint_text_examples() -> None:
    first, second = MERKLE["checkpoint_text_examples"]
    origin, size, root, extensions = parse_checkpoint_text(first["text"].encode())
    assert (origin, size, extensions) == (first["origin"], first["size"], [])
    assert root == leaf_hash(b"hello world")
    assert parse_checkpoint_text(second["text"].encode())[:2] == (
        "example.com/behind-the-sofa",
        20852163,
    )
