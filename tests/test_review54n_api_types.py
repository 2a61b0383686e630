"""Review 54n: the public Python API (troth.__all__, docs/python.md) given values of the wrong
type or form, as a Python user (not the CLI) passes them. Every refusal must be a TrothError
(an ArgumentError, or the layer's error) with a reason, never an AttributeError, TypeError,
KeyError, ValueError, IndexError or UnicodeEncodeError from deep inside.

- api 1: `Node.open(home=...)` of text with a NUL or a lone surrogate: a bare ValueError
  ("embedded null byte") or UnicodeEncodeError from pathlib; `home=""` made the node under
  the current directory.
- api 2: an identity's name (or identifier text) with a lone surrogate, given to any call that
  takes a local identity or a peer (`identities.get`/`rotate`, `enroll`, `credentials`,
  `delegate`, `hold`, `revoke(by=)`, `call(expect=)`, `RunningNode.enroll`): a
  UnicodeEncodeError from sqlite.
- api 3: an `Identity` built by hand whose `identifier` is not an `Identifier`: passed to
  `Authority.revoke_identity`, 32 bytes revoked a credential id instead of an identity (the
  confusion review 35d, authority 1 closed for bare bytes), anything else a TypeError,
  ValueError, OverflowError or UnicodeEncodeError deep inside; to `identities.get`, text with
  a lone surrogate a UnicodeEncodeError.
- api 4: a `Credential` built by hand with a field of another type: its `chain` given to
  `Verifier.verify` or `Node.hold` (TypeError, ValueError, OverflowError from the decoder), its
  `authority` to `Node.revoke` (TypeError: unhashable), its `id` to `Authority.revoke`
  (TypeError, ValueError, OverflowError, UnicodeEncodeError).
- api 5: `Attributes.from_assignments` of something not an iterable of str: TypeError,
  AttributeError.
- api 6: `Attributes.first_excess_over` and `Attributes.merged` of something not an
  `Attributes`: AttributeError.
- api 7: `Attributes.values_of` (and `Request.attribute`) of an unhashable key: TypeError.
- api 8: `VerifiedCredential(...)` by hand: a bare TypeError, not a TrothError (it is refused,
  as it must be: verified and unverified chains are different types).
- api 9: `Service.method(...)` took a handler that is not callable (None, 5, text): each
  request to the method then failed on the node as an "internal error", found only by a caller.
- api 10: a `Request` made by hand (to test a handler) with a `credential` that is not a
  `VerifiedCredential`: `attribute()` failed with an AttributeError.
- api 11: `troth.gates.compile_policies` (and `create_bundle`, which calls it) given `services`
  that are not a mapping of names to lists of names (review 54b found it: the CLI checks them
  first, the library did not), `tools` that are not a mapping, or `policies`/`schema` that are
  not text: AttributeError, TypeError or IndexError deep inside; methods given as one str were
  taken letter by letter.
- api 12: `troth.gates.create_bundle` given a `signer` that is not a `Signer` (AttributeError),
  or a `revision`, `now` or `ttl` that is not a whole number (a TypeError from a comparison;
  a bool was taken as 1).
- api 13: `troth.gates.check_caveat` of anything but text: AttributeError (`.strip`) or a
  TypeError from a regular expression (bytes).
- api 14: `troth.clock.FixedClock` (docs/python.md uses it) took a start or a step of any
  type (None, text, a float, a bool), and `Node.open(clock=...)` or `Verifier(clock=...)` took
  any clock whose `now()` gave something else than a whole number: each later call failed
  deep inside (a TypeError from a comparison, a DecodeError of the float, or, for `True`, a
  node living at 1 s after 1970).
- api 15: the public classes one gets from a call, made directly: `troth.Node("acme")` (not
  `Node.open`) a TypeError about a missing `clock`, `troth.Node("acme", None)` an object every
  use of which failed with an AttributeError, as did `Authority(...)`, `Identities(...)`,
  `RunningNode(...)` and `Channel(...)` of anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import troth
from troth.clock import FixedClock


@dataclass
class Scene:
    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    support: troth.Identity
    sub: troth.Identity
    member: troth.Credential
    chain: troth.Credential
    verifier: troth.Verifier
    verified: troth.VerifiedCredential


@pytest.fixture
def scene(clock: FixedClock) -> Iterator[Scene]:
    with (
        troth.Node.open("hub", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
    ):
        acme = hub.create_authority()
        support = agents.identities.create("support")
        sub = agents.identities.create("sub")
        member = agents.enroll(acme.ticket({"orders.access": ["read", "write"]}), identity=support)
        chain = agents.delegate(
            support, to=sub, attributes={"orders.access": "read"}, ttl=600, purpose="p"
        )
        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme, clock=clock)
        verified = verifier.verify(member, presenter=support)
        yield Scene(hub, agents, acme, support, sub, member, chain, verifier, verified)


def _(value: object) -> Any:
    """`value`, of a type the call is not declared with (typed Any to pass it)."""
    return value


SURROGATE = "sup\ud800port"


def _identity(identifier: object) -> troth.Identity:
    return troth.Identity("support", _(identifier), 1, "ed25519", b"")


def _credential(base: troth.Credential, **fields: object) -> troth.Credential:
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]  # wrong types on purpose


Case = Callable[[Scene], object]

CASES: dict[str, tuple[int, Case]] = {
    # api 1
    "Node.open(home) with a NUL": (1, lambda s: troth.Node.open("x", home="a\x00b")),
    "Node.open(home) with a lone surrogate": (1, lambda s: troth.Node.open("x", home="\ud800")),
    # api 2
    "identities.get(surrogate)": (2, lambda s: s.agents.identities.get(SURROGATE)),
    "identities.rotate(surrogate)": (2, lambda s: s.agents.identities.rotate(SURROGATE)),
    "enroll(identity=surrogate)": (
        2,
        lambda s: s.agents.enroll(s.acme.ticket({"orders.access": "read"}), identity=SURROGATE),
    ),
    "credentials(surrogate)": (2, lambda s: s.agents.credentials(SURROGATE)),
    "delegate(surrogate)": (
        2,
        lambda s: s.agents.delegate(
            SURROGATE, to=s.sub, attributes={"orders.access": "read"}, ttl=60, purpose="p"
        ),
    ),
    "delegate(to=surrogate)": (
        2,
        lambda s: s.agents.delegate(
            s.support, to=SURROGATE, attributes={"orders.access": "read"}, ttl=60, purpose="p"
        ),
    ),
    "hold(surrogate)": (2, lambda s: s.agents.hold(SURROGATE, s.chain)),
    "revoke(by=surrogate)": (2, lambda s: s.agents.revoke(s.chain, by=SURROGATE)),
    "call(expect=surrogate)": (
        2,
        lambda s: s.agents.call("/tcp/127.0.0.1:1", "svc", "m", expect=SURROGATE),
    ),
    # api 3
    "revoke_identity(Identity of 32 bytes)": (
        3,
        lambda s: s.acme.revoke_identity(_identity(s.member.id)),
    ),
    "revoke_identity(Identity of None)": (3, lambda s: s.acme.revoke_identity(_identity(None))),
    "revoke_identity(Identity of a huge int)": (
        3,
        lambda s: s.acme.revoke_identity(_identity(2**70)),
    ),
    "identities.get(Identity of surrogate text)": (
        3,
        lambda s: s.agents.identities.get(_identity(SURROGATE)),
    ),
    "verify(presenter=Identity of text)": (
        3,
        lambda s: s.verifier.verify(s.member, presenter=_identity(str(s.support.identifier))),
    ),
    # api 4
    "verify(Credential of chain None)": (
        4,
        lambda s: s.verifier.verify(_credential(s.member, chain=None), presenter=s.support),
    ),
    "verify(Credential of chain -1)": (
        4,
        lambda s: s.verifier.verify(_credential(s.member, chain=-1), presenter=s.support),
    ),
    "hold(Credential of chain 2**70)": (
        4,
        lambda s: s.agents.hold(s.sub, _credential(s.chain, chain=2**70)),
    ),
    "Node.revoke(Credential of authority [])": (
        4,
        lambda s: s.agents.revoke(_credential(s.chain, authority=[]), by=s.support),
    ),
    "Authority.revoke(Credential of id None)": (
        4,
        lambda s: s.acme.revoke(_credential(s.member, id=None)),
    ),
    "Authority.revoke(Credential of id text)": (
        4,
        lambda s: s.acme.revoke(_credential(s.member, id="\ud800")),
    ),
    "Authority.revoke(Credential of id 2**70)": (
        4,
        lambda s: s.acme.revoke(_credential(s.member, id=2**70)),
    ),
    # api 5
    "Attributes.from_assignments(None)": (5, lambda s: troth.Attributes.from_assignments(_(None))),
    "Attributes.from_assignments([1])": (5, lambda s: troth.Attributes.from_assignments(_([1]))),
    "Attributes.from_assignments([b'a.b=x'])": (
        5,
        lambda s: troth.Attributes.from_assignments(_([b"a.b=x"])),
    ),
    # api 6
    "Attributes.first_excess_over(None)": (
        6,
        lambda s: s.verified.attributes.first_excess_over(_(None)),
    ),
    "Attributes.first_excess_over(a dict)": (
        6,
        lambda s: s.verified.attributes.first_excess_over(_({"orders.access": "read"})),
    ),
    "Attributes.merged(a dict)": (
        6,
        lambda s: s.verified.attributes.merged(_({"orders.access": "read"})),
    ),
    # api 7
    "Attributes.values_of([])": (7, lambda s: s.verified.attributes.values_of(_([]))),
    "Request.attribute({})": (
        7,
        lambda s: troth.Request(None, None, s.verified, 0).attribute(_({})),
    ),
    # api 8
    "VerifiedCredential(...) by hand": (
        8,
        lambda s: troth.VerifiedCredential(
            s.support.identifier,
            s.acme.identifier,
            s.verified.links,
            s.verified.attributes,
            (),
            0,
            2**40,
            s.member.chain,
            (),
            None,
        ),
    ),
    # api 9
    "Service.method(...)(None)": (
        9,
        lambda s: troth.Service("desk").method("m", allow=troth.AnyAuthenticated())(_(None)),
    ),
    "Service.method(...)(5)": (
        9,
        lambda s: troth.Service("desk").method("m", allow=troth.AnyAuthenticated())(_(5)),
    ),
    # api 10
    "Request(credential=text)": (10, lambda s: troth.Request(None, None, _("a.b"), 0)),
    "Request(caller=text)": (10, lambda s: troth.Request(None, _("T00"), None, 0)),
    "Request(now=1.5)": (10, lambda s: troth.Request(None, None, None, _(1.5))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_wrong_input_is_an_argument_error(scene: Scene, case: str) -> None:
    _finding, call = CASES[case]
    with pytest.raises(troth.ArgumentError) as raised:
        call(scene)
    assert raised.value.parameter  # names what it refused


def test_revoke_identity_of_a_hand_built_identity_revokes_nothing(scene: Scene) -> None:
    """api 3: an `Identity` whose identifier is a credential id's 32 bytes is refused, and the
    credential it names stays valid."""
    with pytest.raises(troth.ArgumentError):
        scene.acme.revoke_identity(_identity(scene.member.id))
    verified = scene.verifier.verify(scene.member, presenter=scene.support)
    assert verified.actor == scene.support.identifier


TEXTS = st.text(max_size=12) | st.builds(
    lambda head, tail: f"{head}\ud800{tail}", st.text(max_size=6), st.text(max_size=6)
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=TEXTS)
def test_any_identity_text_is_refused_with_a_troth_error(scene: Scene, text: str) -> None:
    """api 2 (generated): any text as a local identity or a peer, found or refused with a
    TrothError (NotFound, ArgumentError, MalformedText)."""
    for call in (
        lambda: scene.agents.identities.get(text),
        lambda: scene.agents.credentials(text),
        lambda: scene.verifier.verify(scene.member, presenter=text),
    ):
        with contextlib.suppress(troth.TrothError):
            call()


def test_an_empty_home_is_an_argument_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """api 1: `home=""` is no directory's name; it was taken as the current directory (a node
    made under ./nodes wherever the program ran)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(troth.ArgumentError):
        troth.Node.open("x", home="")
    assert not (tmp_path / "nodes").exists()


# -- api 11-12: troth.gates, the library beneath -------------------------------------------------

P = '@id("x") permit(principal, action, resource);'

POLICY_CASES: dict[str, dict[str, object]] = {
    "services a list": {"services": [("desk", ["ask"])]},
    "services text": {"services": "desk"},
    "services an int": {"services": 5},
    "services methods text": {"services": {"desk": "ask"}},
    "services methods None": {"services": {"desk": None}},
    "tools None": {"tools": None},
    "tools a list": {"tools": [("t", {})]},
    "tools bytes": {"tools": b"x"},
    "policies None": {"policies": None},
    "policies bytes": {"policies": b"x"},
    "schema None": {"schema": None},
}


@pytest.mark.parametrize("case", sorted(POLICY_CASES))
def test_compile_policies_of_wrong_types_is_an_argument_error(case: str) -> None:
    from troth.gates import compile_policies

    given: dict[str, Any] = {"policies": P, "schema": "", "tools": {}, "services": None}
    given.update(POLICY_CASES[case])
    with pytest.raises(troth.ArgumentError):
        compile_policies(**given)


BUNDLE_CASES: dict[str, dict[str, object]] = {
    "signer None": {"signer": None},
    "signer an identifier": {"signer": "identifier"},
    "revision None": {"revision": None},
    "revision True": {"revision": True},
    "revision text": {"revision": "5"},
    "now None": {"now": None},
    "now True": {"now": True},
    "ttl None": {"ttl": None},
    "ttl True": {"ttl": True},
    "ttl text": {"ttl": "60"},
    "services text": {"services": "desk"},
    "services 5": {"services": 5},
}


@pytest.mark.parametrize("case", sorted(BUNDLE_CASES))
def test_create_bundle_of_wrong_types_is_an_argument_error(
    scene: Scene, clock: FixedClock, case: str
) -> None:
    from tests.support.gates import POLICIES, TOOLS
    from troth.gates import create_bundle

    now = clock.now()
    stored = scene.hub._stored
    given: dict[str, Any] = {
        "signer": stored.identities.signer(str(scene.acme.identifier), now=now),
        "authority": scene.acme.identifier,
        "policies": POLICIES,
        "schema": "",
        "tools": TOOLS,
        "revision": 5,
        "now": now,
        "ttl": 3600,
    }
    given.update(BUNDLE_CASES[case])
    if given["signer"] == "identifier":
        given["signer"] = scene.acme.identifier
    signer = given.pop("signer")
    with pytest.raises(troth.ArgumentError):
        create_bundle(signer, **given)


@pytest.mark.parametrize("value", [None, 5, True, b"context.x", [], {}], ids=repr)
def test_check_caveat_of_another_type_is_an_argument_error(value: object) -> None:
    from troth.gates import check_caveat

    with pytest.raises(troth.ArgumentError):
        check_caveat(_(value))


class _TextClock:
    def now(self) -> int:
        return cast(int, "1790000000")


@pytest.mark.parametrize("value", [None, "5", 1.5, float("nan"), True, []], ids=repr)
def test_a_fixed_clock_of_another_type_is_an_argument_error(value: object) -> None:
    with pytest.raises(troth.ArgumentError):
        FixedClock(_(value))
    with pytest.raises(troth.ArgumentError):
        FixedClock(1_790_000_000).advance(_(value))


def test_a_clock_whose_now_is_no_whole_number_is_an_argument_error() -> None:
    anyone = troth.Identifier(b"\x01" * 32)
    with troth.Node.open("n", clock=_TextClock()) as node:
        with pytest.raises(troth.ArgumentError):
            node.identities.create("a")
        verifier = troth.Verifier(trust=[anyone], feeds=node, clock=_TextClock())
        with pytest.raises(troth.ArgumentError):
            verifier.verify(b"", presenter=anyone)


MADE_DIRECTLY: dict[str, Callable[[], object]] = {
    "Node('acme')": lambda: troth.Node(_("acme")),
    "Node('acme', None)": lambda: troth.Node(_("acme"), _(None)),
    "Authority('x', 'y', None)": lambda: troth.Authority(_("x"), _("y"), _(None)),
    "Identities(None)": lambda: troth.Identities(_(None)),
    "RunningNode(None, None)": lambda: troth.RunningNode(_(None), _(None)),
    "Channel(None, None, '/tcp/1.2.3.4:1')": lambda: troth.Channel(_(None), _(None), "/x"),
}


@pytest.mark.parametrize("case", sorted(MADE_DIRECTLY))
def test_a_public_class_made_directly_of_anything_else_is_an_argument_error(case: str) -> None:
    with pytest.raises(troth.ArgumentError):
        MADE_DIRECTLY[case]()


REASONS: dict[str, Case] = {
    "Node.revoke": lambda s: s.agents.revoke(s.chain, by=s.support, reason=SURROGATE),
    "Authority.revoke": lambda s: s.acme.revoke(s.member, reason=SURROGATE),
    "Authority.revoke_identity": lambda s: s.acme.revoke_identity(s.sub, reason=SURROGATE),
}


@pytest.mark.parametrize("case", sorted(REASONS))
def test_a_revocation_reason_with_a_lone_surrogate_is_an_argument_error(
    scene: Scene, case: str
) -> None:
    """Api 16 (54v found it): a revocation reason holding a lone surrogate reached the feed's
    encoder, `DecodeError("cannot encode value")`, not the caller's ArgumentError."""
    with pytest.raises(troth.ArgumentError) as raised:
        REASONS[case](scene)
    assert raised.value.parameter == "reason"
