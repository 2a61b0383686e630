"""Review 47k, revsync: `troth revoke link` stored the revocation at the authority but left the
delegator node's own copy of the authority's feed as it was (the Python API's `Node.revoke`
synced it): that node, and a daemon running it, went on accepting the revoked link until the
next feed refresh (up to `MAINTENANCE_SECONDS`). Revocation is real: once `troth revoke link`
returns, the node it ran on refuses the revoked chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.test_cli_credentials import delegate, world  # noqa: F401  (the fixture)
from troth.identity import Identifier
from troth.node import open_node


@pytest.mark.xfail(
    strict=True,
    reason="review 47k, revsync 1: troth revoke link leaves the node's stored feed unsynced",
)
def test_revoke_link_cli_syncs_the_nodes_held_feed(world: dict[str, str]) -> None:  # noqa: F811
    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    run("credential", "import", d1, "--as", "support")
    link = run_json("credential", "show", d1)["chain"][-1]["id"]
    authority = Identifier.parse(world["authority"])
    with open_node("default") as node:  # the node already holds acme's feed (the enrollment)
        before = node.wallet.held_feed(authority)
        assert before is not None and not before.credential_revoked(bytes.fromhex(link))
    revoked = run_json(
        "revoke", "link", link, "--chain", d1, "--as", "customer", "--authority", "acme"
    )
    # the node's copy of the feed holds the entry the authority answered
    with open_node("default") as node:
        held = node.wallet.held_feed(authority)
        assert held is not None and held.count == revoked["seq"] + 1
        assert held.credential_revoked(bytes.fromhex(link))
    # and the node refuses the revoked chain at once: support can no longer delegate from it
    refused = delegate(world, "support", "sub", "d2", "orders.customer=4471", ttl="10m", code=1)
    assert "holds no unexpired credential" in refused.stderr
