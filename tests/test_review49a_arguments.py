"""Review 49a, arguments 1-3: what review 45a left unchecked. "Every error is a TrothError"
(docs/python.md, "Errors"), and a call given an argument it does not take raises an
`ArgumentError` naming it; these failed deep inside with words about something else instead:

1. `Node.open(home="/srv/troth")` (a str, as every caller has one) was a TypeError about `/`,
   `clock=5` an AttributeError about `.now` at the first call, a name not of a name's form and
   an unknown key type bare ValueErrors from beneath, and attributes whose values are not text
   (`{"orders.access": 1}`, `[1]`, `b"read"`) a TypeError about `len()` or iteration.
2. `Verifier`: `trust=[_(5)]` an AttributeError about `.startswith`, `trust` given as one
   identifier's text taken letter by letter, a chain given as text a TypeError ("string
   argument without an encoding"), None another, an `int` presenter an AttributeError.
3. `Channel.call` / `Node.call`: a service that is not text a TypeError about `len()` (from
   `Node.call` only once it had connected), a method that is not text sent to the other node
   anyway (its answer a RemoteError about decoding; to a service it does not serve, nothing
   until the timeout), a timeout of None or text a TypeError about `+` (nan: no timeout at
   all, 0 a call that could not wait for any answer); `Service(5)` a TypeError,
   `Service("My Desk")` a bare ValueError, `serve(services=_(["desk"]))` an AttributeError,
   `serve(listen=(host, 70000))` an OverflowError from asyncio, `listen=_("127.0.0.1:0")` taken
   letter by letter.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import troth


@dataclass
class Scene:
    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    member: troth.Identity
    credential: troth.Credential


@pytest.fixture
def scene() -> Iterator[Scene]:
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        member = agents.identities.create("member")
        credential = agents.enroll(acme.ticket({"orders.access": "read"}), identity=member)
        yield Scene(hub, agents, acme, member, credential)


def _(value: object) -> Any:
    """`value`, of a type the call does not take (typed Any so that the test can pass it)."""
    return value


def _refused(call: Callable[[], Any], parameter: str) -> troth.ArgumentError:
    with pytest.raises(troth.ArgumentError) as caught:
        call()
    assert caught.value.parameter == parameter, caught.value
    return caught.value


# -- 1. Node.open, Identities.create, attributes -------------------------------------------------


def test_open_takes_home_as_text(troth_home: Path) -> None:
    with troth.Node.open("n", home=_(str(troth_home))) as node:
        made = node.identities.create("someone")
    with troth.Node.open("n", home=troth_home, create=False) as again:
        assert again.identities.get("someone") == made


OPEN_CASES: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "home int": ("home", lambda h: troth.Node.open("n", home=_(5))),
    "clock int": ("clock", lambda h: troth.Node.open("n", home=h, clock=_(5))),
    "name form": ("name", lambda h: troth.Node.open("Support Agent", home=h)),
    "name empty": ("name", lambda h: troth.Node.open("", home=h)),
    "name path": ("name", lambda h: troth.Node.open("../elsewhere", home=h)),
}


@pytest.mark.parametrize("case", sorted(OPEN_CASES))
def test_open_refuses_what_it_does_not_take(case: str, troth_home: Path) -> None:
    parameter, call = OPEN_CASES[case]
    _refused(lambda: call(troth_home), parameter)
    assert not (troth_home / "nodes" / "elsewhere").exists()


NODE_CASES: dict[str, tuple[str, Callable[[Scene], Any]]] = {
    "create name form": ("name", lambda s: s.agents.identities.create("Support Agent")),
    "create name long": ("name", lambda s: s.agents.identities.create("a" * 100_000)),
    "create key type": ("key_type", lambda s: s.agents.identities.create("x", key_type="rsa")),
    "rotate key type": ("key_type", lambda s: s.agents.identities.rotate("member", key_type="rsa")),
    "delegate int value": (
        "attributes",
        lambda s: s.agents.delegate(
            "member", to=s.acme.identifier, attributes=_({"orders.access": 1}), ttl=60, purpose="p"
        ),
    ),
    "delegate int in list": (
        "attributes",
        lambda s: s.agents.delegate(
            "member",
            to=s.acme.identifier,
            attributes=_({"orders.access": [1]}),
            ttl=60,
            purpose="p",
        ),
    ),
    "delegate bytes value": (
        "attributes",
        lambda s: s.agents.delegate(
            "member",
            to=s.acme.identifier,
            attributes=_({"orders.access": b"r"}),
            ttl=60,
            purpose="p",
        ),
    ),
    "delegate bad name": (
        "attributes",
        lambda s: s.agents.delegate(
            "member", to=s.acme.identifier, attributes={"Orders": "read"}, ttl=60, purpose="p"
        ),
    ),
    "ticket int key": ("attributes", lambda s: s.acme.ticket(_({1: "read"}))),
    "ticket None value": ("attributes", lambda s: s.acme.ticket(_({"orders.access": None}))),
    "ticket empty value": ("attributes", lambda s: s.acme.ticket({"orders.access": []})),
}


@pytest.mark.parametrize("case", sorted(NODE_CASES))
def test_node_calls_refuse_what_they_do_not_take(case: str, scene: Scene) -> None:
    parameter, call = NODE_CASES[case]
    _refused(lambda: call(scene), parameter)
    assert [c.id for c in scene.agents.credentials("member")] == [scene.credential.id]


# -- 2. Verifier ---------------------------------------------------------------------------------

VERIFIER_CASES: dict[str, tuple[str, Callable[[Scene], Any]]] = {
    "trust int item": ("trust", lambda s: troth.Verifier(trust=[_(5)], feeds=s.hub)),
    "trust one text": (
        "trust",
        lambda s: troth.Verifier(trust=str(s.acme.identifier), feeds=s.hub),
    ),
    "trust int": ("trust", lambda s: troth.Verifier(trust=_(5), feeds=s.hub)),
    "chain text": (
        "chain",
        lambda s: troth.Verifier(trust=[s.acme.identifier], feeds=s.hub).verify(
            _(s.credential.chain.hex()),
            presenter=s.member,
        ),
    ),
    "chain None": (
        "chain",
        lambda s: troth.Verifier(trust=[s.acme.identifier], feeds=s.hub).verify(
            _(None),
            presenter=s.member,
        ),
    ),
    "presenter int": (
        "presenter",
        lambda s: troth.Verifier(trust=[s.acme.identifier], feeds=s.hub).verify(
            s.credential,
            presenter=_(5),
        ),
    ),
    "presenter bytes": (
        "presenter",
        lambda s: troth.Verifier(trust=[s.acme.identifier], feeds=s.hub).verify(
            s.credential,
            presenter=_(s.member.identifier.digest),
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(VERIFIER_CASES))
def test_verifier_refuses_what_it_does_not_take(case: str, scene: Scene) -> None:
    parameter, call = VERIFIER_CASES[case]
    _refused(lambda: call(scene), parameter)


def test_verifier_still_verifies_with_identifier_text(scene: Scene) -> None:
    verifier = troth.Verifier(trust=[str(scene.acme.identifier)], feeds=scene.hub)
    verified = verifier.verify(scene.credential.chain, presenter=str(scene.member.identifier))
    assert verified.actor == scene.member.identifier


# -- 3. the network ------------------------------------------------------------------------------


async def _on_channel(scene: Scene, use: Callable[[troth.Channel], Any]) -> Any:
    async with scene.hub.serve(listen=("127.0.0.1", 0)) as running:
        at = running.address
        async with scene.agents.connect(at, expect=running.identifier) as channel:
            return await use(channel)


CHANNEL_CASES: dict[str, tuple[str, Callable[[troth.Channel], Any]]] = {
    "service int": ("service", lambda c: c.call(_(5), "feed")),
    "method int": ("method", lambda c: c.call("authority", _(5), timeout=60)),
    "timeout None": ("timeout", lambda c: c.call("authority", "feed", timeout=_(None))),
    "timeout text": ("timeout", lambda c: c.call("authority", "feed", timeout=_("5"))),
    "timeout nan": ("timeout", lambda c: c.call("authority", "feed", timeout=math.nan)),
    "timeout zero": ("timeout", lambda c: c.call("authority", "feed", timeout=0)),
}


@pytest.mark.parametrize("case", sorted(CHANNEL_CASES))
def test_channel_call_refuses_what_it_does_not_take(case: str, scene: Scene) -> None:
    parameter, use = CHANNEL_CASES[case]

    async def attempt(channel: troth.Channel) -> Any:
        return await use(channel)

    _refused(lambda: asyncio.run(_on_channel(scene, attempt)), parameter)


async def _serving(node: troth.Node, **given: Any) -> None:
    async with node.serve(**given):
        pass


SERVE_CASES: dict[str, tuple[str, Callable[[Scene], Any]]] = {
    "Service int": ("name", lambda s: troth.Service(_(5))),
    "Service form": ("name", lambda s: troth.Service("My Desk")),
    "services text": ("services", lambda s: asyncio.run(_serving(s.agents, services=_(["desk"])))),
    "listen port": ("listen", lambda s: asyncio.run(_serving(s.agents, listen=("::1", 70000)))),
    "listen text": ("listen", lambda s: asyncio.run(_serving(s.agents, listen=_("127.0.0.1:0")))),
    "call service": (
        "service",
        lambda s: s.agents.call("/tcp/127.0.0.1:9", _(5), "m", expect=None),
    ),
    "call method": (
        "method",
        lambda s: s.agents.call("/tcp/127.0.0.1:9", "desk", _(None), expect=None),
    ),
}


@pytest.mark.parametrize("case", sorted(SERVE_CASES))
def test_services_and_serve_refuse_what_they_do_not_take(case: str, scene: Scene) -> None:
    parameter, call = SERVE_CASES[case]
    _refused(lambda: call(scene), parameter)
