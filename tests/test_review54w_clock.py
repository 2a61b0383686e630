"""Review 54w, clock 1: `FixedClock` took a start (and steps) of any int subclass (an IntEnum
member, an int whose comparisons lie) and gave it back from `now()`, which the API's
`CheckedClock` (review 54n, api 14) refuses: a FixedClock the constructor accepted made every
API call that read it an ArgumentError about the clock. It keeps a plain int now."""

from __future__ import annotations

import enum

from troth._api.arguments import check_clock
from troth.clock import FixedClock


class Epoch(enum.IntEnum):
    START = 1_790_000_000


def test_a_fixed_clock_of_an_int_subclass_reads_as_an_int_through_the_api() -> None:
    fixed = FixedClock(Epoch.START)
    checked = check_clock("Node", "clock", fixed)
    assert checked is not None
    assert type(checked.now()) is int
    assert checked.now() == 1_790_000_000
    fixed.advance(Epoch.START)
    assert type(checked.now()) is int
    assert checked.now() == 2 * 1_790_000_000
