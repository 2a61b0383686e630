"""Review 60i, budgets 1: a full table of per-source budgets that does not evict
(`troth.rates.ByteBudgets`) remembers that a scan found no room (`_full_at`, review 60f,
budgets 1) for the rest of its second. A refund within that second can give a kept budget back
up to its burst: that budget is then refilled, what the table forgets first to make room, yet
the remembered refusal turned away every newcomer for the rest of the second, as if no budget
could be forgotten (before review 60f the newcomer was let in). Latent: today's callers refund
at once what they just took (`IssueBudget.take`, under its lock), so no budget is full again
that was not full at the scan. A refund that fills a budget now ends the remembered refusal."""

from __future__ import annotations

from troth.rates import ByteBudgets


def test_a_budget_refunded_to_full_makes_room_for_a_newcomer_within_the_second() -> None:
    budgets = ByteBudgets(rate=1, burst=10, max_sources=2)
    assert budgets.take("a", 1, now=100)
    assert budgets.take("b", 10, now=100)
    assert not budgets.take("c", 1, now=100)  # full, nothing refilled: refused, remembered
    budgets.refund("a", 1, now=100)  # "a" is full again: forgotten first, as prune does
    assert budgets.take("d", 1, now=100)
    assert set(budgets._buckets) == {"b", "d"}


def test_a_refund_short_of_the_burst_keeps_the_refusal() -> None:
    budgets = ByteBudgets(rate=1, burst=10, max_sources=2)
    assert budgets.take("a", 2, now=100)
    assert budgets.take("b", 10, now=100)
    assert not budgets.take("c", 1, now=100)
    budgets.refund("a", 1, now=100)  # 9 of 10: not refilled, no room
    assert not budgets.take("d", 1, now=100)
