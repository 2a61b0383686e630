"""Policy bundle golden vectors: fixed keys give exactly the stored bytes; the bytes verify and
decide; the body holds what docs/formats.md says, in that order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.vectors.gates.generate import POLICIES, SCHEMA, SERVER_POLICIES, SERVICES, TOOLS, build
from troth.credentials import ChainVerifier, TrustPolicy, verify_feed
from troth.encoding import cbor
from troth.gates import (
    BundleStore,
    DecisionPoint,
    Outcome,
    ServiceCall,
    ToolCall,
    verify_bundle,
)
from troth.gates.toolschema import canonical_json
from troth.identity import Identifier

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "gates" / "bundle_vectors.json").read_text()
)["vectors"]
T = VECTOR["issued_at"]


def test_regenerates_byte_for_byte() -> None:
    assert build() == VECTOR


def test_stored_bundles_verify() -> None:
    authority = Identifier.parse(VECTOR["authority"])
    feed = verify_feed(
        bytes.fromhex(VECTOR["feed"]), authority=authority, now=T + 60, max_staleness=300
    )
    verifier = ChainVerifier(TrustPolicy(frozenset({authority})))
    store = BundleStore(verifier)
    for key, revision, signer in (
        ("bundle_by_authority", 1, VECTOR["authority"]),
        ("bundle_by_admin", 2, VECTOR["admin"]),
    ):
        data = bytes.fromhex(VECTOR[key])
        verified = verify_bundle(data, verifier=verifier, feeds={authority: feed}, now=T + 60)
        assert (verified.body.revision, str(verified.body.signer)) == (revision, signer)
        store.accept(data, feeds={authority: feed}, now=T + 60)
    active = store.active(authority)
    assert active is not None
    assert active.bundle.compiled.policy_ids == ("refund", "refund-cap", "status")
    point = DecisionPoint(store, {authority: feed}.get)
    admin = verifier.verify(
        bytes.fromhex(VECTOR["admin_chain"]),
        presenter=Identifier.parse(VECTOR["admin"]),
        feeds={authority: feed},
        now=T + 60,
    )
    status = point.decide(admin, ServiceCall("orders", "status"), now=T + 60)
    assert (status.allowed, status.policies, status.revision) == (True, ("status",), 2)
    refund = point.decide(admin, ToolCall("refund", {"order_id": "o", "amount": 1}), now=T + 60)
    assert (refund.allowed, refund.outcome) == (False, Outcome.NO_PERMIT)


def test_the_server_vector_permits_one_servers_tool_only() -> None:
    """Review 53c, gates 1 (docs/formats.md, "Tools and their servers"): the bundle's permit
    names `Server::"payments"`: the payments server's refund is allowed, another server's and a
    gate's of no server are not."""
    authority = Identifier.parse(VECTOR["authority"])
    feed = verify_feed(
        bytes.fromhex(VECTOR["feed"]), authority=authority, now=T + 60, max_staleness=300
    )
    verifier = ChainVerifier(TrustPolicy(frozenset({authority})))
    data = bytes.fromhex(VECTOR["bundle_with_server"])
    verified = verify_bundle(data, verifier=verifier, feeds={authority: feed}, now=T + 60)
    assert (verified.body.revision, verified.body.policies) == (3, SERVER_POLICIES)
    store = BundleStore(verifier)
    store.accept(data, feeds={authority: feed}, now=T + 60)
    point = DecisionPoint(store, {authority: feed}.get)
    admin = verifier.verify(
        bytes.fromhex(VECTOR["admin_chain"]),
        presenter=Identifier.parse(VECTOR["admin"]),
        feeds={authority: feed},
        now=T + 60,
    )
    args = {"order_id": "o", "amount": 1}
    decided = {
        server: point.decide(admin, ToolCall("refund", args, server=server), now=T + 60)
        for server in ("payments", "mirror", None)
    }
    assert decided["payments"].allowed
    assert decided["payments"].policies == ("payments-refund",)
    assert [decided[s].outcome for s in ("mirror", None)] == [Outcome.NO_PERMIT] * 2


def test_the_body_layout() -> None:
    signed = cbor.decode(bytes.fromhex(VECTOR["bundle_by_admin"]))
    assert signed[:2] == ["troth.policy.bundle.signed", 1]
    assert len(signed) == 7
    assert signed[6] == bytes.fromhex(VECTOR["admin_chain"])
    body = cbor.decode(signed[2])
    assert body[:2] == ["troth.policy.bundle", 1]
    assert body[2] == Identifier.parse(VECTOR["authority"]).digest
    assert body[3] == Identifier.parse(VECTOR["admin"]).digest
    assert body[4:7] == [2, T, T + 7 * 86_400]
    assert body[7:9] == [POLICIES, SCHEMA]
    assert body[9] == {name: canonical_json(schema) for name, schema in TOOLS.items()}
    assert body[10] == {name: sorted(methods) for name, methods in SERVICES.items()}
    authority_signed = cbor.decode(bytes.fromhex(VECTOR["bundle_by_authority"]))
    assert authority_signed[6] is None
