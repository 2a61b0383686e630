"""Review 65t: attacks on 65m's listing fallback, 65q's CBOR byte limit and 65n's secret
fixes that did not work, each kept as a test of the defence it names.

- 65m: `arguments_named` reads Cedar's own JSON of the policies (`cedarpy.policies_to_json_str`),
  not their text: comments and strings holding `context`, whitespace and newlines between the
  tokens, `context["args"]` (the same `.` node as `context.args`), a whole read inside an
  `if`, a `has`, an `is`, an `in`, a `like`, a set, a method call or a record of two fields all
  find the whole read (or none, where there is none); nested `has` (`context.args has a.b`)
  and a read by name stay named.
- 65q: a `memoryview` is written as an array of its bytes (cbor2 takes it for a sequence), so
  a shared one is bounded by the item limit; a tuple of one shared 1 MiB string is counted per
  path on the walk of exact types too.
- 65n: a scope `[""]` (or one empty token among others) is no scope token, refused by the
  broker, as asked or as its wire carries it; `SecretNeed(scope=())` of a secret offering
  scopes leases nothing (the broker refuses the empty scope at the call).
"""

from __future__ import annotations

import json
from pathlib import Path

import cedarpy
import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world
from tests.test_review65n_secrets import _broker
from troth.encoding import cbor
from troth.errors import DecodeError, SecretError, SecretFailure
from troth.gates.preview_sets import arguments_named
from troth.secrets.toolgate import SecretNeed
from troth.secrets.wire import IssueArgs


def _named(condition: str) -> bool:
    text = f"permit(principal, action, resource) when {{ {condition} }};"
    return arguments_named(json.loads(cedarpy.policies_to_json_str(text)))


@pytest.mark.parametrize(
    "condition",
    [
        'context["args"] == {}',
        "context\n  .\n  args == {}  // context.args.x\n",
        "(if context.now > 0 then context.args else {}) == {}",
        'context.args has x && context == {"now": 1}',
        "[context.args].contains({})",
        '{"a": context.args, "b": 1}.b == 1',
        'context.args like "x*"',
        "context.args is Tool",
        'context.args in Tool::"t"',
        "context.args.isEmpty()",
    ],
)
def test_65m_a_whole_read_in_any_form_is_found(condition: str) -> None:
    assert not _named(condition)


@pytest.mark.parametrize(
    "condition",
    [
        '"context.args == {}" == "x" // context.args\n',
        'context.args has a.b && context.args.a.b == "x"',
        'context["args"]["x"] == "y" && context.now > 0',
        '{".": 1}["."] == 1 && context.args.x == "y"',
    ],
)
def test_65m_reads_by_name_stay_named(condition: str) -> None:
    assert _named(condition)


def test_65q_a_shared_memoryview_is_bounded_by_the_item_limit() -> None:
    with pytest.raises(DecodeError, match="data items"):
        cbor.encode([memoryview(b"x" * (1 << 20))] * 2)


def test_65q_a_shared_string_in_a_tuple_is_counted_per_path() -> None:
    with pytest.raises(DecodeError, match="longer than"):
        cbor.encode_counted((1, ("x" * (1 << 20),) * 17))


@pytest.fixture
def lease_world() -> LeaseWorld:
    return make_world(NOW)


@pytest.mark.parametrize("scope", [[""], ["refunds", ""], [" "]])
def test_65n_an_empty_scope_token_is_refused(
    scope: list[str], tmp_path: Path, lease_world: LeaseWorld
) -> None:
    broker = _broker(tmp_path, lease_world)
    try:
        with pytest.raises(SecretError) as refused:
            broker.issue(lease_world.credential_b(), "payments", now=NOW, scope=scope)
        assert refused.value.reason is SecretFailure.BAD_REQUEST
        args = IssueArgs.from_wire({"secret": "payments", "scope": scope, "ttl": None})
        with pytest.raises(SecretError) as wired:
            broker.issue(lease_world.credential_b(), args.secret, now=NOW, scope=args.scope)
        assert wired.value.reason is SecretFailure.BAD_REQUEST
    finally:
        broker.close()


def test_65n_a_tools_empty_need_leases_nothing(tmp_path: Path, lease_world: LeaseWorld) -> None:
    need = SecretNeed("payments", scope=())
    assert need.scope == ()
    broker = _broker(tmp_path, lease_world)
    try:
        with pytest.raises(SecretError) as refused:
            broker.issue(lease_world.credential_b(), need.secret, now=NOW, scope=need.scope)
        assert refused.value.reason is SecretFailure.BAD_REQUEST
    finally:
        broker.close()
