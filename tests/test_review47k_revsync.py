"""Review 47k, revsync: `troth revoke link` stored the revocation at the authority but left the
delegator node's own copy of the authority's feed as it was (the Python API's `Node.revoke`
synced it): that node, and a daemon running it, went on accepting the revoked link until the
next feed refresh (up to `MAINTENANCE_SECONDS`). Revocation is real: once `troth revoke link`
returns, the node it ran on refuses the revoked chain."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import troth
import troth.node.traces
from tests.support.cli import run, run_json
from tests.test_api_network import LOOPBACK, served_in_a_thread
from tests.test_cli_credentials import delegate, world  # noqa: F401  (the fixture)
from troth.errors import Unreachable
from troth.identity import Identifier
from troth.node import open_node
from troth.node.runtime import NodeRuntime
from troth.node.trust import NodeTrust

NOW = int(time.time())  # the CLI's clock: the feed the node holds was signed just now


def test_revoke_link_cli_syncs_the_nodes_held_feed(world: dict[str, str]) -> None:  # noqa: F811
    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    run("credential", "import", d1, "--as", "support")
    link = run_json("credential", "show", d1)["chain"][-1]["id"]
    authority = Identifier.parse(world["authority"])
    with open_node("default") as node:  # the node already holds acme's feed (the enrollment)
        before = node.wallet.held_feed(authority)
        assert before is not None
        assert not before.credential_revoked(bytes.fromhex(link))
    revoked = run_json(
        "revoke", "link", link, "--chain", d1, "--as", "customer", "--authority", "acme"
    )
    # the node's copy of the feed holds the entry the authority answered
    with open_node("default") as node:
        held = node.wallet.held_feed(authority)
        assert held is not None
        assert held.count == revoked["seq"] + 1
        assert held.credential_revoked(bytes.fromhex(link))
    # and the node refuses the revoked chain at once: support can no longer delegate from it
    refused = delegate(world, "support", "sub", "d2", "orders.customer=4471", ttl="10m", code=2)
    assert "holds no unexpired credential" in refused.stderr


def test_a_running_nodes_trust_reload_learns_the_stored_feed(world: dict[str, str]) -> None:  # noqa: F811
    """What `troth revoke link` tells a running node (control op `trust.reload`): re-read the
    feeds the store holds. It re-read only those it held none of, so a daemon that held the
    feed before the revocation went on accepting the link until its next refresh."""
    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    link = bytes.fromhex(run_json("credential", "show", d1)["chain"][-1]["id"])
    authority = Identifier.parse(world["authority"])
    with open_node("default") as node:
        trust = NodeTrust(node, None)  # the running node's view, as it started
        trust.reload(NOW)
        before = trust.feeds[authority]
        assert not before.credential_revoked(link)
        run("revoke", "link", link.hex(), "--chain", d1, "--as", "customer", "--authority", "acme")
        assert trust.feeds[authority] is before  # memory: not yet told
        trust.reload(NOW)
        assert trust.feeds[authority].credential_revoked(link)
        held = trust.feeds[authority]
        trust.reload(NOW)  # nothing newer stored: the feed held stays
        assert trust.feeds[authority] is held


def test_revoke_link_with_the_node_running_tells_it(
    world: dict[str, str],  # noqa: F811
) -> None:
    """With a daemon running the node, `troth revoke link` asks it to re-read its trust (the
    control op `trust.reload`, whose effect the test above shows) and succeeds; the daemon
    is stopped after."""
    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    link = run_json("credential", "show", d1)["chain"][-1]["id"]
    run("node", "start", "default")
    try:
        revoked = run_json(
            "revoke", "link", link, "--chain", d1, "--as", "customer", "--authority", "acme"
        )
        assert revoked["revoked"] == link
    finally:
        run("node", "stop", "default")


def test_node_revoke_while_serving_tells_the_running_node() -> None:
    """`Node.revoke` inside `serve`: the running node's decisions see the revocation at once
    (it stored the synced feed, and the runtime held the one it read at start)."""

    async def main() -> None:
        with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
            acme = hub.create_authority()
            agents.identities.create("customer")
            sub = agents.identities.create("sub")
            agents.enroll(acme.ticket({"orders.access": "read"}), identity="customer")
            chain = agents.delegate(
                "customer", to=sub, attributes={"orders.access": "read"}, ttl=60, purpose="p"
            )
            async with agents.serve() as running:
                feeds = running._runtime.trust
                assert not feeds.feeds[acme.identifier].credential_revoked(chain.id)
                seq = agents.revoke(chain, by="customer")
                held = feeds.feeds[acme.identifier]
                assert held.count == seq + 1
                assert held.credential_revoked(chain.id)

    asyncio.run(main())


def test_a_failed_sync_says_the_link_is_revoked(
    world: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sync that fails after the authority took the revocation: the command fails (the node
    does not refuse the link yet), saying the link is revoked and recorded, and the node's next
    feed refresh brings it."""
    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    link = run_json("credential", "show", d1)["chain"][-1]["id"]

    def unreachable(*args: object, **kwargs: object) -> None:
        raise Unreachable("the authority's node went away")

    with monkeypatch.context() as patched:
        patched.setattr(troth.node.traces, "sync_from", unreachable)
        failed = run(
            "revoke", "link", link, "--chain", d1, "--as", "customer", "--authority", "acme", code=4
        )
    assert "the link is revoked (feed entry 0)" in failed.stderr
    assert "the node's next feed refresh brings it" in failed.stderr
    assert run_json("trace", "show", "--agent", "customer")[-1]["kind"] == "revocation"
    run("credential", "refresh", "customer")  # a refresh syncs the feed: the node refuses it
    with open_node("default") as node:
        held = node.wallet.held_feed(Identifier.parse(world["authority"]))
        assert held is not None
        assert held.credential_revoked(bytes.fromhex(link))


def test_node_revoke_over_the_network_syncs_or_says_it_did_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Node.revoke` with an authority reached over the network: the node holds the feed up to
    the entry when it returns; a sync that fails (it was logged, and the call returned as if
    the node refused the link) fails the call, saying the link is revoked, and it is recorded."""
    with (
        troth.Node.open("hub") as hub,
        troth.Node.open("agents") as agents,
        troth.Node.open("sub") as sub_node,
    ):
        acme = hub.create_authority()
        with served_in_a_thread(hub, listen=LOOPBACK) as running:
            agents.enroll(acme.ticket({"orders.access": "read"}, at=running.address))

            def chain() -> troth.Credential:
                return agents.delegate(
                    agents.identity,
                    to=sub_node.identity,
                    attributes={"orders.access": "read"},
                    ttl=60,
                    purpose="x",
                )

            first, second = chain(), chain()
            assert agents.revoke(first, by=agents.identity) == 0
            held = agents._stored.wallet.held_feed(acme.identifier)
            assert held is not None
            assert held.credential_revoked(first.id)

            async def unreachable(*args: object) -> None:
                raise Unreachable("the authority's node went away")

            with monkeypatch.context() as patched:
                patched.setattr(NodeRuntime, "sync_feed", unreachable)
                with pytest.raises(
                    troth.StorageError, match=r"the link is revoked \(feed entry 1\)"
                ):
                    agents.revoke(second, by=agents.identity)
    assert run_json("trace", "show", "--node", "agents")[-1]["kind"] == "revocation"
