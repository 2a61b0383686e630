"""Review 55j (cross-layer, key rotation): what a stolen pre-rotation key still gets once the
verifier knows of the rotation.

1. a channel opened with the stolen pre-rotation keys of a peer that shows no chain (an
   authority the node trusts: an anchor) kept every right of that peer after the node had
   admitted the owner's rotation and stored it: each request was decided by the held feeds
   alone (`NodeTrust.standing`), which say nothing until the authority's next page is synced,
   until the next maintenance round re-checked the node's peers (up to 30 s, and the round's
   own work, later). A peer with a chain was denied at once (the decision point's verifier
   remembers the history it verified: troth.credentials.memory), an anchor not. Each request
   is now also judged against the copy of the peer's history this process stored or read
   (memory only, of any age: a stored history only grows).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

import troth
from tests.support.histories import DAY, T0, encode, extend, honest_history
from tests.support.nodes import authority_and_trusting_node
from troth.clock import SystemClock
from troth.errors import Denied
from troth.identity import Identifier, verify_history
from troth.identity.known import KnownHistories
from troth.node import open_node
from troth.storage import SqliteDatabase, SqliteIdentityStore


@pytest.fixture
def nodes(troth_home: Path) -> tuple[Identifier, Identifier]:
    """acme (an authority on its node), desk trusting it, and thief: a copy of acme's node
    directory (vault key and node.db) taken now. Returns acme's identifier and desk's."""
    authority, served = authority_and_trusting_node("acme", "desk")
    shutil.copytree(troth_home / "nodes" / "acme", troth_home / "nodes" / "thief")
    return authority, served


def test_an_anchors_stolen_key_gets_nothing_once_the_node_admitted_its_rotation(
    troth_home: Path, nodes: tuple[Identifier, Identifier]
) -> None:
    """Rotation 1. The thief opens a channel to desk as acme (its pre-rotation history and
    channel key) and is served as an anchor. Acme rotates as compromised and opens a channel
    to desk: desk stores its new history (3 changes). The thief's next request on its open
    channel is denied (sent in the next second: standings are kept for one)."""
    acme_id, desk_id = nodes

    async def main() -> tuple[object, str]:
        with troth.Node.open("desk") as desk, troth.Node.open("thief") as thief:
            async with (
                desk.serve(listen=("127.0.0.1", 0)) as at,
                thief.serve() as stolen,
                stolen.connect(at.address, expect=desk_id) as channel,
            ):
                before = await channel.call("echo", "echo", "as acme")
                served_at = int(time.time())
                with troth.Node.open("acme") as acme:
                    acme.identities.rotate(acme.identity, compromised=True)
                    async with (
                        acme.serve() as running,
                        running.connect(at.address, expect=desk_id) as own,
                    ):
                        assert own.peer == desk_id  # its handshake only
                with open_node("desk") as node:
                    assert node.identities.stored_changes(acme_id) == 3  # desk knows
                while int(time.time()) == served_at:  # a standing is kept for its second
                    await asyncio.sleep(0.05)
                with pytest.raises(Denied) as denied:
                    await channel.call("echo", "echo", "still acme")
                return before, str(denied.value)

    before, denied = asyncio.run(main())
    assert before == "as acme"
    assert "older than the copy" in denied


def test_outgrown_is_an_older_prefix_of_a_copy_this_process_holds(tmp_path: Path) -> None:
    """Rotation 1's check, from memory only: a history is outgrown by a cached copy that holds
    its current change and ends later (whatever the entry's age), never by an equal or a
    shorter copy, a fork, or nothing cached."""
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "n.db"))
    known = KnownHistories(store, SystemClock(), cache_seconds=0)  # every entry stale at once
    two = honest_history(2)
    three = extend(two, T0 + 3 * DAY)
    fork = extend(two, T0 + 3 * DAY)  # the same key revealed, committing to another
    now = T0 + 4 * DAY
    old, new, forked = (verify_history(encode(h.changes), now=now) for h in (two, three, fork))
    assert not known.outgrown(old)  # nothing cached
    known.observe(old)
    assert not known.outgrown(old)  # the copy itself
    known.observe(new)  # the owner's rotation, stored here
    assert known.outgrown(old)  # a stale backup's history
    assert not known.outgrown(new)
    assert not known.outgrown(forked)  # a fork is `check_known`'s to refuse, not this
