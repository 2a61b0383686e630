"""Review 49a, rules 1: a service method's rule was taken as given. `RequireAttributes` with
its attributes as a plain mapping (as `Authority.ticket` and `Node.delegate` take them) made
every request to the method an internal error (an AttributeError about `first_excess_over`
in the node's decision point, logged with its traceback; the caller got RemoteError "internal
error"); `MembersOnly(authority=...)` or `RequireAttributes(..., authority=...)` given the
authority's identifier as text (as `Verifier(trust=...)` takes it) refused every caller, with a
reason naming the same authority twice ("no credential from T… (its credentials from T… do not
count)"). `Service.method` now takes a rule's attributes as `Attributes` or a mapping and its
authority as an `Identifier` or its text, and refuses anything else (and a method name that is
not a str) with an ArgumentError when the method is declared."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import troth


@dataclass
class Scene:
    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority


@pytest.fixture
def scene() -> Iterator[Scene]:
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": ["read", "write"]}))
        yield Scene(hub, agents, acme)


def _call(scene: Scene, rule: Callable[[troth.Authority], Any]) -> Any:
    desk = troth.Service("desk")

    @desk.method("ask", allow=rule(scene.acme))
    async def ask(request: troth.Request) -> str:
        return f"heard {request.caller}"

    async def run() -> Any:
        async with scene.hub.serve(listen=("127.0.0.1", 0), services=[desk]) as running:
            at, peer = running.address, running.identifier
            async with scene.agents.connect(at, expect=peer) as channel:
                return await channel.call("desk", "ask")

    return asyncio.run(run())


RULES: dict[str, Callable[[troth.Authority], Any]] = {
    "attributes as a dict": lambda a: troth.RequireAttributes(_({"orders.access": "read"})),
    "members of an authority by text": lambda a: troth.MembersOnly(authority=_(str(a.identifier))),
    "attributes of an authority by text": lambda a: troth.RequireAttributes(
        troth.Attributes({"orders.access": "read"}), authority=_(str(a.identifier))
    ),
}


def _(value: object) -> Any:
    """`value`, of a type the rule is not declared with (typed Any to pass it)."""
    return value


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_rule_given_as_the_rest_of_the_api_takes_it_admits_a_member(
    rule: str, scene: Scene
) -> None:
    assert str(_call(scene, RULES[rule])).startswith("heard T")


def test_a_rule_of_another_authority_still_refuses(scene: Scene) -> None:
    other = str(scene.agents.identity.identifier)  # no authority at all
    with pytest.raises(troth.Denied):
        _call(scene, lambda a: troth.MembersOnly(authority=_(other)))
    with pytest.raises(troth.Denied):
        _call(scene, lambda a: troth.RequireAttributes(_({"orders.access": "admin"})))


BAD: dict[str, tuple[str, Callable[[troth.Service], Any]]] = {
    "attributes int": (
        "allow",
        lambda s: s.method("m", allow=troth.RequireAttributes(_(5))),
    ),
    "attributes bad name": (
        "allow",
        lambda s: s.method("m", allow=troth.RequireAttributes(_({"Orders": "read"}))),
    ),
    "authority int": ("allow", lambda s: s.method("m", allow=troth.MembersOnly(authority=_(5)))),
    "authority bytes": (
        "allow",
        lambda s: s.method("m", allow=troth.MembersOnly(authority=_(b"\x00" * 32))),
    ),
    "method name int": ("name", lambda s: s.method(_(5), allow=troth.AnyAuthenticated())),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_rule_of_the_wrong_kind_is_refused_when_declared(case: str) -> None:
    parameter, declare = BAD[case]
    service = troth.Service("desk")
    with pytest.raises(troth.ArgumentError) as caught:
        declare(service)
    assert caught.value.parameter == parameter
    assert not service.methods
