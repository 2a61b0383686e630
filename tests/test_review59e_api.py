"""Review 59e: the public Python API as a new user meets it (troth.__all__, docs/python.md).

- api 1: the API checks that a caller's clock reads a whole number, not that it reads a time:
  a reading of 2**63 or more (a clock in nanoseconds, say) failed `Identities.create`,
  `Authority.ticket` and `Authority.revoke` with a bare OverflowError from SQLite ("Python int
  too large to convert to SQLite INTEGER"), and a negative one made tickets and feed entries
  dated before 1970. Now a reading outside 1970 to 9999-12-31T23:59:59Z
  (`limits.LAST_CLOCK_READING`, the times `troth policy test --time` takes) is an
  ArgumentError naming the clock, where it is read.
- api 2: docs/python.md ("Errors") promises an ArgumentError for "text with a lone surrogate"
  given to a call of `Node`, `Authority`, `RunningNode`, `Channel` or `Service`; most text
  parameters were passed on unchecked and failed beneath with whatever error the layer had:
  `Node.delegate(purpose=)` a CredentialError "malformed", its `caveats` a PolicyError,
  `Authority.ticket(at=)` an AuthorityError, `Node.enroll(authority_pin=)` a ConfigError,
  `Node.connect(route)` a RoutingError, `Channel.call(method=)` a DecodeError, and
  `Service.method(name)` declared a method no caller can name, `Node.serve(listen=)`'s host
  a ConfigError. Now every text parameter of the API is checked as the names were (review
  54n, api 2).
- api 3: attribute values given as a list were read only to the 65th (the bound an iterator
  is read to), and the set of those taken: `Authority.ticket({"orders.access": ["read"] * 65
  + ["admin"]})` granted `read` alone, `Node.delegate` passed on `read` alone, without a word.
  Now a collection is read whole (as `troth.Attributes` reads it) and an iterator of more
  values than a set holds is an ArgumentError.
- api 4: `troth.Attributes` itself cut an iterator so, silently; now refused (fixed in
  troth.credentials.attributes by the lead).
- api 5: `Node.create_authority` on a node that hosts its authority already was an
  AuthorityError REQUEST_INVALID, where its docstring promises a ConflictError; now one, naming
  `Node.authority()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import troth
from tests.support.public_api import READ, acme_and_agents, greet
from troth import limits

LONE = "\ud800"


class _Clock:
    def __init__(self, reading: int) -> None:
        self.reading = reading

    def now(self) -> int:
        return self.reading


@pytest.mark.parametrize("reading", [-1, 2**63, 2**64 + 5, limits.LAST_CLOCK_READING + 1])
def test_a_clock_reading_no_time_is_an_argument_error(reading: int) -> None:
    with acme_and_agents() as scene:
        agents = troth.Node.open("agents", clock=_Clock(reading))
        hub = troth.Node.open("acme", clock=_Clock(reading))
        try:
            calls: list[Callable[[], object]] = [
                lambda: agents.identities.create("later"),
                lambda: hub.authority().ticket(READ),
                lambda: hub.authority().revoke(scene.member),
                lambda: troth.Verifier(
                    trust=[scene.acme.identifier], feeds=scene.acme, clock=_Clock(reading)
                ).verify(scene.member, presenter=scene.support),
            ]
            for call in calls:
                with pytest.raises(troth.ArgumentError, match="clock") as refused:
                    call()
                assert refused.value.parameter == "clock"
        finally:
            agents.close()
            hub.close()
        # nothing was written: the member credential still verifies, no identity was made
        verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme)
        assert verifier.verify(scene.member, presenter=scene.support).actor
        assert "later" not in {i.name for i in scene.agents.identities.all()}


def test_the_first_and_last_second_a_clock_may_read_are_times() -> None:
    with acme_and_agents() as scene:
        for reading in (0, limits.LAST_CLOCK_READING):
            with troth.Node.open("acme", clock=_Clock(reading)) as hub:
                assert hub.authority().ticket(READ, ttl=60).startswith("troth-ticket:")
        assert scene.acme.identifier


def _lone_surrogate_calls(scene: object) -> dict[str, Callable[[], object]]:
    from tests.support.public_api import Agents

    assert isinstance(scene, Agents)
    agents, support, sub = scene.agents, scene.support, scene.sub

    def delegate(**changed: object) -> object:
        given: dict[str, object] = {"attributes": READ, "ttl": 60, "purpose": "p", **changed}
        return agents.delegate(support, to=sub, **given)  # type: ignore[arg-type]

    return {
        "Node.delegate purpose": lambda: delegate(purpose=LONE),
        "Node.delegate caveats": lambda: delegate(caveats=[f'context.a == "{LONE}"']),
        "Authority.ticket at": lambda: scene.acme.ticket(READ, at=f"/tcp/{LONE}:1"),
        "Node.enroll ticket": lambda: agents.enroll(f"troth-ticket:{LONE}"),
        "Node.enroll authority_pin": lambda: agents.enroll(
            scene.acme.ticket(READ), authority_pin=LONE
        ),
        "Node.call route": lambda: agents.call(f"/tcp/{LONE}:1", "echo", "echo", expect=None),
        "Node.call method": lambda: agents.call("/tcp/127.0.0.1:1", "echo", LONE, expect=None),
        "Node.serve listen": lambda: agents.serve(listen=(LONE, 0)),
        "Service.method name": lambda: troth.Service("desk").method(
            LONE, allow=troth.AnyAuthenticated()
        ),
    }


def test_text_with_a_lone_surrogate_is_an_argument_error() -> None:
    with acme_and_agents() as scene:
        held = scene.agents.credentials(scene.support)
        wrong = {}
        for what, call in _lone_surrogate_calls(scene).items():
            try:
                call()
            except troth.ArgumentError:
                continue
            except troth.TrothError as exc:
                wrong[what] = type(exc).__name__
            else:
                wrong[what] = "accepted"
        assert wrong == {}
        assert scene.agents.credentials(scene.support) == held  # nothing delegated


def test_a_running_node_and_its_channels_refuse_text_with_a_lone_surrogate() -> None:
    """`Node.connect`'s route, `Channel.call`'s service and method, `RunningNode.relay`'s name
    and route: an ArgumentError, before anything is sent."""

    async def scenario() -> dict[str, str]:
        wrong: dict[str, str] = {}

        async def refused(what: str, call: Callable[[], object]) -> None:
            try:
                answer = call()
                if asyncio.iscoroutine(answer):
                    await answer
            except troth.ArgumentError:
                return
            except troth.TrothError as exc:
                wrong[what] = type(exc).__name__
                return
            wrong[what] = "accepted"

        with acme_and_agents() as scene:
            async with (
                scene.hub.serve(listen=("127.0.0.1", 0), services=[greet]) as hub,
                scene.agents.serve() as agents,
            ):
                at = hub.address

                async def connect(route: str) -> None:
                    async with agents.connect(route, expect=hub.identifier):
                        pass

                await refused("connect route", lambda: connect(f"{at}/relay/{LONE}"))
                async with agents.connect(at, expect=hub.identifier) as channel:
                    await refused("call service", lambda: channel.call(LONE, "hi"))
                    await refused("call method", lambda: channel.call("greet", LONE))
                    assert await channel.call("greet", "hi") == "hi"
                await refused("relay name", lambda: agents.relay(LONE, at=at))
                await refused("relay at", lambda: agents.relay("agents", at=f"{at}{LONE}"))
        return wrong

    assert asyncio.run(scenario()) == {}


# -- api 3: attribute values past the 65th dropped -------------------------------------------

MANY = ["read"] * 65 + ["admin"]
"""66 values, two of them distinct: a set of 2, well within MAX_ATTRIBUTE_VALUES."""


def test_every_value_of_a_long_list_of_attribute_values_is_read() -> None:
    """`Authority.ticket` and `Node.delegate` read a list of values only up to the 65th (the
    bound an iterator is read to), then took the set of those: `admin`, the 66th, was dropped
    without a word, the ticket granting `read` alone."""
    with acme_and_agents() as scene:
        granted = scene.agents.enroll(
            scene.acme.ticket({"orders.access": MANY}), identity=scene.sub
        )
        assert granted.attributes.values_of("orders.access") == {"read", "admin"}
        passed = scene.agents.delegate(
            scene.sub, to=scene.support, attributes={"orders.access": MANY}, ttl=60, purpose="p"
        )
        assert passed.attributes.values_of("orders.access") == {"read", "admin"}


def test_an_iterator_of_more_values_than_a_set_holds_is_refused_not_cut() -> None:
    """An iterator is read at most one past the bound (it may be endless): one that yields more
    than MAX_ATTRIBUTE_VALUES values is refused, never cut to the set of its first 65."""
    with acme_and_agents() as scene, pytest.raises(troth.ArgumentError, match="attributes"):
        scene.acme.ticket({"orders.access": iter(MANY)})


def test_attributes_refuse_an_iterator_of_more_values_than_a_set_holds() -> None:
    """`troth.Attributes` itself (troth.credentials, not this review's to edit) reads an
    iterator to one past the bound and takes the set of what it read: `admin`, the 66th, is
    dropped without a word (the API's calls refuse it now: api 3)."""
    with pytest.raises(troth.ArgumentError, match="values"):
        troth.Attributes({"orders.access": iter(MANY)})


# -- api 5: a second create_authority --------------------------------------------------------


def test_a_second_authority_on_a_node_is_a_conflict_as_documented() -> None:
    """`Node.create_authority` says: a ConflictError once the node's identity exists. A node
    that already hosts its authority answered a second call with an AuthorityError
    REQUEST_INVALID ("request invalid (this node already hosts an authority)"), as if the
    caller had sent a bad request to an authority; now a ConflictError that names the way back
    to it (`Node.authority()`)."""
    with troth.Node.open("acme") as hub:
        acme = hub.create_authority()
        with pytest.raises(troth.ConflictError, match=r"authority\(\)"):
            hub.create_authority()
        assert hub.authority().identifier == acme.identifier
