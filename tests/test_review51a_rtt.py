"""Review 51a, service.rtt: what the request path's speed-ups must keep.

- `AccessRequest` and `RequestContext` (one of each made per request) set their fields through
  their slots, not through the generated `__init__` of a frozen dataclass: the constructor
  keeps the dataclass's signature, keyword calls, `replace`, equality, hashing and `repr`, and
  the instance stays frozen.
- `RulesPolicy.decide` skips the look-up of the caller in `also` when `also` is empty: a peer
  in `also` still passes a members' rule as an anchor would, one not in it still needs a
  credential, and a rule naming its authority still holds.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from tests.support.parties import make_party
from troth.channel import VerifiedPeer
from troth.node.access import (
    AccessRequest,
    Decision,
    LocalCaller,
    MembersOnly,
    PeerCaller,
    Rule,
    RulesPolicy,
    Standing,
)
from troth.node.services.plugin import RequestContext
from troth.routing import Address
from troth.vault import SoftwareVault

T = 1_780_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class _PlainRequest:  # AccessRequest as the generated constructor makes it
    caller: Any
    service: str
    method: str
    arguments: Any
    now: int


@dataclasses.dataclass(frozen=True, slots=True)
class _PlainContext:  # RequestContext likewise
    caller: Any
    return_route: Any
    decision: Any
    now: int


@pytest.mark.parametrize(
    ("cls", "plain"), [(AccessRequest, _PlainRequest), (RequestContext, _PlainContext)]
)
def test_the_per_request_records_keep_the_dataclass_constructor(cls: Any, plain: Any) -> None:
    mine = inspect.signature(cls.__init__).parameters
    generated = inspect.signature(plain.__init__).parameters
    assert list(mine) == list(generated) == ["self", *(f.name for f in dataclasses.fields(cls))]
    assert all(p.default is inspect.Parameter.empty for p in mine.values())
    caller = LocalCaller("test")
    values = (
        (caller, "echo", "echo", b"x", T)
        if cls is AccessRequest
        else (caller, (Address("worker", "w"),), Decision(True), T)
    )
    record = cls(*values)
    names = [f.name for f in dataclasses.fields(cls)]
    assert tuple(getattr(record, name) for name in names) == values
    assert record == cls(**dict(zip(names, values, strict=True)))
    assert hash(record) == hash(cls(*values))
    assert dataclasses.replace(record, now=T + 1) == cls(*values[:-1], T + 1)
    assert record != dataclasses.replace(record, now=T + 1)
    assert repr(record) == repr(plain(*values)).replace(plain.__name__, cls.__name__)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.now = T + 1
    with pytest.raises(TypeError):
        cls(*values[:-1])
    with pytest.raises(TypeError):
        cls(*values, extra=1)
    assert not hasattr(record, "__dict__")


def test_also_admits_as_an_anchor_and_only_the_peers_in_it() -> None:
    vault = SoftwareVault()
    authority, member = make_party(vault, now=T), make_party(vault, now=T)
    peer = VerifiedPeer(member.identity, ())
    rules: dict[tuple[str, str], Rule] = {
        ("echo", "echo"): MembersOnly(),
        ("pinned", "echo"): MembersOnly(authority=authority.identifier),
    }

    def decide(also: frozenset[Any], service: str) -> Decision:
        policy = RulesPolicy("hub", rules, lambda _peer, _now: Standing(()), also)
        return policy.decide(AccessRequest(PeerCaller(peer, "c"), service, "echo", None, T))

    assert not decide(frozenset(), "echo").allowed  # no credential, not an anchor
    assert not decide(frozenset({authority.identifier}), "echo").allowed  # someone else
    allowed = decide(frozenset({member.identifier}), "echo")
    assert allowed.allowed
    assert allowed.reasons == (f"hub allowed {member.identifier} echo.echo: anchor",)
    assert not decide(frozenset({member.identifier}), "pinned").allowed  # the rule's own
