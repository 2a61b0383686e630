"""Review 50g, verify 1: `troth identity verify --node` (`troth.node.verify.verify_bare_history`)
judged a history against the node's stored copy (no fork, no rollback) but stored nothing: the
node verified a member's rotation, and its stale backup (the history before that rotation, the
pre-rotation key a thief copied) was `valid` at the same node right after. What protects the
node (the newest history it verified) is now stored when verified, not only when imported:
a history that extends a stored copy replaces it, and a fork of it is kept as evidence
(`troth identity forks`, review 49c). A history of an identity the node stores no copy of is
still only checked: a check is no first sight (`troth identity import` is).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run, run_json


def _histories(tmp_path: Path) -> tuple[Path, Path]:
    """dave's history before and after a rotation (node `other`)."""
    run("node", "init", "other")
    run("identity", "create", "dave", "--node", "other")
    before, after = tmp_path / "dave1.troth", tmp_path / "dave2.troth"
    run("identity", "export", "dave", "--out", str(before), "--node", "other")
    run("identity", "rotate", "dave", "--node", "other")
    run("identity", "export", "dave", "--out", str(after), "--node", "other")
    return before, after


def test_a_verified_rotation_refuses_the_stale_backup_after_it(tmp_path: Path) -> None:
    before, after = _histories(tmp_path)
    run("node", "init", "desk")
    assert run_json("identity", "import", str(before), "--node", "desk")["changes"] == 1
    verified = run_json("identity", "verify", str(after), "--node", "desk")
    assert (verified["valid"], verified["changes"]) == (True, 2)
    stale = run("identity", "verify", str(before), "--node", "desk", code=1)
    assert "older than the stored copy" in stale.stderr
    assert (
        "older than the stored copy"
        in run("identity", "import", str(before), "--node", "desk", code=1).stderr
    )


def test_a_checked_history_of_an_unknown_identity_is_not_stored(tmp_path: Path) -> None:
    before, after = _histories(tmp_path)
    run("node", "init", "desk")
    assert run_json("identity", "verify", str(before), "--node", "desk")["valid"] is True
    # no first sight: the older history did not become the copy the newer one must extend,
    # and the newer one is not stored either
    assert run_json("identity", "verify", str(after), "--node", "desk")["valid"] is True
    assert run_json("identity", "verify", str(before), "--node", "desk")["valid"] is True
