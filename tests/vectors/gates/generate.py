"""Regenerate tests/vectors/gates/bundle_vectors.json from fixed keys, ids and times.

    python tests/vectors/gates/generate.py > tests/vectors/gates/bundle_vectors.json

Ed25519 is deterministic (RFC 8032) and bundles are canonical CBOR, so fixed keys give fixed
bytes; tests/test_gates_vectors.py rebuilds them byte for byte and verifies the stored bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.support.fixed_vault import FixedKeyVault
from tests.support.parties import make_party
from tests.support.vectors import print_vectors

from troth.credentials import (
    Attributes,
    CredentialChain,
    build_feed,
    feed_genesis,
    issue_credential,
)
from troth.crypto import KeyType
from troth.gates import create_bundle

T = 1_767_225_600  # 2026-01-01T00:00:00Z
# authority: primary, next primary, signing key; admin: the same three
KEYS = [bytes([n]) * 32 for n in range(1, 7)]
POLICIES = """\
@id("refund") permit(principal, action == Action::"invoke:refund", resource)
  when { principal.hasTag("orders.access") && principal.getTag("orders.access").contains("write") };
@id("refund-cap") forbid(principal, action == Action::"invoke:refund", resource)
  unless { context.args.amount <= 100 };
@id("status") permit(principal, action == Action::"status", resource == Service::"orders");
"""
SERVER_POLICIES = """\
@id("payments-refund") permit(
  principal, action == Action::"invoke:refund", resource in Server::"payments");
"""
"""Review 53c, gates 1: a permit of the payments server's refund only (docs/formats.md, "Tools
and their servers"): a verifier from before it refuses the bundle (no entity type `Server`)."""
SCHEMA = "entity Order;"
TOOLS: dict[str, Any] = {
    "refund": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "amount": {"type": "integer"}},
        "required": ["order_id", "amount"],
    },
    "lookup_order": {"type": "object", "properties": {"order_id": {"type": "string"}}},
}
SERVICES = {"orders": ["status", "cancel"]}


def build() -> dict[str, Any]:
    vault = FixedKeyVault([(KeyType.ED25519, k) for k in KEYS])
    authority = make_party(vault, now=T)
    admin = make_party(vault, now=T)
    credential = issue_credential(
        authority.signer,
        subject=admin.identifier,
        attributes=Attributes({"troth.role": "policy-admin"}),
        now=T,
        ttl=8 * 86_400,  # a bundle may not outlive the chain it carries
        depth=0,
        credential_id=bytes([1]) * 16,
    )
    chain = CredentialChain((credential,), (authority.identity.history,)).encode()
    common: dict[str, Any] = {
        "authority": authority.identifier,
        "policies": POLICIES,
        "schema": SCHEMA,
        "tools": TOOLS,
        "services": SERVICES,
        "now": T,
        "ttl": 7 * 86_400,
    }
    by_authority = create_bundle(authority.signer, revision=1, **common)
    by_admin = create_bundle(admin.signer, revision=2, chain=chain, **common)
    with_server = create_bundle(
        authority.signer, revision=3, **{**common, "policies": SERVER_POLICIES}
    )
    feed = build_feed(authority.signer, [], feed_genesis(authority.identifier), now=T + 60)
    return {
        "authority": str(authority.identifier),
        "admin": str(admin.identifier),
        "admin_chain": chain.hex(),
        "bundle_by_authority": by_authority.hex(),
        "bundle_by_admin": by_admin.hex(),
        "bundle_with_server": with_server.hex(),
        "feed": feed.hex(),
        "issued_at": T,
    }


def main() -> None:
    print_vectors(
        "troth policy bundle golden vectors (docs/formats.md, 'Policy bundles'): a bundle signed "
        "by its authority (revision 1) and one signed by a policy-admin carrying its chain "
        "(revision 2), one by its authority permitting a tool of one server only (revision 3, "
        "review 53c), with the authority's empty feed; fixed keys 01..01 to 06..06. Generated "
        "by tests/vectors/gates/generate.py.",
        build(),
    )


if __name__ == "__main__":
    main()
