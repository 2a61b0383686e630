"""Review 65t (review of 65m's tool listing fallback), gates findings with their fixes.

Gates 1. (medium: CPU, the GIL held, by a member's free delegates; 65m gates 1 reachable again)
   `preview_sets.arguments_named` walks Cedar's JSON for reads of the context or its arguments
   as a whole, taking any one-key object whose key is `.` or `has` for that operator. A record
   literal of one field named `.` (or `has`), `{".": context.args}`, is such an object in
   Cedar's JSON (`{"Record": {".": <expr>}}`): the walk took the field's expression for the
   operator's operands, found no `left` and skipped it, so `{".": context.args} ==
   {".": context.args}` repeated passed as naming what it reads and the preview wrote each use
   out with every property's unknown again (~750 KB of Cedar answers for two tools of 64
   properties, where 65m's fallback takes some 10 KB). The walk now reads a record literal's
   fields as expressions, whatever their names.
"""

from __future__ import annotations

import json

import cedarpy
import pytest

from tests.test_review65m_gates import _listing
from troth.gates.preview_sets import arguments_named

RECORD_DOT = " && ".join(['{".": context.args} == {".": context.args}'] * 10)
RECORD_HAS = " && ".join(['{"has": context} == {"has": context}'] * 10)


@pytest.mark.parametrize("caveat", [RECORD_DOT, RECORD_HAS], ids=["dot", "has"])
def test_gates_1_a_record_field_named_like_an_operator_reads_the_arguments_whole(
    caveat: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown, answered = _listing((caveat,) * 7, monkeypatch)
    assert shown == ["t0", "t1"]
    assert answered < 100_000  # ~750 KB before: each use with its 64 unknowns, per tool


@pytest.mark.parametrize(
    "condition",
    [
        '{".": context.args} == {".": context.args}',
        '{"has": context} == {}',
        '{".": {"has": context.args}} == {}',
    ],
)
def test_gates_1_a_record_literal_hides_no_whole_read(condition: str) -> None:
    text = f"permit(principal, action, resource) when {{ {condition} }};"
    assert not arguments_named(json.loads(cedarpy.policies_to_json_str(text)))
