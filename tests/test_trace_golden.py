"""troth's own trace vectors: fixed keys give exactly the stored bytes, and the stored bytes
verify (record envelopes, disclosures, the inclusion proof and the checkpoint); the version 1
vectors (as the code of f53b847 wrote them) are rebuilt byte for byte and still verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.vectors.trace.generate import CREATED, build
from troth.identity import verify_history
from troth.trace.checkpoint import verify_checkpoint
from troth.trace.merkle import leaf_hash, verify_inclusion
from troth.trace.record import HASHED_VERSION, Disclosure, Kind
from troth.trace.record_decode import id_holders, parent_record
from troth.trace.signing import keyid_of, verify_envelope

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "trace" / "trace_vectors.json").read_text()
)["vectors"]
VECTORS_V1: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "trace" / "trace_vectors_v1.json").read_text()
)["vectors"]


def test_regenerates_byte_for_byte() -> None:
    assert build() == VECTORS


def test_version_1_regenerates_byte_for_byte() -> None:
    """Today's version 1 encoder writes the bytes the version 1 code wrote."""
    assert build(1) == VECTORS_V1


@pytest.mark.parametrize(("vectors", "version"), [(VECTORS, 2), (VECTORS_V1, 1)])
def test_stored_bytes_verify(vectors: dict[str, Any], version: int) -> None:
    agent = verify_history(bytes.fromhex(vectors["agent_history"]), now=CREATED)
    log = verify_history(bytes.fromhex(vectors["log_history"]), now=CREATED)
    kinds = []
    for stored, (signer, key) in zip(
        vectors["records"],
        [(agent, "agent_attestation")] * 2 + [(log, "log_attestation")],
        strict=True,
    ):
        attestation = bytes.fromhex(vectors[key])
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
        # today's resolution names its escalation's hash (review 53i, resolutions 1), and the
        # tool invocation its server (review 53l, tools 1): version 3
        hashed = version == 2 and verified.record.kind is not Kind.ESCALATION
        assert verified.record.version == (HASHED_VERSION if hashed else version)
        if verified.record.tool is not None:
            assert verified.record.tool.server == ("payments" if version == 2 else None)
    assert kinds == [Kind.TOOL_INVOCATION, Kind.ESCALATION, Kind.RESOLUTION]
    resolution = verify_envelope(
        vectors["records"][2]["envelope"].encode(),
        signer=log,
        attestation=bytes.fromhex(vectors["log_attestation"]),
    ).record
    escalation = json.loads(vectors["records"][1]["payload"])["id"]
    if version == 2:  # the link names the escalation's agent, and its hash
        assert resolution.links.parent_of(resolution.agent) == (agent.identifier, escalation)
        assert resolution.links.parent_hash == bytes.fromhex(vectors["records"][1]["record_hash"])
    else:  # by id alone: the one record under it, the agent's (parent_record)
        holders = id_holders([(agent.identifier, escalation, 1)], [resolution])
        found = parent_record(resolution, holders, index=2)
        assert (resolution.links.parent_agent, found) == (None, (agent.identifier, escalation))
    log_attestation = bytes.fromhex(vectors["log_attestation"])
    checkpoint = verify_checkpoint(
        vectors["checkpoint"].encode(), log, {keyid_of(log_attestation): log_attestation}
    )
    assert (checkpoint.size, checkpoint.root.hex()) == (3, vectors["root"])
    proof = [bytes.fromhex(p) for p in vectors["inclusion_proof_0"]]
    verify_inclusion(
        0, 3, bytes.fromhex(vectors["records"][0]["leaf_hash"]), proof, checkpoint.root
    )
