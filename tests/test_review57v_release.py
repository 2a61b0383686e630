"""Review 57v, release 1 (fixed by review 58b: troth.node.release, the release pulls or asks for a
feed issued after the hold; tests/test_review58b_release.py): `troth identity release-restored`
refuses an identity a feed this node holds shows rotated past its copy (review 57r, restore 2),
but the feeds it holds are node.db's, so the restored copy's: older than the rotation. Run as
the operator's first act after putting node.db back (before anything pulled its authorities'
feeds again), it releases an identity that WAS rotated (compromised, announced) after the copy
was taken, which then signs with the keys that rotation retired."""

from __future__ import annotations

from pathlib import Path

from tests.support.announced_restore import restored_before_announced_rotation
from tests.support.cli import run


def test_release_before_the_feeds_are_pulled_again_is_refused(
    troth_home: Path, tmp_path: Path
) -> None:
    restored_before_announced_rotation(troth_home, tmp_path)
    # no sync from acme: the operator releases at once
    refused = run("identity", "release-restored", "agent", "--node", "agent", "--json", code=1)
    assert "rotated after the copy" in refused.stdout or "sync" in refused.stdout
