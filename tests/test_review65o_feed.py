"""Review 65o, feed: review 64j's feed 2 (a strict xfail, a design for the lead), made a hold.

feed 2 (medium: members revoked after a backup admitted again by a hub restarted on it) The
hub stopped, an older copy of its node.db put back (a stolen backup, an operator's wrong
restore), the hub started: the rollback guard's `authority` scope found the restore and the
authority voided its tickets only. Its feed was the copy's, so every member revoked after the
copy was admitted again by the hub's decisions (its channels, relay, broker, a handle's
`Node.feed`, the CLI's) and by every node syncing the feed from it for the first time. Fixed
(no format change): the restore's transaction also holds the authority (`authority_restore_hold`,
`SqliteAuthorityStore.restore_held`); while held its node holds no feed of it (`read_hosted`,
`Node.feed`, a Verifier: due), so every chain of it is refused there, and it issues no
credential and serves no feed page (AuthorityError RESTORED). Its operator revokes again what
was revoked after the copy and releases it: `troth authority release-restored` (the hold
survives restarts and crashes; nothing a peer sends lifts it).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import troth
from tests.support.backups import copy_db, node_db, restore_db, restores_found
from tests.support.cli import run_json
from troth.clock import SystemClock
from troth.errors import AuthorityError, AuthorityFailure, CredentialError, CredentialFailure
from troth.node import open_node
from troth.node.authorities import refresh_locally, sync_from
from troth.node.services.node_policies import NodeFeeds
from troth.node.trust import NodeTrust


def _restored(home: Path, scratch: Path) -> tuple[troth.Identifier, troth.Identifier]:
    """Authority acme with member m (enrolled from node `m`); node.db copied; m revoked; the
    copy put back, the hub stopped meanwhile. The authority's and m's identifiers."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
    with troth.Node.open("m") as m:
        m.enroll(ticket)
        member = m.identity.identifier
    path = node_db(home, "acme")
    copy_db(path, scratch / "acme.db")
    with troth.Node.open("acme") as acme:
        acme.authority().revoke_identity(member)
        authority = acme.authority().identifier
    restore_db(path, scratch / "acme.db")
    return authority, member


def _refused(call: Callable[[], object]) -> AuthorityError:
    with pytest.raises(AuthorityError) as caught:
        call()
    assert caught.value.reason is AuthorityFailure.RESTORED
    return caught.value


def _held(home: Path) -> int | None:
    with open_node("acme", home=home) as node:
        return node.authority().restore_held()


def test_feed2_a_restored_hub_holds_no_feed_and_issues_nothing_until_released(
    troth_home: Path, tmp_path: Path
) -> None:
    authority, member = _restored(troth_home, tmp_path)
    now = SystemClock().now()
    with troth.Node.open("acme") as acme, troth.Node.open("m") as m:
        assert acme.feed(authority) is None  # a handle's decisions: no feed of it
        (chain,) = m.credentials()
        verifier = troth.Verifier(trust=[authority], feeds=acme)
        with pytest.raises(CredentialError) as caught:  # the member revoked after the copy
            verifier.verify(chain, presenter=member)
        assert caught.value.reason is CredentialFailure.NO_FEED
        m.identities.create("m2")
        with pytest.raises(AuthorityError) as refused:  # no fresh credential for anyone
            m.enroll(acme.authority().ticket({"team.name": "y"}), identity="m2")
        assert refused.value.reason is AuthorityFailure.RESTORED
    assert [row.scope for row in restores_found(node_db(troth_home, "acme"))] == ["authority"]
    with open_node("acme") as node:
        hosted = node.authority()
        trust = NodeTrust(node, hosted)  # the runtime's, as it starts
        trust.reload(now)
        assert authority not in trust.feeds
        trust.detach()
        assert NodeFeeds(node, SystemClock())(authority) is None  # the CLI's, the MCP gate's
        _refused(lambda: hosted.feed(now=now))  # no page a new node would take as all of it
        _refused(lambda: hosted.issue_member_credential(member, now=now))
        _refused(lambda: hosted.issue_member_vc(member, now=now))


def test_feed2_the_operator_revokes_again_and_releases(troth_home: Path, tmp_path: Path) -> None:
    """The recovery: revoke again what was revoked after the copy, then release: the feed is
    served and held again, the member refused by its revocation."""
    authority, member = _restored(troth_home, tmp_path)
    with troth.Node.open("acme") as acme:
        acme.authority().revoke_identity(member)  # revoking is what a held authority does
        assert acme.feed(authority) is None  # still held: the operator has not said so
    released = run_json("authority", "release-restored", "--authority", "acme", "--revoked-again")
    assert released["released"] is True
    assert released["held_at"] is not None
    again = run_json("authority", "release-restored", "--authority", "acme", "--json")
    assert (again["released"], again["held_at"]) == (False, None)
    with troth.Node.open("acme") as acme, troth.Node.open("m") as m:
        feed = acme.feed(authority)
        assert feed is not None
        assert feed.identity_revoked(member.digest)
        (chain,) = m.credentials()
        with pytest.raises(CredentialError) as caught:
            troth.Verifier(trust=[authority], feeds=acme).verify(chain, presenter=member)
        assert caught.value.reason is CredentialFailure.REVOKED


_KILLED = """
import os, sys
from troth.node import open_node
from troth.storage import rollback, sqlite_authority
def killed(*args, **kwargs):
    os._exit(137)
if sys.argv[1] == "in":  # inside the restore's transaction, the hold written, no commit
    store = sqlite_authority.SqliteAuthorityStore
    held = store._fail_closed
    store._fail_closed = lambda self, now: (held(self, now), killed())[0]
else:  # after its commit, before the guard is raised
    rollback.RollbackGuard._publish = killed
with open_node("acme") as node:
    node.authority()
"""


@pytest.mark.parametrize("where", ["in", "after"])
def test_feed2_the_hold_survives_restarts_and_a_kill_at_the_restore(
    troth_home: Path, tmp_path: Path, where: str
) -> None:
    """Killed (as SIGKILL) inside the restore's transaction or right after its commit: the
    hold is written with the restore, all or none; every later open finds it held."""
    _restored(troth_home, tmp_path)
    env = {**os.environ, "TROTH_HOME": str(troth_home)}
    done = subprocess.run([sys.executable, "-c", _KILLED, where], env=env, check=False, timeout=60)
    assert done.returncode == 137
    held = _held(troth_home)
    assert held is not None
    for _ in range(2):
        with troth.Node.open("acme") as acme:
            assert acme.feed(acme.authority().identifier) is None
        assert _held(troth_home) == held
    assert len(restores_found(node_db(troth_home, "acme"))) == 1


def test_feed2_no_request_a_member_sends_lifts_the_hold(troth_home: Path, tmp_path: Path) -> None:
    """A member refreshing again and again, and its node syncing the feed: each refused, the
    hold left (only the operator's command lifts it)."""
    authority, _ = _restored(troth_home, tmp_path)
    with open_node("m") as m:
        for _ in range(3):
            _refused(
                lambda: refresh_locally(m, "m", authority, address="node:acme", clock=SystemClock())
            )
        with open_node("acme") as acme:
            _refused(lambda: sync_from(m, acme.authority(), now=SystemClock().now()))
    assert _held(troth_home) is not None


def test_feed2_the_restarted_hub_refuses_the_member_revoked_after_the_copy(
    troth_home: Path, tmp_path: Path
) -> None:
    """The running hub on the restored node.db: the member revoked after the copy (the copy's
    feed does not say so) is refused over a channel, as every member is until the release."""
    _restored(troth_home, tmp_path)

    async def test() -> None:
        with troth.Node.open("acme") as hub, troth.Node.open("m") as m:
            async with hub.serve(listen=("127.0.0.1", 0)) as running:
                with pytest.raises((troth.Denied, troth.ChannelError)):
                    async with m.connect(running.address, expect=running.identifier) as ch:
                        await ch.call("echo", "echo", "hi")

    asyncio.run(asyncio.wait_for(test(), 60))
