"""Review 66b, hold: a second look at the hold a restore of node.db puts on the hosted
authority (reviews 65o, 65z).

hold 1 (medium: a fleet's policy rolled back) A hub's node.db restored from a copy taken before
  its authority's newest bundle (revision 2, held by the whole fleet) holds the copy's revision
  1 back (review 54p), yet `troth policy bundle resign` re-signed that revision 1 as revision
  2 (one up from the copy's) and `sign_bundle_as` signed a new revision 2: a second bundle of
  the fleet's revision, and of two bundles of one revision every node keeps the one of the
  lower digest, so the copy's policies replaced the fleet's on about half of the restores,
  unseen. Now neither signs a bundle of an authority whose bundle the node holds back
  (PolicyError RESTORED: the node's revision is the copy's; the operator installs the
  fleet's newest first, which confirms it, then signs above it).

hold 2 (low: a release on no one's word) `troth authority release-restored` lifted the hold
  as soon as it was run, the warning that whatever was not revoked again is admitted again
  printed after the fact: an operator following `troth node status` to the command (or a
  script retrying it) admitted again every member revoked after the copy. Now, held, it
  refuses unless `--revoked-again` (the operator's word, as `troth identity release-restored
  --vouch-not-rotated` takes it), naming what to revoke again first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run_json
from tests.support.gates import POLICIES, TOOLS
from tests.test_review45f_policy import bundles
from troth.clock import SystemClock
from troth.crypto import sha256
from troth.errors import PolicyError, PolicyFailure
from troth.node import open_node
from troth.node.services.policy import install_bundle, resign_held_bundle, sign_bundle_as


def _restored_hub(home: Path, tmp: Path) -> tuple[bytes, bytes]:
    """Hub acme held revision 1 of its authority's bundle, then 2 (the fleet's), put back to
    the copy holding 1: both revisions' bytes."""
    first, second = bundles(home, tmp)
    clock = SystemClock()
    install_bundle(home, "acme", first.read_bytes(), clock=clock)
    path, copy = node_db(home, "acme"), tmp / "copy.db"
    copy_db(path, copy)
    install_bundle(home, "acme", second.read_bytes(), clock=clock)
    restore_db(path, copy)
    return first.read_bytes(), second.read_bytes()


def test_hold1_a_restored_hub_resigns_no_revision_the_fleet_holds(
    troth_home: Path, tmp_path: Path
) -> None:
    first, second = _restored_hub(troth_home, tmp_path)
    clock = SystemClock()
    with pytest.raises(PolicyError) as caught:
        resign_held_bundle(troth_home, "acme", digest=sha256(first).hex(), clock=clock)
    assert caught.value.reason is PolicyFailure.RESTORED
    install_bundle(troth_home, "acme", second, clock=clock)  # the fleet's newest, confirmed
    summary = resign_held_bundle(troth_home, "acme", digest=sha256(second).hex(), clock=clock)
    assert summary["revision"] == 3


def test_hold1_a_restored_hub_signs_no_revision_the_fleet_holds(
    troth_home: Path, tmp_path: Path
) -> None:
    _restored_hub(troth_home, tmp_path)
    now = SystemClock().now()
    with open_node("acme", home=troth_home) as node:
        authority = node.hosted_authority()
        assert authority is not None
        with pytest.raises(PolicyError) as caught:
            sign_bundle_as(
                node,
                "acme",
                authority=authority.identifier,
                policies=POLICIES,
                schema="",
                tools=TOOLS,
                services={},
                revision=2,
                now=now,
                ttl=3600,
            )
    assert caught.value.reason is PolicyFailure.RESTORED


def test_hold2_release_restored_takes_the_operators_word(troth_home: Path) -> None:
    with troth.Node.open("acme") as handle:
        handle.create_authority()
    with open_node("acme") as node:
        node.authority().store.hold(SystemClock().now())
    refused = run_json("authority", "release-restored", "--authority", "acme", code=1)
    assert "--revoked-again" in refused["message"]
    with open_node("acme") as node:
        assert node.authority().restore_held() is not None  # still held
    released = run_json("authority", "release-restored", "--authority", "acme", "--revoked-again")
    assert released["released"] is True
    with open_node("acme") as node:
        assert node.authority().restore_held() is None
