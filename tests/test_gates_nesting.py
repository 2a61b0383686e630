"""The bracket depth read before cedarpy parses Cedar text (troth.gates.nesting)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from troth import limits
from troth.gates.nesting import nesting_depth


def test_brackets_in_strings_and_comments_do_not_count() -> None:
    assert nesting_depth('permit(principal, action, resource) when { context.x == "((([[[" };') == 1
    assert nesting_depth('when { "a \\" ((( " == "" }') == 1
    assert nesting_depth("// ((((((\npermit(p, a, r);") == 1
    assert nesting_depth("[[1], [2]]") == 2
    assert nesting_depth("") == 0


@given(st.integers(0, 3 * limits.MAX_CEDAR_NESTING), st.sampled_from("([{"))
def test_the_depth_of_nested_brackets(depth: int, opening: str) -> None:
    closing = {"(": ")", "[": "]", "{": "}"}[opening]
    found = nesting_depth(opening * depth + "x" + closing * depth)
    if depth <= limits.MAX_CEDAR_NESTING:
        assert found == depth
    else:
        assert found > limits.MAX_CEDAR_NESTING  # it stops counting past the limit


def test_an_unterminated_string_or_comment_ends_the_text() -> None:
    assert nesting_depth('( "never closed ((((') == 1
    assert nesting_depth("( // no newline ((((") == 1
