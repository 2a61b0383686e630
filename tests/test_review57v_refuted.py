"""Review 57v: attacks on the restore hold and its release that did not work (each a real
attempt that fails if the defence breaks)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.cli import run_json
from tests.test_review57i_restore import _refused, _restored_after_rotation
from troth.node import open_node

NOW = int(time.time())


def test_a_release_in_another_process_is_seen_by_an_open_node(troth_home: Path) -> None:
    """A node open (running) when the operator releases one of its many held identities from
    another process: the hold is read from node.db at each use, not kept, so the open node
    signs as the released one at once, and the others stay held."""
    _restored_after_rotation(troth_home)
    with open_node("laptop") as running:
        _refused(lambda: running.identities.signer("clerk", now=NOW))  # found, both held
        released = run_json("identity", "release-restored", "clerk", "--node", "laptop")
        assert released["released"] is True
        running.identities.signer("clerk", now=NOW).sign(b"m")
        _refused(lambda: running.identities.signer("courier", now=NOW))
        _refused(lambda: running.identities.rotate("courier", now=NOW + 20))


def test_a_release_is_not_undone_by_a_second_check_of_another_object(troth_home: Path) -> None:
    """The restore is found once: a node opened after the release (a fresh RestoredIdentities,
    its `_checked` unset) does not find it again and hold the released identity anew."""
    _restored_after_rotation(troth_home)
    run_json("identity", "release-restored", "clerk", "--node", "laptop")
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
