"""Per-source byte budgets (troth.node.rates): a burst, then the rate; one source's spending
never touches another's; a bounded number of sources, refilled ones forgotten first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from troth.node.rates import ByteBudgets


def test_a_burst_then_the_rate() -> None:
    budgets = ByteBudgets(rate=10, burst=100, max_sources=4)
    assert budgets.take("a", 100, now=0)
    assert not budgets.take("a", 1, now=0)
    assert budgets.take("b", 100, now=0)  # another source's budget is its own
    assert not budgets.take("a", 11, now=1)
    assert budgets.take("a", 10, now=1)
    assert budgets.take("a", 100, now=20)  # refilled, never above the burst
    assert not budgets.take("a", 1, now=20)


def test_more_than_the_burst_never_passes() -> None:
    budgets = ByteBudgets(rate=10, burst=100, max_sources=4)
    assert not budgets.take("a", 101, now=10**6)


def test_sources_are_bounded_and_refilled_ones_go_first() -> None:
    budgets = ByteBudgets(rate=10, burst=100, max_sources=2)
    assert budgets.take("a", 100, now=0)
    assert budgets.take("b", 100, now=0)
    assert not budgets.take("c", 1, now=0)  # both in use: refused, not evicted
    assert budgets.take("c", 1, now=10)  # a and b refilled: forgotten
    assert len(budgets) == 1


def test_a_request_of_several_members_spends_from_each_or_from_none() -> None:
    """A delegate whose chains root at two members spends from both budgets; when one lacks the
    bytes, neither is touched."""
    budgets = ByteBudgets(rate=10, burst=100, max_sources=4)
    assert budgets.take("a", 90, now=0)
    assert not budgets.take_all(("a", "b"), 20, now=0)
    assert budgets.take("b", 100, now=0)  # b was not charged by the refused request
    assert budgets.take_all(("a", "b"), 10, now=1)
    assert not budgets.take("a", 11, now=1)
    assert not budgets.take("b", 1, now=1)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        ByteBudgets(rate=0, burst=1, max_sources=1)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 300), st.integers(0, 5)), max_size=60))
def test_a_source_never_gets_more_than_burst_plus_rate_times_time(
    steps: list[tuple[int, int, int]],
) -> None:
    budgets = ByteBudgets(rate=7, burst=100, max_sources=8)
    now, spent = 0, dict.fromkeys(range(4), 0)
    for source, amount, wait in steps:
        now += wait
        if budgets.take(source, amount, now=now):
            spent[source] += amount
        assert spent[source] <= 100 + 7 * now
