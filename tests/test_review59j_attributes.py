"""Review 59j (short adversarial review of the lead's late fixes), attributes: an iterator of
more values than a set holds is refused, never cut (review 59e, api 4); a list is read whole,
its repeats merged (review 59e: `test_every_value_of_a_long_list_of_attribute_values_is_read`).

1. An iterator of 65 values, one repeated, was refused saying "a set holds 1-64 values",
   though its set holds one: what is refused is the iterator read past the bound (it may be
   endless), and the error now says so.
"""

from __future__ import annotations

import itertools

import pytest

from troth import limits
from troth.credentials import Attributes
from troth.errors import ArgumentError

OVER = limits.MAX_ATTRIBUTE_VALUES + 1


def test_attributes1_an_iterator_past_the_bound_is_refused_saying_so() -> None:
    with pytest.raises(ArgumentError) as caught:
        Attributes({"t.n": iter(["a"] * OVER)})
    said = str(caught.value)
    assert f"an iterator of more than {limits.MAX_ATTRIBUTE_VALUES} values" in said, said
    assert "a set holds" not in said, said


def test_attributes1_an_endless_iterator_is_refused_and_a_list_of_repeats_taken() -> None:
    with pytest.raises(ArgumentError, match="iterator"):
        Attributes({"t.n": itertools.repeat("a")})
    assert Attributes({"t.n": ["a"] * OVER})["t.n"] == frozenset({"a"})
