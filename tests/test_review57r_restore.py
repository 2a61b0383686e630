"""Review 57r: review 57i's "a restored node.db holds its identities" (troth.identity.restored),
from the operator's side. Status 1: `troth node status` told the operator of an identity
restore to "revoke again what was revoked after the copy" (a lease's advice), not what to do
with held identities. CLI 1: the recovery (release an identity not rotated since the copy) was
the Python API only; `troth identity release-restored IDENTITY` now does it. Restore 2: it
released an identity a feed the node holds shows rotated after the copy (its owner announced
the rotation), which then signed with the keys that rotation retired; refused now."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.announced_restore import restored_before_announced_rotation
from tests.support.backups import restores_found
from tests.support.cli import run, run_json
from tests.test_review57i_restore import _refused, _restored_after_rotation
from troth.cli.node_cmds import _restored
from troth.clock import FixedClock
from troth.errors import IdentityError, IdentityFailure
from troth.identity.restored import RestoredIdentities
from troth.node import open_node
from troth.node.authorities import sync_from
from troth.node.runtime import NodeRuntime
from troth.storage.sqlite import SqliteDatabase
from troth.transport import MemoryNetwork, MemoryTransport

NOW = int(time.time())


def test_node_status_tells_what_to_do_with_held_identities() -> None:
    text = _restored(
        [
            {"scope": "identity", "counter": 0, "guard": 1, "voided": 2, "at": 5},
            {"scope": "broker", "counter": 0, "guard": 1, "voided": 1, "at": 5},
        ]
    )
    assert text is not None
    identity, broker = text.split("; ")
    assert "2 identity(ies) held" in identity
    assert "troth identity release-restored" in identity
    assert "revoke again" not in identity
    assert "1 lease(s) revoked" in broker
    assert "revoke again" in broker


def test_release_restored_releases_one_identity_with_a_warning(troth_home: Path) -> None:
    _restored_after_rotation(troth_home)
    released = run_json(
        "identity", "release-restored", "clerk", "--node", "laptop", "--vouch-not-rotated"
    )
    assert released["released"] is True
    assert released["name"] == "clerk"
    assert any("retired" in warning for warning in released["warnings"])
    again = run("identity", "release-restored", "clerk", "--node", "laptop").stdout
    assert "is not held" in again
    with open_node("laptop") as node:
        node.identities.signer("clerk", now=NOW).sign(b"m")
        _refused(lambda: node.identities.signer("courier", now=NOW))


def test_release_restored_refuses_an_identity_its_feed_shows_rotated(
    troth_home: Path, tmp_path: Path
) -> None:
    """As review 50g, local 1: agent's node.db put back to a copy from before its announced
    rotation, the authority's feed (3 changes) pulled since."""
    restored_before_announced_rotation(troth_home, tmp_path)
    with open_node("acme") as acme, open_node("agent") as agent:
        sync_from(agent, acme.authority(), now=int(time.time()))
    refused = run("identity", "release-restored", "agent", "--node", "agent", "--json", code=1)
    assert "rotated after the copy" in refused.stdout
    with open_node("agent") as agent:
        _refused(lambda: agent.identities.signer("agent", now=int(time.time())))


def test_release_before_the_restore_is_found_finds_it_first(troth_home: Path) -> None:
    """Release 1: the operator's first act after putting node.db back, before anything
    signed: the restore was not found yet, the identity "not held", and held at its next use."""
    path = _restored_after_rotation(troth_home)
    with open_node("laptop") as node:
        assert node.identities.release_restored("clerk")
        node.identities.signer("clerk", now=NOW).sign(b"m")
        _refused(lambda: node.identities.signer("courier", now=NOW))
    assert [row.scope for row in restores_found(path)] == ["identity"]


def test_cli_rotate_of_a_restored_copy_is_refused_as_held(troth_home: Path) -> None:
    """Clock 1: `troth identity rotate` passes a Clock; the check that found the restore bound
    it as the hold's time (sqlite: type 'SystemClock' is not supported), and the command
    failed with a storage error (exit 4), the restore not recorded, not as held (exit 1)."""
    path = _restored_after_rotation(troth_home)
    refused = run("identity", "rotate", "courier", "--node", "laptop", code=1).output
    assert "restored from a copy" in refused
    assert [row.scope for row in restores_found(path)] == ["identity"]


def test_restored_identities_check_takes_a_clock(troth_home: Path) -> None:
    path = _restored_after_rotation(troth_home)
    db = SqliteDatabase(path)
    try:
        restored = RestoredIdentities(db).check(FixedClock(NOW))
        assert restored is not None
        assert restored.voided == 2
    finally:
        db.close()


def test_a_node_whose_own_identity_is_held_says_how_to_start_it(troth_home: Path) -> None:
    """Start 1: `troth node status` (which names the recovery) needs a running node, and a node
    whose own identity is held does not start: the start's error must name the recovery
    (release it, if not rotated since the copy), before the node listens."""
    _restored_after_rotation(troth_home, own=True)
    network = MemoryNetwork()

    async def start() -> None:
        node = open_node("laptop")
        runtime = NodeRuntime(
            node,
            clock=FixedClock(NOW),
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
    assert "troth identity release-restored laptop --node laptop" in str(refused.value)
