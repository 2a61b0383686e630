"""Identities that rotate for years (issue 9, item 3): no owner's normal operation makes an
identity unusable. A standalone identity's 64th rotation is refused (the write refuses what the
read would refuse); an enrolled identity rotates on, presented from the newest checkpoint its
authority published, and verifies at the same cost after 10,000 rotations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import pytest

from tests.conftest import NOW
from tests.support.cli import run_json
from tests.support.enroll import enroll_in_process
from troth import limits
from troth.authority import Authority
from troth.authority.client import refresh_request, rotated_request
from troth.cli.common import CLOCK
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.credentials.revocation_held import feed_checkpoints
from troth.errors import IdentityError, IdentityFailure
from troth.identity import Checkpoint, UnverifiedHistory, VerifiedIdentity, verify_history
from troth.node import Node, init_node, open_node

F = IdentityFailure
ANNOUNCE_EVERY = 32  # rotations between announcements (well within one presentable history)
STEP = 60  # seconds between rotations: an announcement every 32 min stays within the quota


@dataclass
class World:
    """An authority node, the owner's node (identity "agent", enrolled) and a verifier node."""

    clock: FixedClock
    acme: Authority
    owner: Node
    verifier: Node

    def announce(self) -> None:
        """What `troth identity rotate` does after a rotation: announce it, sync the feed."""
        now = self.clock.now()
        request = rotated_request(self.owner.identities, "agent", self.acme.identifier, now=now)
        self.acme.rotated(request, now=now)
        self.sync(self.owner)

    def sync(self, node: Node) -> None:
        node.wallet.sync_feed(
            self.acme.identifier,
            lambda since: self.acme.feed(now=self.clock.now(), since=since),
            now=self.clock,
        )

    def rotate(self, times: int) -> None:
        for number in range(times):
            self.clock.advance(STEP)
            self.owner.identities.rotate("agent", now=self.clock)
            if (number + 1) % ANNOUNCE_EVERY == 0:
                self.announce()

    def presented(self) -> VerifiedIdentity:
        return self.owner.identities.get("agent", now=self.clock.now()).identity

    def verify_as_a_stranger(self) -> VerifiedIdentity:
        """A verifier with no stored copy, holding a fresh feed of the authority."""
        self.sync(self.verifier)
        feed = self.verifier.wallet.feed(
            self.acme.identifier, now=self.clock.now(), max_staleness=300
        )
        checkpoints = feed_checkpoints(
            {self.acme.identifier: feed}, now=self.clock.now(), max_staleness=300
        )
        history = self.owner.identities.export("agent")
        identity = verify_history(history, now=self.clock.now(), checkpoints=checkpoints)
        feed.check_current(identity)
        return identity


@pytest.fixture
def world(troth_home: Path) -> Iterator[World]:
    clock = FixedClock(NOW)
    for name in ("acme", "owner", "verifier"):
        init_node(name)
    with (
        open_node("acme") as acme_node,
        open_node("owner") as owner,
        open_node("verifier") as verifier,
    ):
        acme = acme_node.create_authority("acme", now=NOW)
        owner.identities.create(now=NOW, name="agent")
        ticket = acme.create_ticket(
            creator=acme.identifier, attributes=Attributes(), address="node:acme", now=NOW
        )
        enroll_in_process(owner, "agent", acme, str(ticket), clock)
        yield World(clock, acme, owner, verifier)


def test_a_standalone_identity_refuses_the_rotation_that_would_brick_it(troth_home: Path) -> None:
    """Issue 9: the 64th rotation wrote 65 changes and show, rotate and verify failed for
    good. Now it is refused, with the limit and what to do, and nothing changes."""
    clock = FixedClock(NOW)
    init_node("solo")
    with open_node("solo") as node:
        node.identities.create(now=NOW, name="solo")
        for _ in range(limits.MAX_IDENTITY_CHANGES - 1):
            clock.advance(STEP)
            node.identities.rotate("solo", now=clock)
        before = node.identities.get("solo", now=clock.now())
        assert before.identity.change_count == limits.MAX_IDENTITY_CHANGES
        clock.advance(STEP)
        with pytest.raises(IdentityError) as caught:
            node.identities.rotate("solo", now=clock)
        assert caught.value.reason is F.OVER_LIMIT
        assert "64 changes" in str(caught.value)
        assert "enroll it with an authority" in str(caught.value)
        after = node.identities.get("solo", now=clock.now())  # still usable, unchanged
        assert after.identity.history == before.identity.history
        assert after.next_key == before.next_key
        verify_history(node.identities.export("solo"), now=clock.now())
        node.identities.signer("solo", now=clock.now())  # it still signs


def test_an_enrolled_identity_rotates_past_64_changes(world: World) -> None:
    world.rotate(100)
    presented = world.presented()
    assert presented.change_count == 101
    assert presented.checkpoint is not None
    assert presented.checkpoint.authority == world.acme.identifier.digest
    # the oldest checkpoint within the last 64 changes (the announcement at 64, not the one at
    # 96): a verifier that stored any change since 64 sees a history that overlaps its copy
    assert presented.first_index == 64
    assert world.verify_as_a_stranger().current_change_hash == presented.current_change_hash
    # the authority takes requests carrying the checkpointed history (and stores it)
    now = world.clock.now()
    request = refresh_request(world.owner.identities, "agent", world.acme.identifier, now=now)
    world.acme.refresh(request, now=now)
    # without the authority's word, the history is refused with what to do
    with pytest.raises(IdentityError) as caught:
        verify_history(world.owner.identities.export("agent"), now=now)
    assert caught.value.reason is F.UNATTESTED_CHECKPOINT
    assert f"trust {world.acme.identifier}" in str(caught.value)


def test_change_rows_are_kept_from_the_first_rotation_whose_history_is_cut(world: World) -> None:
    """A history presented whole is read from its history row: a rotation writes no change
    rows (fewer pages per rotation); the first rotation whose presented history is cut stores
    every change, which the checkpoint look-ups and the windows across a cut then read."""
    identities = world.owner.identities
    digest = world.presented().identifier.digest
    world.rotate(3)
    whole = world.presented()
    assert whole.first_index == 0
    assert whole.change_count == 4
    assert identities.store.change_rows(digest, 0, 3) == []
    for change in whole.changes:  # the store still attests every change, from the history row
        checkpoint = Checkpoint(digest, digest, change.index)
        assert identities.attested_by_store(checkpoint, change.change_hash)
        assert not identities.attested_by_store(checkpoint, bytes(32))
    window = identities.window_around(digest, whole.changes[1].change_hash)
    assert window is not None
    assert [c.body for c in UnverifiedHistory.decode(window).changes] == [
        c.signed.body for c in whole.changes[1:3]
    ]
    world.rotate(limits.MAX_IDENTITY_CHANGES + 1 - 4)  # the first history that does not fit
    cut = world.presented()
    assert cut.first_index > 0
    rows = identities.store.change_rows(digest, 0, cut.current.index)
    assert [row[0] for row in rows] == list(range(cut.change_count))
    assert [row[4] for row in rows[cut.first_index :]] == [c.change_hash for c in cut.changes]
    world.rotate(1)  # from then on each rotation adds its row
    assert len(identities.store.change_rows(digest, 0, world.presented().current.index)) == (
        cut.change_count + 1
    )


def test_the_cli_verifies_a_checkpointed_history_with_a_nodes_feed(
    world: World, tmp_path: Path
) -> None:
    world.rotate(70)
    history = tmp_path / "agent.history"
    history.write_bytes(world.owner.identities.export("agent"))
    refused = run_json("identity", "verify", str(history), code=1)
    assert refused["reason"] == F.UNATTESTED_CHECKPOINT.value
    world.sync(world.verifier)  # a node holding a fresh feed of the authority attests it
    with patch.object(CLOCK, "now", world.clock.now):
        verified = run_json("identity", "verify", str(history), "--node", "verifier")
    assert verified["changes"] == 71


def test_rotations_without_announcements_stop_before_the_limit(world: World) -> None:
    """An identity whose rotations its authority has not attested for 63 changes is refused
    the next one (and told to announce and sync), then rotates on once it has."""
    world.rotate(ANNOUNCE_EVERY)  # announced at change 32
    for _ in range(limits.MAX_IDENTITY_CHANGES - 1):
        world.clock.advance(STEP)
        world.owner.identities.rotate("agent", now=world.clock)
    assert world.presented().change_count == 32 + 64
    with pytest.raises(IdentityError) as caught:
        world.owner.identities.rotate("agent", now=world.clock)
    assert caught.value.reason is F.OVER_LIMIT
    assert "announce the rotations" in str(caught.value)
    world.announce()
    world.owner.identities.rotate("agent", now=world.clock)
    assert world.presented().change_count == 32 + 64 + 1
    world.verify_as_a_stranger()


def test_ten_thousand_rotations(world: World) -> None:
    """10,000 rotations of one identity, announced every 32: exact counts, and verification
    after them costs at most 64 changes' signatures (presented from the oldest checkpoint
    within the last 64 changes), as before them: it does not grow with the rotations."""
    assert world.verify_as_a_stranger().change_count == 1
    world.rotate(10_000)
    world.announce()
    presented = world.presented()
    assert presented.change_count == 10_001
    assert presented.first_index == 9952  # the oldest announcement after change 10,000 - 64
    assert len(presented.changes) == 49
    feed = world.owner.wallet.feed(world.acme.identifier, now=world.clock.now(), max_staleness=300)
    supersession = feed.supersession(presented.identifier)
    assert supersession is not None
    assert supersession.changes == 10_001
    assert feed.count == 10_000 // ANNOUNCE_EVERY + 1  # one entry per announcement, no more
    stranger = world.verify_as_a_stranger()
    assert stranger.change_count == 10_001
    assert stranger.current_key == presented.current_key
