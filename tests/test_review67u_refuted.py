"""Review 67u: attacks on review 67o's rule for serving a signed feed page again and on review
67k's checkpoint floors that did not work. Each test is the attack, passing because the defence
it names holds.

- Strangers, within their budget, sign a page not at the feed's end every second, each
  making the shared page at the feed's end out of date, and ask for that one hundreds of
  times: it is signed at most once a second (pages of one second are equal), and the pages
  signed on request stay within the strangers' pool.
- Two members syncing at once, the feed growing and the clock moving between their rounds:
  neither is refused a page as a rollback.
- A member whose copy was signed in the same second as the shared page at the feed's end is
  served that page (equal times are no rollback).
- (67k) A checkpoint of the empty tree (its root known before any record is read) is a floor
  for the log's first record: the thief's record dated before it is BACKDATED.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.support.traces import NOW, Held, db, tool_call
from tests.test_feed_budgets import ask, grow_feed
from tests.test_review67o_feeds import _sync
from troth import limits
from troth.authority.core import Authority
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.limits import MAX_CLOCK_SKEW_SECONDS as SKEW
from troth.trace import TraceLog
from troth.trace.signing import sign_record
from troth.trace.verify import verify_log


def _count_signed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every feed page the authority signs from now on, as (since, signed at)."""
    signed: list[tuple[int, int]] = []
    original = Authority.feed_page

    def counted(self: Authority, *, now: int, since: int = 0) -> Any:
        signed.append((since, now))
        return original(self, now=now, since=since)

    monkeypatch.setattr(Authority, "feed_page", counted)
    return signed


SECONDS = 8


def test_strangers_cannot_make_the_end_page_signed_per_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each second every stranger has a page not at the end signed (charged to it), then asks
    for the end page many times: at most one end page a second, the rest within the pool."""

    async def test(net: MemNet) -> None:
        latest = grow_feed(net, 16, 1)
        strangers = [await net.node(f"stranger-{n}") for n in range(4)]
        signed = _count_signed(monkeypatch)
        asked = 0
        for second in range(SECONDS):
            net.clock.advance(1)
            for n, stranger in enumerate(strangers):
                await ask(net, stranger, (second * len(strangers) + n) % latest)
                for _ in range(30):
                    assert await ask(net, stranger, latest) == "ok"
                    asked += 1
        assert asked >= 900
        at_end = [now for since, now in signed if since == latest]
        assert len(at_end) == len(set(at_end)) <= SECONDS
        on_request = len(signed) - len(at_end)
        assert 0 < on_request <= limits.FEED_PAGE_SIGNS_FOR_STRANGERS * (SECONDS + 2)

    run_memnet(test, tmp_path / "home")


def test_two_members_syncing_at_once_are_never_rolled_back(tmp_path: Path) -> None:
    """Rounds of both members syncing concurrently, the feed growing and time passing."""

    async def test(net: MemNet) -> None:
        grow_feed(net, 16, 1)
        a, b = await net.member("a"), await net.member("b")
        for round_ in range(6):
            grow_feed(net, 1 + round_ % 2, 10 + round_)
            counts = await asyncio.gather(_sync(a, net), _sync(b, net), _sync(a, net))
            latest = net.authority.store.revocation_tip()[0]
            assert list(counts) == [latest] * 3
            net.clock.advance(round_ % 3)

    run_memnet(test, tmp_path / "home")


def test_a_copy_signed_in_the_same_second_takes_the_shared_end_page(tmp_path: Path) -> None:
    """X has the end page signed at T; A, behind, has its page signed at T too (fresh), then
    asks for the end at T: served X's page, signed in the same second, and takes it."""

    async def test(net: MemNet) -> None:
        grow_feed(net, 16, 1)
        x, behind = await net.member("x"), await net.member("behind")
        assert await _sync(x, net) == await _sync(behind, net) == 16
        grow_feed(net, 3, 2)
        net.clock.advance(1)
        assert await _sync(x, net) == 19  # the end page, signed at T
        assert await _sync(behind, net) == 19  # from 16 at T, then the end page again
        assert await _sync(behind, net) == 19

    run_memnet(test, tmp_path / "home")


# -- (67k) the log's own checkpoints as a floor --------------------------------------------------

START = NOW + 10_000
OWNER, AGENT, THIEF = Held(), Held(), Held()
for _held in (OWNER, AGENT, THIEF):
    _held.signer(NOW)


def _owned(path: Path, clock: FixedClock) -> TraceLog:
    return TraceLog.open(path, clock=clock, signer=lambda now: OWNER.signer(NOW))


def _plant(log: TraceLog, time: int) -> None:
    """The thief's record dated `time` appended behind the log's checkpoint rows (set aside
    and put back)."""
    raw = db(log)
    rows = raw.execute("SELECT size, root, time, note FROM checkpoints").fetchall()
    raw.execute("DELETE FROM checkpoints")
    raw.close()
    stolen = sign_record(THIEF.signer(NOW), tool_call("stolen"), seq=0, prev=None, time=time)
    with TraceLog.open(log.store.path, clock=FixedClock(time)) as writer:
        writer.append(stolen)
    raw = db(log)
    raw.executemany("INSERT INTO checkpoints (size, root, time, note) VALUES (?, ?, ?, ?)", rows)
    raw.close()


def test_a_checkpoint_of_the_empty_log_is_a_floor(tmp_path: Path) -> None:
    """The log's checkpoint of no records (its root the empty tree's) at START; the thief's
    record, the log's first, dated before it: BACKDATED at record 0."""
    log = _owned(tmp_path / "log.db", FixedClock(START))
    assert log.checkpoint().size == 0
    _plant(log, START - SKEW - 1)
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.BACKDATED, 0)
    log.close()
