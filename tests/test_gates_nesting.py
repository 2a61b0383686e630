"""The shape of Cedar text read before cedarpy parses it (troth.gates.nesting): bracket depth
and operators per statement, strings and comments aside."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from troth import limits
from troth.gates.nesting import cedar_refusal

DEEP = limits.MAX_CEDAR_NESTING + 1
MANY = limits.MAX_CEDAR_OPERATORS + 1


def test_brackets_and_operators_in_strings_and_comments_do_not_count() -> None:
    assert cedar_refusal('permit(p, a, r) when { context.x == "' + "(" * DEEP + '" };') is None
    assert cedar_refusal('when { "a \\" ' + "(" * DEEP + ' " == "" }') is None
    assert cedar_refusal("// " + "(" * DEEP + "\npermit(p, a, r);") is None
    assert cedar_refusal('when { "' + "||" * MANY + '" }') is None


def test_a_comment_ends_at_a_carriage_return_too() -> None:
    assert cedar_refusal("// c\r" + "(" * DEEP + "true" + ")" * DEEP) is not None


@given(st.integers(0, 3 * limits.MAX_CEDAR_NESTING), st.sampled_from("([{"))
def test_the_depth_of_nested_brackets(depth: int, opening: str) -> None:
    closing = {"(": ")", "[": "]", "{": "}"}[opening]
    refused = cedar_refusal(opening * depth + "x" + closing * depth)
    assert (refused is not None) == (depth > limits.MAX_CEDAR_NESTING)
    if refused is not None:
        assert "MAX_CEDAR_NESTING" in refused


def test_operator_chains_count_per_statement() -> None:
    chain = " || ".join(["context.b"] * (limits.MAX_CEDAR_OPERATORS // 3))  # 3 per link
    assert cedar_refusal(f"permit(p, a, r) when {{ {chain} }};") is None
    assert cedar_refusal(f"permit(p, a, r) when {{ {chain} }};" * 4) is None  # each its own
    longer = chain + " || context.b" * (limits.MAX_CEDAR_OPERATORS // 3)
    refused = cedar_refusal(f"permit(p, a, r) when {{ {longer} }};")
    assert refused is not None
    assert "MAX_CEDAR_OPERATORS" in refused
    assert cedar_refusal("context" + ".a" * MANY) is not None
    assert cedar_refusal("if c then 1 " + "else if c then 1 " * (MANY // 3) + "else 0") is not None


def test_angle_brackets_nest_in_a_schema_and_are_operators_in_policies() -> None:
    sets = "type T = " + "Set<" * DEEP + "Long" + ">" * DEEP + ";"
    assert cedar_refusal(sets, schema=True) is not None
    assert cedar_refusal("entity A { x: Set<Set<Long>> };", schema=True) is None
    assert cedar_refusal("permit(p, a, r) when { context.x < 1 && context.y > 2 };") is None
