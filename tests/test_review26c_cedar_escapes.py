"""Review 26c, gates: what cedarpy's validation messages cost in the calling process, against
what troth counts before Cedar runs (`_quoted_text`, `largest_type_text`; review 25, gates 1).

cedarpy hands its validation result from Rust to Python as one JSON text
(`cedarpy._internal.validate_policies` returns a string that `json.loads` reads), and a message
names an operand's whole type, its attribute names as they are. JSON writes a control character
(U+0000-U+001F but `\\b \\f \\n \\r \\t`) as `\\u00XX`: six characters for one. A schema fragment
whose attribute names are control characters (written raw between the quotes, or `\\0`,
`\\x01`, `\\u{1}`) is counted at the length of its text, one per character, so the JSON text
of its messages was up to ~6x the bound that keeps a validation in process
(MAX_CEDAR_INPROCESS_MESSAGES): 33 policies `context + 1` within that bound, over a context of
64 attributes of ~3,900 control characters each, took the process ~94 MB more (~16 MB with
ASCII names of the same lengths; measured once with ru_maxrss, not asserted here). A quoted
name now counts at least as JSON writes it (troth.gates.nesting `_printed`; a strict xfail
until then).
"""

from __future__ import annotations

import json

import cedarpy
import pytest

from troth.gates.nesting import largest_type_text
from troth.gates.policies import _check_validation_cost, compose_schema

_WORDS = 128
"""Cedar's own words in one message (`for policy ..., unexpected type: expected Long but saw`),
as test_review25_gates counts them."""


@pytest.mark.parametrize("name", ['"' + "\x01" * 2000 + '"', '"' + "\\0" * 2000 + '"'])
def test_control_characters_in_attribute_names_are_counted_as_json_writes_them(
    name: str,
) -> None:
    """The JSON text of the messages of `context + 1` (what crosses from cedarpy's Rust to
    Python) is within what `_quoted_text` counts, and the printed type within what
    `largest_type_text` says."""
    fragment = (
        "entity P; entity R;\n"
        f"action go appliesTo {{ principal: [P], resource: [R], context: {{{name}: Long}} }};\n"
    )
    schema_text = compose_schema(fragment, {}, {})
    policy = '@id("q") permit(principal, action == Action::"go", resource) when { context + 1 };'
    est = json.loads(cedarpy.policies_to_json_str(policy))
    _, quoted = _check_validation_cost(est, schema_text)
    result = cedarpy.validate_policies(policy, cedarpy.Schema.from_str(schema_text))
    written = [json.dumps(e.error, ensure_ascii=False) for e in result.errors]
    assert written  # `context + 1` is refused, naming the context's type
    assert sum(len(text) - _WORDS for text in written) <= quoted
    assert max(len(text) - _WORDS for text in written) <= largest_type_text(fragment)
