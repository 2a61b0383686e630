"""Review 59j (short adversarial review of the lead's late fixes), attributes: an iterator of
more values than a set holds is refused, never cut (review 59e, api 4).

1. The same 65 values (one repeated) were refused from an iterator ("a set holds 1-64
   values", though its set holds one) but accepted from a list, and a list of any length was
   read whole (a set of one built from ten million items): `Attributes` takes "an iterable of
   1-64 str", whatever iterable it is.
"""

from __future__ import annotations

import pytest

from troth import limits
from troth.credentials import Attributes
from troth.errors import ArgumentError

OVER = limits.MAX_ATTRIBUTE_VALUES + 1


@pytest.mark.xfail(
    strict=True,
    reason="review59j attributes 1: 65 values taken from a list, refused from an iterator as a "
    "set of more than 64 (its set holds one)",
)
@pytest.mark.parametrize("given", [list, tuple, iter], ids=["list", "tuple", "iterator"])
def test_attributes1_more_values_than_a_set_holds_are_refused_from_any_iterable(
    given: type,
) -> None:
    with pytest.raises(ArgumentError) as caught:
        Attributes({"t.n": given(["a"] * OVER)})
    assert f"more than {limits.MAX_ATTRIBUTE_VALUES} values" in str(caught.value)


@pytest.mark.parametrize("given", [list, iter], ids=["list", "iterator"])
def test_attributes1_as_many_values_as_a_set_holds_are_taken_duplicates_merged(
    given: type,
) -> None:
    values = ["a"] * 2 + [f"v{i}" for i in range(limits.MAX_ATTRIBUTE_VALUES - 2)]
    assert Attributes({"t.n": given(values)})["t.n"] == frozenset(values)
