"""Review 57v: attacks on the restore hold and its release that did not work (each a real
attempt that fails if the defence breaks)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.cli import run_json
from tests.test_review57i_restore import _refused, _restored_after_rotation
from troth.clock import FixedClock
from troth.node import open_node
from troth.node.runtime import NodeRuntime
from troth.storage import SqliteDatabase, rollback
from troth.storage.rollback import RollbackGuard, encode_guard, guard_path, read_guard
from troth.transport import MemoryNetwork, MemoryTransport

NOW = int(time.time())


def test_a_release_in_another_process_is_seen_by_an_open_node(troth_home: Path) -> None:
    """A node open (running) when the operator releases one of its many held identities from
    another process: the hold is read from node.db at each use, not kept, so the open node
    signs as the released one at once, and the others stay held."""
    _restored_after_rotation(troth_home)
    with open_node("laptop") as running:
        _refused(lambda: running.identities.signer("clerk", now=NOW))  # found, both held
        released = run_json(
            "identity", "release-restored", "clerk", "--node", "laptop", "--vouch-not-rotated"
        )
        assert released["released"] is True
        running.identities.signer("clerk", now=NOW).sign(b"m")
        _refused(lambda: running.identities.signer("courier", now=NOW))
        _refused(lambda: running.identities.rotate("courier", now=NOW + 20))


def test_a_release_is_not_undone_by_a_second_check_of_another_object(troth_home: Path) -> None:
    """The restore is found once: a node opened after the release (a fresh RestoredIdentities,
    its `_checked` unset) does not find it again and hold the released identity anew."""
    _restored_after_rotation(troth_home)
    run_json("identity", "release-restored", "clerk", "--node", "laptop", "--vouch-not-rotated")
    with open_node("laptop") as node:
        assert node.identities.check_restored(NOW) is None
        node.identities.signer("clerk", now=NOW).sign(b"m")
        _refused(lambda: node.identities.signer("courier", now=NOW))


def test_release_json_says_not_held_for_an_identity_never_held(troth_home: Path) -> None:
    """--json says exactly what happened: an identity made after the restore was found is
    not held, and `released` is false (no warning that it signs with the copy's keys)."""
    _restored_after_rotation(troth_home)
    with open_node("laptop") as node:
        node.identities.check_restored(NOW)
        node.identities.create(now=NOW, name="fresh")
    result = run_json("identity", "release-restored", "fresh", "--node", "laptop")
    assert result["released"] is False
    assert not result.get("warnings")


def test_two_guards_of_the_same_bytes_each_read_as_their_file_holds(tmp_path: Path) -> None:
    """The cache is keyed by content only: guard B holding the bytes guard A held before A's
    raise still reads as B holds them (a pure decode), and A as its raised state."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = SqliteDatabase(tmp_path / "a" / "node.db")
    second = SqliteDatabase(tmp_path / "b" / "node.db")
    try:
        for db in (first, second):
            with db.transaction():
                RollbackGuard(db, "identity").bump()
        a, b = guard_path(first.path), guard_path(second.path)
        b.write_bytes(a.read_bytes())  # each names its own node.db (review 64j): made alike
        with first.transaction():
            RollbackGuard(first, "identity").bump()
        assert read_guard(a) == {"identity": 2}
        assert read_guard(b) == {"identity": 1}
        b.write_bytes(a.read_bytes())  # another process copies A's bytes over B
        assert read_guard(b) == {"identity": 2}
    finally:
        first.close()
        second.close()


def test_the_guard_cache_keeps_at_most_its_bound(tmp_path: Path) -> None:
    path = tmp_path / "node.db.guard"
    for count in range(3 * rollback._KNOWN_GUARDS_KEPT):
        path.write_bytes(encode_guard({"identity": count}, seq=count + 1))
        assert read_guard(path) == {"identity": count}
    assert len(rollback._KNOWN_GUARDS) <= rollback._KNOWN_GUARDS_KEPT


def test_a_node_with_other_identities_held_starts_and_announces(troth_home: Path) -> None:
    """Many identities, its own not held (made after the restore was found): the node starts,
    a round of announcements over every local identity passes the held ones by (no error
    aborts the round), and they stay held while it runs."""
    _restored_after_rotation(troth_home)
    network = MemoryNetwork()

    async def started() -> list[dict[str, object]]:
        node = open_node("laptop")
        runtime = NodeRuntime(
            node,
            clock=FixedClock(NOW),
            transport=lambda router: MemoryTransport(router, network, host="host-laptop"),
        )
        try:
            await runtime.start()
            announced = await runtime.announce_rotations()
            _refused(lambda: node.identities.signer("courier", now=NOW))
            node.identities.signer("laptop", now=NOW).sign(b"m")
            return announced
        finally:
            await runtime.stop()
            node.close()

    assert asyncio.run(started()) == []
