"""Review 67l, a review of 67f's leases revoked by a compromised rotation and of 67d's list of
what a held authority must revoke again.

revoke 1 (low: a misleading refusal on the operator's path out of a restore) A node.db copied
  while its authority was held by a failed re-revoke carries that hold's list
  (`authority_revoke_again`). Put back later, the restore is found and held (what the copy
  lacks cannot be known: docs/storage.md, "A restore found records none"), but the refusal of
  `troth authority release-restored` named the copy's stale list as "what its feed lost" (and
  `--json`'s `revoke_again`): the operator revoking again only those, then giving her word,
  let every member revoked after the copy in again. The refusal now names the list as what
  the feed lost before, beside what was revoked after the copy (review 67q, again 1: 67l
  dropped the list at the restore, and its members, which the copy's feed lacks, were
  admitted again).

rotate 1 (medium: what a stolen key obtained outlives the owner's rotation) A compromised
  rotation on a broker node revoked the leases whose chains name the identity after the
  rotation committed, in the same process (review 67f, secrets 1), with nothing durable
  between: a process killed there (SIGKILL, an OOM kill, a power cut, Ctrl-C during the
  announcement the CLI makes first) left every such lease live to its expiry (up to 30 days;
  a PostgreSQL role's sessions with it), no later start or round of the broker finishing it
  (docs/secrets.md asked the operator to notice and run `troth lease revoke --holder`). The
  revocation is now recorded due in node.db before the rotation (`broker_revoke_due`, made on
  first use, with the identity's change count), deleted once done, and finished by the broker
  at its start (before it is ready) and at each maintenance round once the identity has more
  changes than recorded (the rotation committed; a rotation that failed is not a rotation,
  and its row is deleted).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.conftest import NOW
from tests.support.backups import copy_db, feed_gone_back, node_db, restore_db
from tests.support.cli import run_json
from tests.support.histories import encode, honest_history
from tests.support.killed import killed_after
from tests.support.public_api import Agents
from tests.test_review67l_refuted import leased
from troth import limits
from troth.authority import Authority
from troth.faults import CRASH_EXIT_CODE
from troth.identity import VerifiedIdentity, verify_history
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust

world = review67f.world  # the fixture: acme's hub brokering `payments` to its members


def member(offset: int) -> VerifiedIdentity:
    """A member's verified history, made `offset` seconds before NOW."""
    return verify_history(encode(honest_history(1, start=NOW - offset).changes), now=NOW)


def held_by_a_failed_re_revoke(
    authority: Authority,
    node_trust: NodeTrust,
    lost: VerifiedIdentity,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`lost` revoked, the store gone back past it, the feed full: the authority held, `lost`
    listed to revoke again (as tests/test_review67d_hold.py holds it)."""
    start = authority.held_feed(now=NOW)
    authority.revoke_identity(lost.identifier, now=NOW)
    assert node_trust.refresh_hosted(NOW)
    feed_gone_back(authority, start.count)
    authority.revoke_identity(member(9).identifier, now=NOW)
    count, _ = authority.store.revocation_tip()
    with monkeypatch.context() as patched:
        patched.setattr(limits, "MAX_FEED_ENTRIES", count)  # the re-revoke cannot write
        node_trust.refresh_hosted(NOW)
    assert authority.restore_held() is not None


def test_revoke1_a_restored_copy_names_no_stale_list_to_revoke_again(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_node("acme")
    m1, m3 = member(10), member(8)
    with open_node("acme") as node:
        authority = node.create_authority("acme", now=NOW)
        node_trust = NodeTrust(node, authority)
        node_trust.reload(NOW)
        held_by_a_failed_re_revoke(authority, node_trust, m1, monkeypatch)
        node_trust.detach()
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)  # taken while held, m1 listed
    run_json("authority", "release-restored", "--authority", "acme", "--revoked-again")
    with open_node("acme") as node:  # the operator revokes m1 again, and m3 after the copy
        node.authority().revoke_identity(m1.identifier, now=NOW + 1)
        node.authority().revoke_identity(m3.identifier, now=NOW + 2)
    restore_db(path, copy)
    refused = run_json("authority", "release-restored", "--authority", "acme", code=1)
    # named as part of what to revoke again, beside what was revoked after the copy; the
    # copy's feed lacks m1 (review 67q, again 1: the list dropped, m1 was admitted again)
    assert "after the copy was taken, and what its feed lost before" in refused["message"]
    assert refused["revoke_again"]["identities"] == [str(m1.identifier)]


def _killed_then_started(world: Agents, crash_at: str) -> list[str]:
    """support leases, a compromised rotation of the hub's identity killed at `crash_at`, the
    broker started again: the states of support's leases an operator's revocation ends then."""
    leased(world, (world.agents, "support"))

    def rotate() -> None:
        with troth.Node.open("acme") as hub:
            hub.identities.rotate(hub.identity, compromised=True)

    assert killed_after(0, rotate, crash_at) == CRASH_EXIT_CODE

    async def start() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)):
            pass

    asyncio.run(start())
    return [lease.state.name for lease in world.hub.secrets.revoke_holder(world.support)]


def test_rotate1_a_rotation_killed_before_its_revocation_is_finished_by_the_broker(
    world: Agents,
) -> None:
    """The rotation committed, the process killed before the revocation: the broker's next
    start revokes support's lease (an operator's revocation of support finds nothing live)."""
    assert _killed_then_started(world, "identity.rotate.after-commit") == []


def test_rotate1_a_rotation_killed_before_its_commit_revokes_nothing(world: Agents) -> None:
    """No rotation, no revocation: killed before its commit, the row recorded due waits for
    a rotation (support's lease still live after the broker's start)."""
    assert _killed_then_started(world, "identity.rotate.before-commit") == ["REVOKED"]
