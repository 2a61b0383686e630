"""Review 45a, API: an argument of the wrong type to a public `Node`, `Identities` or
`Authority` method failed deep inside, with words about something else: `Node.revoke(None)`
an AttributeError about `.authority`, `enroll(1)` one about `.strip`, an `int` identity one
about `.startswith`, a ttl of "60" a TypeError about `<=`, and `ticket(at=1)` made a ticket
whose address was 1. Each is refused first now: a `troth.ArgumentError` (a TrothError, and a
TypeError and ValueError as such checks raised before) naming the parameter and what it
takes."""

from __future__ import annotations

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
    sub: troth.Identity
    credential: troth.Credential
    ticket: str


@pytest.fixture
def scene() -> Iterator[Scene]:
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.identities.create("customer")
        sub = agents.identities.create("sub")
        credential = agents.enroll(acme.ticket({"orders.access": "read"}), identity="customer")
        yield Scene(hub, agents, acme, sub, credential, acme.ticket({"orders.access": "read"}))


_READ = {"orders.access": "read"}


def _delegate(s: Scene, **changed: Any) -> Any:
    given: dict[str, Any] = {"to": s.sub, "attributes": _READ, "ttl": 60, "purpose": "p"}
    given.update(changed)
    identity = given.pop("identity", "customer")
    return s.agents.delegate(identity, **given)


CASES: dict[str, tuple[str, Callable[[Scene], Any]]] = {
    "revoke None": ("credential", lambda s: s.agents.revoke(None, by="customer")),  # type: ignore[arg-type]
    "revoke bytes": ("credential", lambda s: s.agents.revoke(b"x" * 32, by="customer")),  # type: ignore[arg-type]
    "revoke by": ("by", lambda s: s.agents.revoke(s.credential, by=1)),  # type: ignore[arg-type]
    "revoke reason": (
        "reason",
        lambda s: s.agents.revoke(s.credential, by="customer", reason=1),  # type: ignore[arg-type]
    ),
    "enroll int": ("ticket", lambda s: s.agents.enroll(1)),  # type: ignore[arg-type]
    "enroll bytes": ("ticket", lambda s: s.agents.enroll(s.ticket.encode())),  # type: ignore[arg-type]
    "enroll identity": ("identity", lambda s: s.agents.enroll(s.ticket, identity=1)),  # type: ignore[arg-type]
    "enroll pin": (
        "authority_pin",
        lambda s: s.agents.enroll(s.ticket, identity="sub", authority_pin=1),  # type: ignore[arg-type]
    ),
    "enroll over_copy": (  # a flag, never read by truthiness (review 67i, enroll)
        "over_copy",
        lambda s: s.agents.enroll(s.ticket, identity="sub", over_copy="yes"),  # type: ignore[arg-type]
    ),
    "credentials": ("identity", lambda s: s.agents.credentials(1)),  # type: ignore[arg-type]
    "delegate identity": ("identity", lambda s: _delegate(s, identity=1)),
    "delegate to": ("to", lambda s: _delegate(s, to=1)),
    "delegate ttl text": ("ttl", lambda s: _delegate(s, ttl="60")),
    "delegate attributes": ("attributes", lambda s: _delegate(s, attributes=1)),
    "delegate purpose": ("purpose", lambda s: _delegate(s, purpose=1)),
    "delegate caveats": ("caveats", lambda s: _delegate(s, caveats=1)),
    "delegate caveats text": ("caveats", lambda s: _delegate(s, caveats="true")),
    "delegate depth": ("depth", lambda s: _delegate(s, depth="1")),
    "hold identity": ("identity", lambda s: s.agents.hold(1, s.credential)),  # type: ignore[arg-type]
    "hold chain": ("chain", lambda s: s.agents.hold("sub", 1)),  # type: ignore[arg-type]
    "identities get": ("identity", lambda s: s.agents.identities.get(1)),  # type: ignore[arg-type]
    "identities create": ("name", lambda s: s.agents.identities.create(1)),  # type: ignore[arg-type]
    "identities rotate": ("identity", lambda s: s.agents.identities.rotate(1)),  # type: ignore[arg-type]
    "identities rotate key": (
        "key_type",
        lambda s: s.agents.identities.rotate("sub", key_type=1),  # type: ignore[arg-type]
    ),
    "ticket ttl": ("ttl", lambda s: s.acme.ticket(_READ, ttl="1")),  # type: ignore[arg-type]
    "ticket uses": ("uses", lambda s: s.acme.ticket(_READ, uses="1")),  # type: ignore[arg-type]
    "ticket at": ("at", lambda s: s.acme.ticket(_READ, at=1)),  # type: ignore[arg-type]
    "ticket attributes": ("attributes", lambda s: s.acme.ticket(1)),  # type: ignore[arg-type]
    "authority revoke": ("credential", lambda s: s.acme.revoke(1)),  # type: ignore[arg-type]
    "authority revoke reason": (
        "reason",
        lambda s: s.acme.revoke(s.credential, reason=1),  # type: ignore[arg-type]
    ),
    "authority revoke identity": ("identity", lambda s: s.acme.revoke_identity(1)),  # type: ignore[arg-type]
    "create authority ttl": (
        "credential_ttl",
        lambda s: troth.Node.open("x").create_authority(credential_ttl="1"),  # type: ignore[arg-type]
    ),
    "create authority depth": (
        "delegation_depth",
        lambda s: troth.Node.open("y").create_authority(delegation_depth="1"),  # type: ignore[arg-type]
    ),
    "open name": ("name", lambda s: troth.Node.open(1)),  # type: ignore[arg-type]
    "call expect": (
        "expect",
        lambda s: s.agents.call("/tcp/127.0.0.1:9", "s", "m", expect=1),  # type: ignore[arg-type]
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_wrong_argument_is_refused_first_naming_it(scene: Scene, case: str) -> None:
    parameter, call = CASES[case]
    with pytest.raises(troth.TrothError) as caught:
        call(scene)
    error = caught.value
    assert type(error).__name__ == "ArgumentError"
    assert getattr(error, "parameter", None) == parameter
    assert parameter in str(error)
    assert isinstance(error, TypeError)  # as raised before
    assert isinstance(error, ValueError)
    assert scene.acme.revoke(scene.credential) == 0  # nothing was revoked on the way
