"""Review 60f (left to the lead), budgets 1: a full table of per-source budgets that does not
evict (`troth.rates.ByteBudgets`: the services' per-source rates, the broker's lease issues)
scanned every kept budget for a refilled one for each newcomer it then refused. Within the
second nothing refills, so a stream of new sources cost a whole-table scan each; now a scan
that found no room is not repeated within its second (a newcomer then is refused, as it would
have been)."""

from __future__ import annotations

from troth.rates import ByteBudgets


class _Scans(dict[object, object]):
    """A budget table that counts the scans made of it."""

    scans = 0

    def items(self):  # type: ignore[no-untyped-def]
        type(self).scans += 1
        return super().items()


def _full(max_sources: int) -> ByteBudgets:
    budgets = ByteBudgets(rate=1, burst=10, max_sources=max_sources)
    budgets._buckets = _Scans()  # type: ignore[assignment]
    for source in range(max_sources):
        assert budgets.take(source, 10, now=100)  # each spent: none refilled within the second
    return budgets


def test_newcomers_refused_within_a_second_do_not_each_scan_the_table() -> None:
    budgets = _full(1000)
    _Scans.scans = 0
    refused = sum(not budgets.take(("new", n), 1, now=100) for n in range(5000))
    assert refused == 5000
    assert _Scans.scans <= 1


def test_a_newcomer_a_second_later_finds_the_refilled_room() -> None:
    budgets = _full(10)
    assert not budgets.take("late", 1, now=100)
    assert not budgets.take("late", 1, now=101)  # one byte back of ten: none refilled
    assert budgets.take("late", 1, now=110)  # all refilled: forgotten, room made
    assert len(budgets) == 1
