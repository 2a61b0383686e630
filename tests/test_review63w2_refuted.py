"""Review 63w2: attacks on the newest fixes (review 63 cli's `_outside_devices`) that did not
work, each kept as a test that fails if the defence it names breaks."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import troth
from tests.support.cli import run, run_json
from troth.cli import common
from troth.storage.sqlite_authority import SqliteAuthorityStore


def _never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    def replaced(target: Path, **_: object) -> None:
        raise AssertionError(f"{target} replaced by a file")

    monkeypatch.setattr(common, "private_file_writer", replaced)


@pytest.mark.parametrize("suffix", ["/", "/.", "//", "/./"])
def test_a_link_to_dev_with_a_trailing_slash_never_replaces(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """`L/x/`, `L/x/.`, `L/x//` for a link L to /dev: Path drops the trailing part, so the check
    and the writer agree on the directory (/dev): refused, never replaced."""
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    (tmp_path / "L").symlink_to("/dev")
    out = f"{tmp_path}/L/troth-63w2-absent{suffix}"
    run("identity", "export", "agent", "--out", out, code=2)
    assert not os.path.lexists("/dev/troth-63w2-absent")


def test_dev_shm_is_still_written(troth_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/dev/shm is its own tmpfs: a relative --out run from there is no false refusal."""
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat("/dev").st_dev:
        pytest.skip("no /dev/shm of its own")
    run("identity", "create", "agent")
    shm = Path("/dev/shm") / f"troth-63w2-{os.getpid()}"
    shm.mkdir()
    try:
        monkeypatch.chdir(shm)
        result = run_json("identity", "export", "agent", "--out", "x")
        assert result["file"] == "x"
        assert (shm / "x").is_file()
    finally:
        for entry in shm.iterdir():
            entry.unlink()
        shm.rmdir()


def test_a_link_to_proc_self_fd_cannot_be_replaced(tmp_path: Path, troth_home: Path) -> None:
    """`L/N` for a link L to /proc/self/fd and a descriptor N this process does not hold:
    procfs takes no new file, so the write fails (exit 4) and nothing is replaced. (N was 99,
    which a test worker may hold: the export was then written through it, exit 0.)"""
    run("identity", "create", "agent")
    (tmp_path / "L").symlink_to("/proc/self/fd")
    free = next(n for n in range(1000, 4000) if not _held(n))  # above what the run opens
    error = run_json("identity", "export", "agent", "--out", f"{tmp_path}/L/{free}", code=4)
    assert "cannot write" in error["message"], error


def _held(descriptor: int) -> bool:
    try:
        os.fstat(descriptor)
    except OSError:
        return False
    return True


# -- feed: Node.feed's kept view (review 63u2, feed 1) ----------------------------------------


def test_node_feed_after_a_rollback_to_another_line_reads_it_all_again() -> None:
    """The store rolled back one entry (a restore) and grown again by another revocation, to
    the same count: the handle's kept feed is not taken as the start of the new one (its head
    is no longer the store's at its count), so the feed says who is revoked now; and the
    revocation the store lost is published again (review 65c, feed 2: the handle reads the
    hosted feed as the runtime does, `troth.node.trust.read_hosted`)."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        first, second = (agents.enroll(acme.ticket({"orders.access": "read"})) for _ in "ab")
        acme.revoke(first, reason="left")
        kept = hub.feed(acme.identifier)
        assert kept is not None
        assert kept.credential_revoked(first.id)
        store = acme._hosted.store
        assert isinstance(store, SqliteAuthorityStore)
        with store.transaction():
            store._db.execute("DELETE FROM revocations WHERE seq = ?", (kept.count - 1,))
        acme.revoke(second, reason="left")
        now = hub.feed(acme.identifier)
        assert now is not None
        assert now.count == kept.count + 1
        assert now.credential_revoked(second.id)
        assert now.credential_revoked(first.id)


def test_node_feed_sees_what_another_handle_appends() -> None:
    """Another handle (another process) on the hosting node's store revokes: the kept feed is
    only a start, the new entry is read."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        member = agents.enroll(acme.ticket({"orders.access": "read"}))
        before = hub.feed(acme.identifier)
        assert before is not None
        assert not before.credential_revoked(member.id)
        with troth.Node.open("hub") as other:
            other.authority().revoke(member, reason="left")
        after = hub.feed(acme.identifier)
        assert after is not None
        assert after.credential_revoked(member.id)


def test_node_feed_from_threads_with_revocations_between() -> None:
    """Threads asking the hosting node's feed while the authority's own view is read and a
    revocation appended: no deadlock (the handle's lock is taken inside the store's
    transaction, as the view's is), and every answer is a whole feed."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        members = [agents.enroll(acme.ticket({"orders.access": "read"})) for _ in range(4)]
        counts: list[int] = []
        errors: list[BaseException] = []

        def ask(member: troth.Credential) -> None:
            try:
                for _ in range(5):
                    feed = hub.feed(acme.identifier)
                    assert feed is not None
                    counts.append(feed.count)
                    acme._hosted.revocations.held(now=int(time.time()))
                acme.revoke(member, reason="left")
                feed = hub.feed(acme.identifier)
                assert feed is not None
                assert feed.credential_revoked(member.id)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=ask, args=(m,)) for m in members]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads), "deadlocked"
        assert not errors, errors
        final = hub.feed(acme.identifier)
        assert final is not None
        assert all(final.credential_revoked(m.id) for m in members)
