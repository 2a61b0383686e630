"""Mutation fuzzing of the decoders of trace records, envelopes, checkpoints and proof
bundles, of the readers of unverified bytes, and of the public vectors troth reads.

The mutations and the rule every property checks: tests/support/decoder_vectors.py.
"""

from __future__ import annotations

import base64
import io
import json
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.decoder_vectors import CREDENTIALS, ED, FUZZ, TRACE, vectors
from tests.support.mutations import as_text, mutated, typed
from troth.channel.noise import HandshakeState
from troth.credentials.revocation import feed_authority
from troth.credentials.revocation_pages import read_page_sequence, write_page_sequence
from troth.credentials.vc import did_key_resolver, verify_eddsa_jcs_2022
from troth.credentials.verify import chain_actor
from troth.crypto import KeyType
from troth.crypto.private import load_private_key
from troth.encoding.ijson import load_json
from troth.errors import TraceError, TraceFailure
from troth.identity import VerifiedIdentity, indexed_hashes, verify_history
from troth.limits import MAX_VC_BYTES
from troth.trace import export
from troth.trace.checkpoint import (
    parse_checkpoint,
    parse_checkpoint_text,
    parse_note,
    verify_checkpoint,
    verify_note,
)
from troth.trace.dsse import decode_envelope, parse_envelope
from troth.trace.merkle import MemoryTree
from troth.trace.record import Disclosure
from troth.trace.record_decode import decode_payload
from troth.trace.signing import keyid_of, verify_envelope

# -- trace records, envelopes, checkpoints, proof bundles -------------------------------------

RECORDS = TRACE["records"]


@cache
def trace_identities() -> tuple[VerifiedIdentity, VerifiedIdentity]:
    at = TRACE["created_at"]
    return (
        verify_history(bytes.fromhex(TRACE["agent_history"]), now=at),
        verify_history(bytes.fromhex(TRACE["log_history"]), now=at),
    )


@pytest.mark.parametrize("index", [0, 1])
@FUZZ
@given(data=st.data())
def test_trace_envelope(index: int, data: st.DataObject) -> None:
    stored = RECORDS[index]
    agent, _ = trace_identities()
    attestation = bytes.fromhex(TRACE["agent_attestation"])
    disclosures = {n: Disclosure.from_json(v, n) for n, v in stored["disclosures"].items()}
    envelope = data.draw(mutated(stored["envelope"].encode(), is_json=True))
    typed(parse_envelope, envelope)
    typed(
        lambda b: verify_envelope(
            b, signer=agent, attestation=attestation, disclosures=disclosures
        ),
        envelope,
    )
    typed(decode_payload, data.draw(mutated(stored["payload"].encode(), is_json=True)))


@FUZZ
@given(data=st.data())
def test_trace_disclosure(data: st.DataObject) -> None:
    name, value = next(iter(sorted(RECORDS[0]["disclosures"].items())))
    original = json.dumps(value).encode()

    def read(b: bytes) -> object:
        return Disclosure.from_json(load_json(b, max_bytes=1 << 16), name)

    typed(read, data.draw(mutated(original, is_json=True)))


@FUZZ
@given(data=st.data())
def test_trace_checkpoint(data: st.DataObject) -> None:
    _, log = trace_identities()
    attestation = bytes.fromhex(TRACE["log_attestation"])
    note = data.draw(mutated(TRACE["checkpoint"].encode()))
    typed(parse_checkpoint, note)
    typed(lambda b: verify_checkpoint(b, log, {keyid_of(attestation): attestation}), note)


def _b64(hex_text: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_text)).decode()


def proof_bundle(index: int) -> dict[str, Any]:
    """Record `index`'s proof bundle (docs/traces.md, "Exports"), from the trace vectors (the
    agent's records: 0 and 1), its inclusion proof in the vectors' tree of every record."""
    record = RECORDS[index]
    tree = MemoryTree([bytes.fromhex(r["leaf_hash"]) for r in RECORDS])
    return {
        "type": export.BUNDLE_TYPE,
        "version": 1,
        "index": index,
        "envelope": record["envelope"],
        "record": json.loads(record["payload"]),
        "disclosures": record["disclosures"],
        "checkpoint": TRACE["checkpoint"],
        "proof": [p.hex() for p in tree.inclusion_proof(index)],
        "signer": {k: _b64(TRACE[f"agent_{k}"]) for k in ("history", "attestation")},
        "log": {
            "history": _b64(TRACE["log_history"]),
            "attestations": [_b64(TRACE["log_attestation"])],
        },
    }


PROOF_BUNDLE = proof_bundle(0)
EXPORT = "\n".join(export.bundle_text(proof_bundle(i)) for i in (0, 1)).encode()


def test_the_assembled_proof_bundle_verifies() -> None:
    report = export.verify_bundle(export.bundle_text(PROOF_BUNDLE).encode())
    assert (report.index, report.checkpoint.root.hex()) == (0, TRACE["root"])
    assert export.verify_export(EXPORT.split(b"\n")).records == 2


@FUZZ
@given(data=st.data())
def test_trace_proof_bundle(data: st.DataObject) -> None:
    original = export.bundle_text(PROOF_BUNDLE, lines=data.draw(st.booleans())).encode()
    typed(export.verify_bundle, data.draw(mutated(original, is_json=True)))
    typed(lambda b: export.verify_export(b.split(b"\n")), data.draw(mutated(EXPORT)))


# -- readers of unverified bytes, and the public vectors troth reads --------------------------


@FUZZ
@given(data=st.data())
def test_unverified_readers(data: st.DataObject) -> None:
    """What tools read before verifying: a chain's actor, a page's authority, a history's
    change hashes, the pages of a feed file."""
    typed(chain_actor, data.draw(mutated(bytes.fromhex(CREDENTIALS["chain2"]), is_cbor=True)))
    typed(feed_authority, data.draw(mutated(bytes.fromhex(CREDENTIALS["feed"]), is_cbor=True)))
    typed(indexed_hashes, data.draw(mutated(bytes.fromhex(ED["history2"]), is_cbor=True)))
    pages = (bytes.fromhex(CREDENTIALS[n]) for n in ("feed", "feed_page_from_2"))
    stream = data.draw(mutated(b"".join(write_page_sequence(pages))))
    typed(lambda b: list(read_page_sequence(io.BytesIO(b).read)), stream)


W3C = vectors("vc/eddsa_jcs_2022.json")


@FUZZ
@given(data=st.data())
def test_w3c_eddsa_jcs_2022_vector(data: st.DataObject) -> None:
    proof = {**W3C["proof_options"], "@context": W3C["unsecured_document"]["@context"]}
    secured = {**W3C["unsecured_document"], "proof": {**proof, "proofValue": W3C["proof_value"]}}

    def read(b: bytes) -> object:
        document = load_json(b, max_bytes=MAX_VC_BYTES)
        if type(document) is not dict:
            return None  # verify_vc reads the issuer first: vc_issuer refuses a non-object
        return verify_eddsa_jcs_2022(document, did_key_resolver)

    typed(read, data.draw(mutated(json.dumps(secured).encode(), is_json=True)))


MERKLE = vectors("merkle/rfc9162_transparency_dev.json")


@pytest.mark.parametrize("case", MERKLE["signed_notes"], ids=lambda c: c["vkey"].split("+")[0])
@FUZZ
@given(data=st.data())
def test_signed_note(case: dict[str, Any], data: st.DataObject) -> None:
    note = data.draw(mutated(case["note"].encode()))
    typed(parse_note, note)
    typed(lambda b: verify_note(b, case["vkey"]), note)
    typed(
        lambda b: verify_note(case["note"].encode(), as_text(b)),
        data.draw(mutated(case["vkey"].encode())),
    )


@pytest.mark.parametrize("case", MERKLE["checkpoint_text_examples"], ids=["gosum", "c2sp"])
@FUZZ
@given(data=st.data())
def test_checkpoint_text(case: dict[str, Any], data: st.DataObject) -> None:
    typed(parse_checkpoint_text, data.draw(mutated(case["text"].encode())))


def test_checkpoint_text_not_utf8_refused() -> None:
    """Found by test_checkpoint_text: parse_checkpoint_text (public; parse_checkpoint calls it
    on a note's text that parse_note checked) let UnicodeDecodeError out for bytes that are
    not UTF-8. TraceError CHECKPOINT_INVALID, like parse_note."""
    text = MERKLE["checkpoint_text_examples"][0]["text"].encode()
    with pytest.raises(TraceError) as caught:
        parse_checkpoint_text(b"\x80" + text[1:])
    assert caught.value.reason is TraceFailure.CHECKPOINT_INVALID


@FUZZ
@given(data=st.data())
def test_dsse_spec_vector(data: st.DataObject) -> None:
    original = json.dumps(vectors("dsse/dsse_spec_vector.json")["envelope"]).encode()
    mutant = data.draw(mutated(original, is_json=True))
    typed(parse_envelope, mutant)
    typed(decode_envelope, mutant)


NOISE: list[dict[str, Any]] = vectors("noise/cacophony_xx.json")  # type: ignore[assignment]


@pytest.mark.parametrize("vector", NOISE, ids=lambda v: v["protocol_name"])
@FUZZ
@given(data=st.data())
def test_noise_handshake_message(vector: dict[str, Any], data: st.DataObject) -> None:
    """Noise XX (tests/test_noise_vectors.py): the handshake runs to message `at`, which the
    reader gets mutated: ChannelError, never another exception."""
    sides = [
        HandshakeState(
            vector["protocol_name"],
            initiator=role == "init",
            prologue=bytes.fromhex(vector[f"{role}_prologue"]),
            static=load_private_key(KeyType.X25519, bytes.fromhex(vector[f"{role}_static"])),
            ephemeral=load_private_key(KeyType.X25519, bytes.fromhex(vector[f"{role}_ephemeral"])),
        )
        for role in ("init", "resp")
    ]
    at = data.draw(st.integers(0, 2))
    for index, message in enumerate(vector["messages"][: at + 1]):
        writer, reader = sides[index % 2], sides[1 - index % 2]
        ciphertext = writer.write_message(bytes.fromhex(message["payload"]))
        if index == at:
            typed(reader.read_message, data.draw(mutated(ciphertext)))
        else:
            reader.read_message(ciphertext)
