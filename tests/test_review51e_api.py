"""Review 51e: the public Python API as a new user meets it (troth.__all__, README.md,
docs/python.md).

- verify 1: `Verifier.verify(context=...)` took a context of any size and depth: a 50 MB
  context was encoded whole and handed to Cedar, and one nested 200 deep came back as
  `CAVEAT_UNEVALUATED` "not a Cedar record", where `troth credential verify --context`
  refuses the same with a usage error. Now the context is held to the CLI's bounds: at most
  `limits.MAX_CAVEAT_CONTEXT_BYTES` of JSON (compact UTF-8, without `now`), at most
  `limits.MAX_JSON_DEPTH` deep; else an ArgumentError before anything is verified. (An
  integer past 2^53 still goes to Cedar, which takes 64-bit integers: review 49k.)
- verifier 2: `Verifier(...)` refused its arguments with bare ValueError and TypeError (an
  empty `trust` or `feeds`, `feeds=None` as "'NoneType' object is not iterable", a
  `max_feed_age` of text), though every error is a TrothError (docs/python.md, "Errors"); and
  took `clock=5`, failing every `verify` with an AttributeError. Now each is an ArgumentError
  (a TypeError and a ValueError, as documented).
- authority 3: `Authority.revoke(b"x")` (an id that is not 32 bytes) was a bare ValueError.
- flags 4: `Node.open(create="no")` created the node and `Identities.rotate(compromised="no")`
  appended a compromised rotation: a flag was read by truthiness. Now a flag that is not a bool
  is an ArgumentError.
- rules 5: `MembersOnly(authority=...)` and `RequireAttributes(...)` are documented to take an
  identifier's text and a mapping of attributes (docs/python.md, "Services and access rules";
  review 49a, rules 1), but their type hints said `Identifier` and `Attributes`: a user's
  script following the guide failed `mypy --strict`. They now take (and normalise) both, and
  say so in their hints.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import troth
from troth import limits
from troth.clock import FixedClock

CASE = {"complaint": "123"}


@dataclass
class Scene:
    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    support: troth.Identity
    chain: troth.Credential
    verifier: troth.Verifier


@pytest.fixture
def scene(clock: FixedClock) -> Iterator[Scene]:
    with (
        troth.Node.open("hub", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
    ):
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": ["read", "write"]}))
        support = agents.identities.create("support-agent")
        chain = agents.delegate(
            agents.identity,
            to=support,
            attributes={"orders.access": "read"},
            ttl=600,
            purpose="complaint",
            caveats=['context.complaint == "123"'],
        )
        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme, clock=clock)
        yield Scene(hub, agents, acme, support, chain, verifier)


def _(value: object) -> Any:
    """`value`, of a type the call is not declared with (typed Any to pass it)."""
    return value


# -- verify 1 ------------------------------------------------------------------------------------

TOO_LARGE = {"complaint": "123", "pad": "x" * limits.MAX_CAVEAT_CONTEXT_BYTES}


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"complaint": "123"}
    for _n in range(depth - 1):
        value = {"complaint": "123", "inner": value}
    return value


BAD_CONTEXTS: dict[str, object] = {
    "over MAX_CAVEAT_CONTEXT_BYTES": TOO_LARGE,
    "deeper than MAX_JSON_DEPTH": _nested(limits.MAX_JSON_DEPTH + 1),
    "a lone surrogate": {"complaint": "123", "text": "\ud800"},
}


@pytest.mark.parametrize("case", sorted(BAD_CONTEXTS))
def test_a_context_past_the_clis_rules_is_an_argument_error(case: str, scene: Scene) -> None:
    with pytest.raises(troth.ArgumentError) as caught:
        scene.verifier.verify(scene.chain, presenter=scene.support, context=_(BAD_CONTEXTS[case]))
    assert caught.value.parameter == "context"


def test_a_context_at_the_limits_is_evaluated(scene: Scene) -> None:
    deep = _nested(limits.MAX_JSON_DEPTH)
    verified = scene.verifier.verify(scene.chain, presenter=scene.support, context=deep)
    assert verified.caveats == ('context.complaint == "123"',)
    overhead = len('{"complaint":"123","pad":""}')
    at_limit = {"complaint": "123", "pad": "x" * (limits.MAX_CAVEAT_CONTEXT_BYTES - overhead)}
    scene.verifier.verify(scene.chain, presenter=scene.support, context=at_limit)
    wide = {"complaint": "123", "pad": "é" * ((limits.MAX_CAVEAT_CONTEXT_BYTES - overhead) // 2)}
    scene.verifier.verify(scene.chain, presenter=scene.support, context=wide)  # 2 bytes each


def test_the_cli_and_the_api_share_the_bound() -> None:
    assert limits.MAX_CAVEAT_CONTEXT_BYTES == limits.MAX_TOOL_ARGUMENTS_BYTES


# -- verifier 2 ----------------------------------------------------------------------------------

BAD_VERIFIERS: dict[str, tuple[str, dict[str, object]]] = {
    "trust empty": ("trust", {"trust": []}),
    "feeds empty": ("feeds", {"feeds": []}),
    "feeds None": ("feeds", {"feeds": None}),
    "feeds a name": ("feeds", {"feeds": "acme"}),
    "feeds holding a name": ("feeds", {"feeds": ["acme"]}),
    "max_feed_age text": ("max_feed_age", {"max_feed_age": "60"}),
    "max_feed_age float": ("max_feed_age", {"max_feed_age": 60.0}),
    "max_clock_skew bool": ("max_clock_skew", {"max_clock_skew": True}),
    "clock an int": ("clock", {"clock": 5}),
}


@pytest.mark.parametrize("case", sorted(BAD_VERIFIERS))
def test_a_verifier_refuses_its_arguments_with_an_argument_error(case: str, scene: Scene) -> None:
    parameter, given = BAD_VERIFIERS[case]
    arguments: dict[str, Any] = {"trust": [scene.acme.identifier], "feeds": scene.acme, **given}
    with pytest.raises(troth.ArgumentError) as caught:
        troth.Verifier(**arguments)
    assert caught.value.parameter == parameter
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, ValueError)


def test_a_verifier_out_of_range_is_still_out_of_range(scene: Scene) -> None:
    from troth.errors import OutOfRange

    with pytest.raises(OutOfRange):
        troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme, max_feed_age=0)


# -- authority 3 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 31, 33])
def test_a_credential_id_not_of_32_bytes_is_an_argument_error(size: int, scene: Scene) -> None:
    with pytest.raises(troth.ArgumentError) as caught:
        scene.acme.revoke(b"\x01" * size)
    assert caught.value.parameter == "credential"


# -- flags 4 -------------------------------------------------------------------------------------


def test_node_open_create_must_be_a_bool(troth_home: Path) -> None:
    with pytest.raises(troth.ArgumentError) as caught:
        troth.Node.open("fresh", create=_("no"))
    assert caught.value.parameter == "create"
    assert not (troth_home / "nodes" / "fresh").exists()


def test_rotate_compromised_must_be_a_bool(scene: Scene) -> None:
    before = scene.agents.identities.get(scene.support)
    with pytest.raises(troth.ArgumentError) as caught:
        scene.agents.identities.rotate(scene.support, compromised=_("no"))
    assert caught.value.parameter == "compromised"
    assert scene.agents.identities.get(scene.support).changes == before.changes


# -- rules 5 -------------------------------------------------------------------------------------

GUIDE_SCRIPT = """\
import troth


def rules(acme: troth.Authority) -> list[object]:
    return [
        troth.MembersOnly(authority=str(acme.identifier)),
        troth.RequireAttributes({"agents.team": "support"}, authority=str(acme.identifier)),
        troth.RequireAttributes({"agents.team": ["support", "desk"]}),
    ]
"""


def test_the_rules_take_what_the_guide_gives_them_under_mypy_strict(tmp_path: Path) -> None:
    script = tmp_path / "guide_rules.py"
    script.write_text(GUIDE_SCRIPT)
    root = Path(troth.__file__).resolve().parents[2]  # its pyproject.toml: mypy_path = "src"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), script],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_a_rule_given_text_and_a_mapping_holds_an_identifier_and_attributes(
    scene: Scene,
) -> None:
    text = str(scene.acme.identifier)
    members = troth.MembersOnly(authority=text)
    needs = troth.RequireAttributes({"orders.access": "read"}, authority=text)
    assert members.authority == scene.acme.identifier
    assert needs.authority == scene.acme.identifier
    assert isinstance(needs.attributes, troth.Attributes)
