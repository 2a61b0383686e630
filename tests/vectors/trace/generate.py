"""Regenerate tests/vectors/trace/trace_vectors.json from fixed keys, salts and ids.

    python tests/vectors/trace/generate.py > tests/vectors/trace/trace_vectors.json

Ed25519 is deterministic, so the same keys, times and randomness always give the same bytes.
tests/test_trace_golden.py rebuilds every vector and compares byte for byte, and verifies the
stored bytes (docs/formats.md, "Trace records", "Trace log and checkpoints").

trace_vectors_v1.json holds the same records as version 1 wrote them (the resolution's parent
named by id alone, and no hash of it), made by the code of commit f53b847, the last to write
version 1, and kept as made; `build(1)` rebuilds them byte for byte with today's version 1
encoder (records are read in every version: docs/formats.md, "Trace records", the version
rule). The resolution of trace_vectors.json names its escalation's hash, and its tool
invocation its tool's MCP server (version 3).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.support.fixed_vault import FixedKeyVault

from troth.crypto import KeyType
from troth.identity import Signer, attest_purpose_key, new_identity
from troth.trace.checkpoint import sign_checkpoint
from troth.trace.dsse import encode_envelope, pae
from troth.trace.merkle import MemoryTree, leaf_hash
from troth.trace.record import PAYLOAD_TYPE, VERSION, Decision, Kind, Links, ToolCall
from troth.trace.signing import (
    RecordContent,
    VerifiedRecord,
    keyid_of,
    resolve_key,
    sign_record,
    verify_envelope,
)
from troth.vault import KeyPurpose

CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z
RECORDED = CREATED + 3600
KEYS = {
    "agent": [bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96))],
    "log": [bytes(range(96, 128)), bytes(range(128, 160)), bytes(range(160, 192))],
}


def counter(seed: int) -> Callable[[int], bytes]:
    """Deterministic "randomness" for ids and salts (vectors only)."""
    state = [seed]

    def take(count: int) -> bytes:
        out = bytes((state[0] + i) % 256 for i in range(count))
        state[0] += count
        return out

    return take


def signer(label: str) -> Signer:
    """An identity (primary, committed next key) and its attested signing key, all fixed."""
    vault = FixedKeyVault([(KeyType.ED25519, key) for key in KEYS[label]])
    held = new_identity(vault, KeyType.ED25519, now=CREATED, valid_for=10 * 365 * 86_400)
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    expires = CREATED + 30 * 86_400
    attestation = attest_purpose_key(
        vault,
        held.primary,
        held.identity,
        KeyPurpose.SIGNING,
        vault.public_key(handle),
        now=CREATED,
        expires_at=expires,
    )
    return Signer(held.identity, vault, handle, attestation, expires)


def as_version(held: Signer, verified: VerifiedRecord, version: int) -> VerifiedRecord:
    """`verified` as a record of `version` signs it (version 1: the parent by id alone, and
    no tool server)."""
    if version == VERSION:
        return verified
    record = verified.record
    links = dataclasses.replace(record.links, parent_agent=None, parent_hash=None)
    tool = None if record.tool is None else dataclasses.replace(record.tool, server=None)
    payload = dataclasses.replace(record, tool=tool, links=links, version=version).encode()
    signature = held.sign(pae(PAYLOAD_TYPE, payload))
    envelope = encode_envelope(PAYLOAD_TYPE, payload, keyid_of(held.attestation), signature)
    return verify_envelope(
        envelope,
        signer=held.identity,
        attestation=held.attestation,
        disclosures=verified.disclosures,
    )


def build(version: int = VERSION) -> dict[str, Any]:
    """The vectors of records of `version` (1: as trace_vectors_v1.json keeps them)."""
    agent, log = signer("agent"), signer("log")
    random = counter(7)
    first = sign_record(
        agent,
        RecordContent(
            Kind.TOOL_INVOCATION,
            # a gated call of MCP server "payments" (version 3: review 53l, tools 1)
            tool=ToolCall("refund", "call_1", "payments"),
            values={"args": {"order_id": "o1", "amount": 20}, "result": "refunded"},
            decision=Decision("allow", "7", ("refund-small",)),
            links=Links(conversation="conv-1"),
        ),
        seq=0,
        prev=None,
        time=RECORDED,
        random=random,
    )
    first = as_version(agent, first, version)
    second = sign_record(
        agent,
        RecordContent(
            Kind.ESCALATION,
            values={"inputs": "refund 5000 EUR?"},
            links=Links(parent=first.record.id, conversation="conv-1"),
            escalation_to=log.identity.identifier,
        ),
        seq=1,
        prev=first.hash,
        time=RECORDED + 1,
        random=random,
    )
    second = as_version(agent, second, version)
    # signed by the identity the escalation asks (the log's, for the vectors): a link to
    # another agent's record names that agent (record ids are unique per agent only), and
    # the escalation's record hash (version 3: review 53i, resolutions 1)
    third = sign_record(
        log,
        RecordContent(
            Kind.RESOLUTION,
            values={"inputs": "order history", "reasoning": "a loyal customer"},
            decision=Decision("approved"),
            links=Links(
                parent=second.record.id,
                parent_agent=agent.identity.identifier,
                conversation="conv-1",
                # version 1 wrote none, and its id was random (today's version 3: derived
                # from this hash, review 53l, resolutions 1)
                parent_hash=second.hash if version == VERSION else None,
            ),
        ),
        seq=0,
        prev=None,
        time=RECORDED + 2,
        random=random,
    )
    third = as_version(log, third, version)
    records = (first, second, third)
    tree = MemoryTree([leaf_hash(r.envelope) for r in records])
    epoch = resolve_key(log.identity, log.attestation)
    checkpoint = sign_checkpoint(log, epoch, 3, tree.root(), RECORDED + 3)
    return {
        "agent_private_keys": [k.hex() for k in KEYS["agent"]],
        "log_private_keys": [k.hex() for k in KEYS["log"]],
        "created_at": CREATED,
        "agent_history": agent.identity.history.hex(),
        "agent_attestation": agent.attestation.hex(),
        "log_history": log.identity.history.hex(),
        "log_attestation": log.attestation.hex(),
        "records": [
            {
                "envelope": r.envelope.decode(),
                "payload": r.record.encode().decode(),
                "record_hash": r.hash.hex(),
                "leaf_hash": leaf_hash(r.envelope).hex(),
                "disclosures": {n: d.to_json() for n, d in sorted(r.disclosures.items())},
            }
            for r in records
        ],
        "root": tree.root().hex(),
        "inclusion_proof_0": [p.hex() for p in tree.inclusion_proof(0)],
        "checkpoint": checkpoint.note.decode(),
    }


def main() -> None:
    vectors = {
        "about": "troth trace golden vectors (docs/formats.md, 'Trace records', 'Trace log and "
        "checkpoints'). Generated by tests/vectors/trace/generate.py from the fixed keys listed "
        "here and counter 'randomness' (ids and salts); not for production use.",
        "vectors": build(),
    }
    json.dump(vectors, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
