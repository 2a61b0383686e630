"""Review 69g (perf): `gates.decide.1` and `identity.rotate` above their floors.

perf 1: every decision read Cedar's whole answer (~400 bytes of JSON: orjson, then the
shape's checks), though an answer differs from the last one for the same request only by its
`metrics`, durations in microseconds: ~5 % of a decision's instructions. An error-free
answer's fields are now kept by its text before the metrics (`cedar_call._text_fields`), used
only when what follows is one flat `metrics` member that no field is read from. The tests:
a repeated answer is not parsed again; a kept answer never answers for a text that differs
before its metrics (a Deny after an Allow, another reason, an error); a tail that could carry
another member (a nested object, a second `decision` after the metrics) is parsed whole; an
answer with errors is never kept.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from troth.gates import cedar_call

ALLOW = (
    '{"decision":"Allow","correlation_id":null,"diagnostics":{"reason":["policy0"],'
    '"id_annotations_by_reason":{"policy0":"refund"},"errors":[]}'
)
DENY = ALLOW.replace('"Allow"', '"Deny"', 1)


def _metrics(micros: int) -> str:
    return f',"metrics":{{"build_request_duration_micros":{micros},"authz_duration_micros":3}}}}'


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every answer text parsed whole from now on (none kept from before)."""
    monkeypatch.setattr(cedar_call, "_KNOWN", {})
    seen: list[str] = []
    read = orjson.loads

    def loads(text: str) -> Any:
        seen.append(text)
        return read(text)

    monkeypatch.setattr(orjson, "loads", loads)  # the module cedar_call reads it from
    return seen


def test_a_repeated_answer_is_read_once(parsed: list[str]) -> None:
    first = cedar_call._text_fields(ALLOW + _metrics(54))
    again = cedar_call._text_fields(ALLOW + _metrics(61))
    assert first == again == ("Allow", ("policy0",), (), {"policy0": "refund"})
    assert len(parsed) == 1


def test_a_kept_allow_never_answers_another_text(parsed: list[str]) -> None:
    cedar_call._text_fields(ALLOW + _metrics(54))
    assert cedar_call._text_fields(DENY + _metrics(54))[0] == "Deny"
    other = ALLOW.replace('["policy0"]', '["policy1"]').replace('"policy0":', '"policy1":')
    assert cedar_call._text_fields(other + _metrics(54))[1] == ("policy1",)
    erring = ALLOW.replace('"errors":[]', '"errors":["error while evaluating policy `p`"]')
    assert cedar_call._text_fields(erring + _metrics(54))[2] != ()
    assert len(parsed) == 4


@pytest.mark.parametrize(
    "tail",
    [
        ',"metrics":{"a":1},"decision":"Deny"}',  # a second decision after the metrics
        ',"metrics":{"a":{"b":1}},"decision":"Deny"}',
        ',"metrics":{"a":"}"},"decision":"Deny"}',  # a brace in a string
        ',"metrics":{"a":[1]},"diagnostics":{"reason":[],"errors":["x"]}}',
        ',"metrics":{"a":"\\u0022"},"decision":"Deny"}',
    ],
)
def test_a_tail_that_may_carry_a_member_is_read_whole(parsed: list[str], tail: str) -> None:
    cedar_call._text_fields(ALLOW + _metrics(54))
    fields = cedar_call._text_fields(ALLOW + tail)
    assert fields[0] != "Allow" or fields[2] != ()
    assert len(parsed) == 2


def test_an_answer_with_errors_is_not_kept(parsed: list[str]) -> None:
    erring = ALLOW.replace('"errors":[]', '"errors":["error while evaluating policy `p`"]')
    for micros in (1, 2):
        assert cedar_call._text_fields(erring + _metrics(micros))[2]
    assert len(parsed) == 2
    assert cedar_call._KNOWN == {}


def test_the_kept_answers_are_bounded(parsed: list[str]) -> None:
    for n in range(cedar_call._KNOWN_KEPT * 2):
        text = ALLOW.replace('"refund"', f'"r{n}"') + _metrics(n)
        assert cedar_call._text_fields(text)[3] == {"policy0": f"r{n}"}
    assert len(cedar_call._KNOWN) <= cedar_call._KNOWN_KEPT
    long = ALLOW.replace('"refund"', '"' + "r" * cedar_call._KNOWN_TEXT + '"')
    cedar_call._text_fields(long + _metrics(1))
    assert all(len(key) <= cedar_call._KNOWN_TEXT for key in cedar_call._KNOWN)
