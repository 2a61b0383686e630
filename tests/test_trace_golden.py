"""troth's own trace vectors: fixed keys give exactly the stored bytes, and the stored bytes
verify (record envelopes, disclosures, the inclusion proof and the checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.vectors.trace.generate import CREATED, build
from troth.identity import verify_history
from troth.trace.checkpoint import verify_checkpoint
from troth.trace.merkle import leaf_hash, verify_inclusion
from troth.trace.record import Disclosure, Kind
from troth.trace.signing import keyid_of, verify_envelope

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "trace" / "trace_vectors.json").read_text()
)["vectors"]


def test_regenerates_byte_for_byte() -> None:
    assert build() == VECTORS


def test_stored_bytes_verify() -> None:
    agent = verify_history(bytes.fromhex(VECTORS["agent_history"]), now=CREATED)
    log = verify_history(bytes.fromhex(VECTORS["log_history"]), now=CREATED)
    kinds = []
    for stored, (signer, key) in zip(
        VECTORS["records"],
        [(agent, "agent_attestation")] * 2 + [(log, "log_attestation")],
        strict=True,
    ):
        attestation = bytes.fromhex(VECTORS[key])
        envelope = stored["envelope"].encode()
        disclosures = {
            name: Disclosure.from_json(value, name) for name, value in stored["disclosures"].items()
        }
        verified = verify_envelope(
            envelope, signer=signer, attestation=attestation, disclosures=disclosures
        )
        assert verified.record.encode() == stored["payload"].encode()
        assert verified.hash.hex() == stored["record_hash"]
        assert leaf_hash(envelope).hex() == stored["leaf_hash"]
        assert verified.record.key == keyid_of(attestation)
        kinds.append(verified.record.kind)
    assert kinds == [Kind.TOOL_INVOCATION, Kind.ESCALATION, Kind.RESOLUTION]
    resolution = verify_envelope(
        VECTORS["records"][2]["envelope"].encode(),
        signer=log,
        attestation=bytes.fromhex(VECTORS["log_attestation"]),
    ).record
    assert resolution.links.parent_of(resolution.agent) == (
        agent.identifier,
        json.loads(VECTORS["records"][1]["payload"])["id"],
    )
    log_attestation = bytes.fromhex(VECTORS["log_attestation"])
    checkpoint = verify_checkpoint(
        VECTORS["checkpoint"].encode(), log, {keyid_of(log_attestation): log_attestation}
    )
    assert (checkpoint.size, checkpoint.root.hex()) == (3, VECTORS["root"])
    proof = [bytes.fromhex(p) for p in VECTORS["inclusion_proof_0"]]
    verify_inclusion(
        0, 3, bytes.fromhex(VECTORS["records"][0]["leaf_hash"]), proof, checkpoint.root
    )
