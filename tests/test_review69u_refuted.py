"""Review 69u (wave3): attacks on 69p's fixes that did not work; each test names the defence
that stopped it.

- A revocation marking a node served here while an announcement's `sync_runtimes_here` syncs
  it (between its read of the marks and their clear) keeps its mark: only the marks read are
  cleared, by their number (`orphaned_marks`, `clear_marks`).
- A revocation under way (its `node.db.revoking` held shared) during that read: no mark read,
  none cleared, though the sync succeeds.
- The sync failing: the marks stand, and the node still refuses the authority's members.
- The CLOSE detail's shortening: a detail within the limit is sent whole (a digest an operator
  needs is not shortened); one naming only identifiers fits once they are shortened; a longer
  hex run (a signature) is not taken for an identifier; the cut is at a character.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import troth
import troth._api.network as network
from troth.channel.close_detail import close_detail
from troth.errors import StorageError
from troth.identity import Identifier
from troth.limits import MAX_CLOSE_DETAIL
from troth.node import open_node
from troth.node.authorities import home_of, local_authority
from troth.node.authorities import sync_from as real_sync_from
from troth.node.syncdue import sync_due_while


@pytest.fixture
def acme(troth_home: Path, monkeypatch: pytest.MonkeyPatch) -> Identifier:
    """acme's authority (node acme); desk trusting it (its own poll of its marks waiting an
    hour). Returns acme's identifier."""
    monkeypatch.setattr("troth.node.duewatch.DUE_POLL", 3600.0)
    with troth.Node.open("acme") as node:
        node.create_authority()
        authority = node.identity.identifier
    with troth.Node.open("desk"):
        pass
    with open_node("desk") as desk:
        desk.wallet.trust(authority, "node:acme", now=int(time.time()))
    return authority


def _told_here(
    authority: Identifier, during: Callable[[], None] | None = None, *, held: bool = False
) -> tuple[int, int]:
    """Desk served; a mark no revocation holds (a killed revoker's) left at desk; an authority
    here tells desk as an announcement does (`sync_runtimes_here`, acme open; `held`: while a
    revocation under way holds desk's `node.db.revoking`), `during` run as it syncs. Desk's
    marks then (stored) and whether it still refuses acme's members (its `due`)."""

    def tell() -> None:
        with open_node("desk") as desk:
            desk.wallet.store.mark_sync_due(authority.digest, "", int(time.time()))
            with contextlib.ExitStack() as stack:
                if held:
                    stack.enter_context(
                        sync_due_while(desk, authority, address="", now=int(time.time()))
                    )
                node = stack.enter_context(open_node("acme"))
                host = stack.enter_context(local_authority(home_of(node), authority, beside=node))
                network.sync_runtimes_here(host, now=int(time.time()))

    async def main() -> int:
        with troth.Node.open("desk") as desk:
            async with desk.serve(listen=("127.0.0.1", 0)) as at:
                runtime = at._runtime

                def sync_from(*args: Any, **kwargs: Any) -> Any:
                    if during is not None:
                        during()
                    return real_sync_from(*args, **kwargs)

                with pytest.MonkeyPatch.context() as patch:
                    patch.setattr(network, "sync_from", sync_from)
                    await asyncio.to_thread(tell)
                await runtime.worker.run(runtime.trust.read_due)
                return len(runtime.trust.due)

    due = asyncio.run(main())
    with open_node("desk") as desk:
        return len(desk.wallet.store.marks_due(authority.digest)), due


def test_an_orphaned_mark_is_cleared_by_the_telling(acme: Identifier) -> None:
    """The baseline the attacks below start from: told, desk clears the mark it read."""
    assert _told_here(acme) == (0, 0)


def test_a_revocation_marking_desk_during_the_sync_keeps_its_mark(acme: Identifier) -> None:
    """A revocation (another handle, as `troth revoke link` in another process) marks desk
    after the telling read desk's marks, its process killed before its own clear: its mark
    stands, and desk still refuses acme's members until a sync after it."""

    def revoke() -> None:
        now = int(time.time())
        with open_node("desk") as desk, sync_due_while(desk, acme, address="", now=now) as due:
            assert due.mark is not None  # (killed: never cleared)

    assert _told_here(acme, revoke) == (1, 1)  # (the killed revoker's own mark cleared)


def test_a_revocation_under_way_during_the_read_keeps_every_mark(acme: Identifier) -> None:
    """A revocation holds desk's `node.db.revoking` shared across the whole telling: no mark
    is read as orphaned, none is cleared, though the sync succeeded."""
    assert _told_here(acme, held=True) == (2, 1)


def test_a_failed_sync_leaves_the_marks(acme: Identifier) -> None:
    """The sync fails (acme's store locked): the mark stands, desk refuses acme's members."""

    def fail() -> None:
        raise StorageError("database is locked")

    assert _told_here(acme, fail) == (1, 1)


def test_a_detail_within_the_limit_keeps_its_digests_whole() -> None:
    """A digest the operator needs is shortened only when the detail passes the limit."""
    digest = "ab" * 32
    assert close_detail(f"the record {digest} was refused").decode().count(digest) == 1


def test_a_detail_of_identifiers_only_fits_shortened() -> None:
    """Twenty identifiers (1,319 bytes) fit once shortened: each keeps its 16 digits."""
    names = [f"T{i:02x}" + "c" * 62 for i in range(20)]
    fitted = close_detail(" ".join(names)).decode()
    assert len(fitted.encode()) <= MAX_CLOSE_DETAIL
    assert fitted.split(" ") == [f"{name[:17]}\u2026" for name in names]


def test_a_longer_hex_run_is_not_taken_for_an_identifier() -> None:
    """A 128-digit signature is cut at the limit, not shortened as if it were a digest (a
    shortened prefix would pass for an identifier)."""
    fitted = close_detail("x" * 400 + "ab" * 64).decode()
    assert fitted == ("x" * 400 + "ab" * 64)[:MAX_CLOSE_DETAIL]
