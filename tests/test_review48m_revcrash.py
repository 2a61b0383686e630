"""Review 48m, revcrash 2 (review 48c's, left): `troth revoke link` killed between the
authority's commit and the node's sync left the revocation in the authority's feed and nowhere
here, and the node, restarted, handed out the revoked link until its next feed refresh. The
revoker now marks the node's copy of the feed due (committed) before it asks the authority,
and clears the mark once the copy holds the entry; a mark left standing is settled (the feed
synced from the authority on this machine) before the node hands out a chain of that authority,
and until it is, the node hands out none (troth.node.syncdue, docs/credentials.md)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import troth
import troth._api.network
from tests.support.cli import run, run_json
from tests.support.forked import troth_forked
from tests.test_api_network import LOOPBACK, served_in_a_thread
from tests.test_cli_credentials import delegate, world  # noqa: F401  (the fixture)
from troth.faults import CRASH_EXIT_CODE, CRASH_POINTS
from troth.identity import Identifier
from troth.node.node import open_node
from troth.node.syncdue import sync_due_while

REACHED = (
    "authority.revoke.before-commit",
    "authority.revoke.after-commit",
    "trace.append.before-commit",
    "trace.append.after-commit",
    # review 51d: the rollback guard raised after the authority's commit (its feed entry)
    "storage.rollback-guard.before-write",
    "storage.rollback-guard.after-write",
)
"""The crash points a link revocation passes (each ends the process there)."""


def _marks(home: Path, node: str = "default") -> int:
    with sqlite3.connect(home / "nodes" / node / "node.db") as conn:
        return int(conn.execute("SELECT count(*) FROM feed_syncs_due").fetchone()[0])


def _revoke(world: dict[str, str], crash: str | None) -> tuple[int, str]:  # noqa: F811
    """d1 (customer to support) held by support, then its link revoked by customer, the
    process killed at `crash`: its exit code, and d1's link."""
    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    run("credential", "import", d1, "--as", "support")
    link = run_json("credential", "show", d1)["chain"][-1]["id"]
    args = ("revoke", "link", link, "--chain", d1, "--as", "customer", "--authority", "acme")
    return troth_forked(*args, crash=crash, check=False).returncode, link


@pytest.mark.parametrize("crash", CRASH_POINTS)
def test_a_revocation_killed_at_any_point_is_enforced_once_the_authority_took_it(
    world: dict[str, str],  # noqa: F811
    troth_home: Path,
    crash: str,
) -> None:
    """Every crash point the library has, armed in `troth revoke link`: the process ends there
    (the points a revocation passes) or completes; either way, the restarted node hands out
    d1's link exactly when the authority's feed holds its revocation, and no mark is left
    once it decided."""
    code, _ = _revoke(world, crash)
    assert code == (CRASH_EXIT_CODE if crash in REACHED else 0)
    taken = run_json("revocations", "show", "--authority", "acme")["count"] == 1
    assert taken is (crash not in ("authority.revoke.before-commit",))
    refused = delegate(
        world, "support", "sub", "d2", "orders.customer=4471", ttl="10m", code=2 if taken else 0
    )
    if taken:
        assert "holds no unexpired credential" in refused.stderr
        assert "wait for" not in refused.stderr  # synced: refused as revoked
    assert _marks(troth_home) == 0


def test_a_mark_that_cannot_be_settled_fails_closed(
    world: dict[str, str],  # noqa: F811
    troth_home: Path,
) -> None:
    """Killed after the authority's commit, with the authority's node out of reach when the
    node next hands out a chain: none of that authority's chains is handed out (the mark
    stands); with the node back, the feed is synced and the link refused as revoked."""
    code, _ = _revoke(world, "authority.revoke.after-commit")
    assert code == CRASH_EXIT_CODE
    assert _marks(troth_home) == 1
    nodes = troth_home / "nodes"
    os.rename(nodes / "acme", nodes / "acme-away")
    waiting = delegate(world, "support", "sub", "d2", "orders.customer=4471", code=2)
    assert "wait for this node's copy of its feed to be synced" in waiting.stderr
    assert "those of authority acme (" in waiting.stderr
    assert _marks(troth_home) == 1
    os.rename(nodes / "acme-away", nodes / "acme")
    refused = delegate(world, "support", "sub", "d2", "orders.customer=4471", code=2)
    assert "holds no unexpired credential" in refused.stderr
    assert "wait for" not in refused.stderr
    assert _marks(troth_home) == 0


def test_a_mark_a_live_revocation_holds_is_not_settled_by_another_open(
    world: dict[str, str],  # noqa: F811
    troth_home: Path,
) -> None:
    """While a revocation is under way (its mark made, the authority not yet answered), a sync
    by another open of the node could end before the authority takes the entry: it does not
    clear that mark (the node hands out none of the authority's chains meanwhile); once the
    revoker is gone, the mark is settled."""
    acme = Identifier.parse(world["authority"])
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    with open_node("default") as revoker, open_node("default") as other:
        with sync_due_while(revoker, acme, address="node:acme", now=int(time.time())) as due:
            assert due.mark is not None
            assert other.wallet.sync_due(acme, now=int(time.time())) is True  # fail closed
            assert _marks(troth_home) == 1
        # the revoker ended without clearing its mark (as one killed would): settled now
        assert other.wallet.sync_due(acme, now=int(time.time())) is False
        assert _marks(troth_home) == 0
        with sync_due_while(revoker, acme, address="node:acme", now=int(time.time())) as due:
            due.clear()
            assert _marks(troth_home) == 0


def test_a_node_holding_no_copy_of_the_feed_makes_no_mark(troth_home: Path) -> None:
    """A node that neither trusts the authority nor holds its feed has no copy to sync: no
    mark (it would stand for nothing)."""
    acme = Identifier.parse(run_json("authority", "create", "acme")["identifier"])
    run("identity", "create", "someone")
    with open_node("default") as node:
        with sync_due_while(node, acme, address=None, now=int(time.time())) as due:
            assert due.mark is None
        assert _marks(troth_home) == 0


def test_a_database_from_before_the_table_opens_and_migrates(troth_home: Path) -> None:
    """A node.db as the schema before `feed_syncs_due` left it (the table absent, user_version
    lower; the migrations after it undone too) opens: the migration adds the table, the version
    is current again, and a mark made then is read back after reopening."""
    acme = Identifier.parse(run_json("authority", "create", "acme")["identifier"])
    run("identity", "create", "someone")
    path = troth_home / "nodes" / "default" / "node.db"
    with sqlite3.connect(path) as conn:
        (current,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute("DROP TABLE feed_syncs_due")
        conn.execute("DROP TABLE identity_forks")  # (review 49c's, the migrations after it)
        conn.execute("DROP TABLE rollback_counters")  # (review 51d's)
        conn.execute("DROP TABLE voucher_sources")  # (review 54x's)
        conn.execute(f"PRAGMA user_version = {current - 8}")  # (and 53h's, 66i's, 69f's, 71e's)
    with open_node("default") as node:
        assert node.wallet.store.syncs_due() == []
        node.wallet.store.mark_sync_due(acme.digest, "node:acme", 1)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == current
    with open_node("default") as node:
        assert node.wallet.store.syncs_due() == [(acme.digest, "node:acme")]
        assert node.wallet.store.clear_sync_due(acme.digest) == 1


def test_a_network_revocation_cut_off_before_its_sync_leaves_the_mark_a_running_node_settles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Node.revoke` with the authority over the network, its process cut off once the
    authority took the entry and before the node's copy of the feed was synced (as a kill
    there would leave it): the mark stands, and the node hands out none of the authority's
    chains (before, `support` here went on delegating from the revoked link); the node's next
    run syncs the feed over the network and clears it: the link is refused as revoked."""
    real = troth._api.network.revoke_remotely

    async def cut_off(running: Any, *args: Any) -> Any:
        async def no_sync(*_: Any) -> Any:
            raise RuntimeError("killed")

        running._runtime.sync_feed = no_sync  # this revocation's sync alone
        return await real(running, *args)

    def hand_out(node: troth.Node, by: Any, to: Any, ttl: int = 60) -> troth.Credential:
        return node.delegate(by, to=to, attributes={"orders.access": "read"}, ttl=ttl, purpose="p")

    with troth.Node.open("hub") as hub:
        acme = hub.create_authority()
        with (
            served_in_a_thread(hub, listen=LOOPBACK) as serving,
            troth.Node.open("agents") as agents,
            troth.Node.open("sub") as sub,
        ):
            agents.enroll(acme.ticket({"orders.access": "read"}, at=serving.address))
            support = agents.identities.create("support")
            chain = hand_out(agents, agents.identity, support, ttl=1800)
            agents.hold(support, chain)
            hand_out(agents, support, sub.identity)  # support holds the link
            with monkeypatch.context() as patched:
                patched.setattr(troth._api.network, "revoke_remotely", cut_off)
                with pytest.raises(RuntimeError, match="killed"):
                    agents.revoke(chain, by=agents.identity, reason="done")
            assert hub._stored.authority().store.revocation_tip()[0] == 1  # taken
            home = Path(os.environ["TROTH_HOME"])
            assert _marks(home, "agents") == 1
            with pytest.raises(troth.TrothError, match="wait for this node's copy"):
                hand_out(agents, support, sub.identity)

            async def once() -> None:
                async with agents.serve():
                    pass

            asyncio.run(once())
            assert _marks(home, "agents") == 0  # the mark went with the sync
            with pytest.raises(troth.TrothError) as refused:
                hand_out(agents, support, sub.identity)
            assert "holds no unexpired credential" in str(refused.value)
            assert "wait for" not in str(refused.value)
            hand_out(agents, agents.identity, sub.identity)  # the member's own: handed


def test_a_revocation_the_authority_refuses_leaves_no_mark(
    world: dict[str, str],  # noqa: F811
    troth_home: Path,
) -> None:
    """The authority refuses a revocation by one not upstream of the link (it took nothing):
    the revoker's mark goes with the refusal, and the node hands the link out as before."""
    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    run("credential", "import", d1, "--as", "support")
    link = run_json("credential", "show", d1)["chain"][-1]["id"]
    args = ("revoke", "link", link, "--chain", d1, "--as", "support", "--authority", "acme")
    refused = troth_forked(*args, check=False)
    assert refused.returncode not in (0, CRASH_EXIT_CODE), refused.stderr
    assert "upstream" in refused.stderr
    assert _marks(troth_home) == 0
    delegate(world, "support", "sub", "d2", "orders.customer=4471", ttl="10m")


def test_a_node_started_after_the_kill_syncs_the_feed_first(
    world: dict[str, str],  # noqa: F811
    troth_home: Path,
) -> None:
    """A node started (`troth node start`) while a killed revocation's mark stands reads its
    trust with the feed synced first: the mark is gone once it runs."""
    code, _ = _revoke(world, "authority.revoke.after-commit")
    assert code == CRASH_EXIT_CODE
    assert _marks(troth_home) == 1
    run_json("node", "start", "default")
    try:
        assert _marks(troth_home) == 0
    finally:
        run("node", "stop", "default")
