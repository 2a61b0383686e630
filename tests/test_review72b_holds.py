"""Review 72b (area: holds): the damaged authority hold 71q left xfail (wave3a 6), and 71x's
and 71q's typed reads of the restore holds attacked as a writer of node.db.

1. (a damaged authority hold could not be released, low) An authority's hold
   (`authority_restore_hold`) whose time node.db holds damaged (TEXT, BLOB, REAL) held the
   authority for good: every read of it failed with StorageError, `troth authority
   release-restored --revoked-again` with them (its refusal and its release both read the
   time first), and the operator's only way out was an edit of node.db by hand; the
   authority's own refusals (`check_not_held`: no credential, no feed page) were StorageError
   too, naming no release. What a release of an authority's hold requires does not depend on
   its time: the authority's feed here is the restored copy's (its own feed, even pulled
   from itself, is what lacks the revocations made after the copy: it tells nothing), so the
   release is, as for a well-formed hold, its operator's word that what was revoked after the
   copy is revoked again (`--revoked-again`), never without it. Now a damaged hold is a hold
   (AuthorityError RESTORED naming the damage and the release), released on that word, its
   time reported as unknown: `HoldTime.DAMAGED` in Python, `held_at` null and
   `held_at_damaged` true in --json (the identity release's too).
2. (an authority hold of NULL time was no hold, low) `min(held_at)` of a row whose time is
   NULL (its table made again without NOT NULL) is NULL, read as an empty table: not held.
   Now a hold of damaged time.
3. (a damaged authority hold stopped its node, low) Every other read of the hold (the node's
   own feed of its authority at its start and each reload, a `troth.Node` handle's feed and
   `_feed_due`, the policy service's feeds, `troth node status`) failed with StorageError:
   the node did not start, its status could not be read. Now held (no feed of it), the
   status's `authority_held` "damaged".
4. (a node whose own identity's hold was damaged did not say how to start it, low) 71q wave3a
   1 made such an identity's signer refuse ROLLBACK, but the node's start read the hold's
   time bare first: StorageError, naming no release (review 57r, start 1 names it for a hold
   well formed). Now ROLLBACK naming the damage and `troth identity release-restored`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.cli import run_json
from tests.support.nodes import MemNet, run_memnet
from tests.test_review57i_restore import _restored_after_rotation
from tests.test_review71c_rows import node_db  # noqa: F401 - a fixture
from tests.test_review71q_wave3a import _damaged_hold
from troth.cli.node_cmds import _authority
from troth.cli.output import Reporter
from troth.clock import FixedClock, SystemClock
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    IdentityError,
    IdentityFailure,
    StorageError,
)
from troth.node import open_node
from troth.node.release import VOUCH_OPTION
from troth.node.runtime import NodeRuntime
from troth.node.trust import read_hosted
from troth.storage import HoldTime, SqliteAuthorityStore, SqliteDatabase
from troth.transport import MemoryNetwork, MemoryTransport

_DAMAGE = "UPDATE authority_restore_hold SET held_at = {}"


@pytest.mark.parametrize("time", ["'x'", "x'05'", "5.5"])
def test_a_damaged_authority_hold_is_a_hold_released_on_the_operators_word(
    troth_home: Path, time: str
) -> None:
    """72b holds 1: an authority's hold whose time node.db holds damaged refused the authority
    with StorageError (naming no release) and could not be released, --revoked-again too.
    Now the authority is refused RESTORED naming the damage, its release without the word
    refused the same, and the word releases it, its time reported unknown (`held_at` null,
    `held_at_damaged` true)."""
    with troth.Node.open("acme") as handle:
        handle.create_authority()
    with open_node("acme") as node:
        node.authority().store.hold(SystemClock().now())
        node.db.execute(_DAMAGE.format(time))
        with pytest.raises(AuthorityError) as refused:
            node.authority().check_not_held()
        assert refused.value.reason is AuthorityFailure.RESTORED
        assert "damaged" in str(refused.value)
    unvouched = run_json("authority", "release-restored", "--authority", "acme", code=1)
    assert unvouched["error"] == "AuthorityError"
    assert "--revoked-again" in unvouched["message"]
    assert "damaged" in unvouched["message"]
    released = run_json("authority", "release-restored", "--authority", "acme", "--revoked-again")
    assert (released["released"], released["held_at"], released["held_at_damaged"]) == (
        True,
        None,
        True,
    )
    with open_node("acme") as node:
        assert node.authority().restore_held() is None
        node.authority().check_not_held()


def test_a_damaged_identity_holds_release_says_its_time_is_unknown(troth_home: Path) -> None:
    """72b holds 1: the identity release's --json said a damaged hold's time was unknown only
    by `held_at` null beside `released` true; now `held_at_damaged` true, as the
    authority's."""
    _damaged_hold(troth_home)
    args = ("identity", "release-restored", "clerk", "--node", "laptop", VOUCH_OPTION)
    released = run_json(*args)
    assert (released["released"], released["held_at"], released["held_at_damaged"]) == (
        True,
        None,
        True,
    )


def test_an_authority_hold_of_null_time_is_a_hold(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture imported above
) -> None:
    """72b holds 2: an authority hold row whose time is NULL (a table made again by a writer
    of node.db without its NOT NULL) was read as no hold: `min(held_at)` of it is NULL, which
    the typed read took for an empty table, and the authority issued and served its copy's
    feed. Now a hold of damaged time (StorageError where the time is asked for)."""
    node_db.execute("CREATE TABLE authority_restore_hold (authority BLOB, held_at INTEGER)")
    node_db.execute("INSERT INTO authority_restore_hold VALUES (x'01', NULL)")
    store = SqliteAuthorityStore(node_db)
    with pytest.raises(StorageError, match="is damaged: its"):
        store.restore_held()
    assert store.restore_hold() is HoldTime.DAMAGED


def test_a_damaged_authority_hold_holds_the_nodes_feed_of_it(troth_home: Path) -> None:
    """72b holds 3: with its authority's hold time damaged, its node's every read of its own
    feed (`read_hosted`: the node's trust at each start and reload, a `troth.Node` handle's
    verifier, its `_feed_due`) and `troth node status` (`authority_held`) failed with
    StorageError, naming no release: the node did not start. Now a hold: no feed of it (every
    chain of it refused for want of one), the status saying it is held, its time unknown."""
    with troth.Node.open("acme") as handle:
        handle.create_authority()
    with open_node("acme") as node:
        node.authority().store.hold(SystemClock().now())
        node.db.execute(_DAMAGE.format("'x'"))
        assert read_hosted(node.authority(), None, SystemClock().now()) is None
    with troth.Node.open("acme") as handle:
        assert handle.feed(handle.authority().identifier) is None


def test_a_damaged_authority_hold_is_in_the_status(tmp_path: Path) -> None:
    """72b holds 3: a running hub's status failed with StorageError once its authority's hold
    time was damaged; now `authority_held` is "damaged" and the CLI's line says it is held."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        assert hub.trust.hosted is not None
        hub.trust.hosted.store.hold(NOW)
        hub.node.db.execute(_DAMAGE.format("'x'"))
        assert hub.status()["authority_held"] == "damaged"
        shown = _authority(hub.status(), Reporter(False))
        assert "held since a time node.db holds damaged" in shown

    run_memnet(test, tmp_path)


def test_a_node_whose_own_identitys_hold_is_damaged_says_how_to_start_it(
    troth_home: Path,
) -> None:
    """72b holds 4: a node whose own identity's restore hold node.db holds damaged failed to
    start with StorageError (`restore_held` of its own identity, read bare at the start),
    naming no release where the same hold well formed names it (review 57r, start 1); its
    signer already said ROLLBACK (71q wave3a 1). Now the start refuses ROLLBACK naming the
    damage and the release."""
    _restored_after_rotation(troth_home, own=True)
    with open_node("laptop") as node:
        assert node.identities.check_restored(NOW + 20) is not None
        node.db.execute(
            "UPDATE identity_restore_holds SET held_at = 'x' WHERE identifier = ?",
            (node.identities.find("laptop").identifier,),
        )
    network = MemoryNetwork()

    async def start() -> None:
        node = open_node("laptop")
        runtime = NodeRuntime(
            node,
            clock=FixedClock(NOW + 30),
            transport=lambda router: MemoryTransport(router, network, host="host-laptop"),
        )
        try:
            await runtime.start()
        finally:
            await runtime.stop()
            node.close()

    with pytest.raises(IdentityError) as refused:
        asyncio.run(start())
    assert refused.value.reason is IdentityFailure.ROLLBACK
    assert "damaged" in str(refused.value)
    assert "troth identity release-restored laptop --node laptop" in str(refused.value)
