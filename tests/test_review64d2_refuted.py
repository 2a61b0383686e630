"""Review 64d2: attacks on the last three fixes merged (64b2's CBOR copy, 64a2's fork judges,
64c2's expired lease reason) that failed (the code was right), pinned.

cbor (64b2, `encode` encodes the copy `_copied` makes): every value troth encodes gives the
same bytes through the general path (tuples, subclasses of list/dict/str/bytes/int, str
subclass keys, IntEnum, bytearray, ranges, deques, a mapping proxy) as its exact-type form
through the fast path, bool stays apart from int; floats, sets, tags, dates, enums of no
int/str and non-UTF-8 text stay refused with DecodeError; a `UserString` (each of its items
is another `UserString`, forever) is refused as too deep where cbor2 itself crashed on it.

forked (64a2, `Links.judges` from `Upkeep.credited`): before the node's identity is
enrolled no authority's fork refusal is believed; the enrollment re-reads `credited` so its
authority's is; its member credential revoked (and the feed synced) keeps it held, so the
authority's word on a fork still counts.

leases (64c2, `_ended`): a lease its agent revoked after its expiry time but before the
sweep, and one revoked then swept, is refused REVOKED, not EXPIRED (the sweep's COALESCE
keeps the first end reason).
"""

from __future__ import annotations

import collections
import datetime
import enum
import types
from pathlib import Path
from typing import Any

import cbor2
import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.support.nodes import MemNet, run_memnet
from troth.encoding.cbor import decode, encode
from troth.errors import DecodeError, SecretError, SecretFailure
from troth.secrets import AllowListPolicy


class _Text(str):
    def __str__(self) -> str:
        return "other"


class _Int(int):
    pass


class _Bytes(bytes):
    pass


class _List(list[Any]):
    pass


class _Dict(dict[str, Any]):
    pass


class _Level(enum.IntEnum):
    HIGH = 7


_SAME = [
    ((1, (b"x", "y")), [1, [b"x", "y"]]),
    (_List([_Int(5), _Bytes(b"q"), _Text("t")]), [5, b"q", "t"]),
    (_Dict({_Text("bb"): 1, "a": _List([])}), {"bb": 1, "a": []}),
    ([{_Text("z"): 1, "aa": 2, "b": 3}], [{"z": 1, "aa": 2, "b": 3}]),
    ((True, False, None, 1, 0), [True, False, None, 1, 0]),
    ((_Level.HIGH, bytearray(b"ab")), [7, b"ab"]),
    ((range(3), collections.deque([-(2**64), 2**64 - 1])), [[0, 1, 2], [-(2**64), 2**64 - 1]]),
    ((types.MappingProxyType({"b": 1, "a": 2}),), [{"a": 2, "b": 1}]),
]


@pytest.mark.parametrize(("general", "exact"), _SAME)
def test_cbor_the_copy_encodes_the_bytes_of_the_exact_value(general: Any, exact: Any) -> None:
    data = encode(general)
    assert data == encode(exact) == cbor2.dumps(exact, canonical=True)
    assert decode(data) == exact
    assert encode((True,)) != encode((1,))


class _Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        (1.5,),
        ({1, 2},),
        (frozenset(),),
        (cbor2.CBORTag(1, [[]]),),
        (datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),),
        (_Colour.RED,),
        ("\ud800",),
        (2**64,),
        ({1: 2},),
        (collections.UserString("ab"),),
    ],
)
def test_cbor_the_copy_still_refuses_what_the_decoder_would(value: Any) -> None:
    with pytest.raises(DecodeError):
        encode(value)


def test_forked_credited_before_enrollment_after_it_and_after_a_revocation(
    tmp_path: Path,
) -> None:
    seen: list[bool] = []

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        agent = await net.node("agent")
        judges = agent.links.judges
        assert judges is not None
        seen.append(judges(authority))  # not enrolled: no authority's fork word counts
        await agent.enroll(net.ticket(), "agent")
        seen.append(judges(authority))  # enrolled: credited re-read
        net.authority.revoke_identity(net.identifier(agent), now=net.clock.now())
        await agent.refresh_feeds()
        await agent.reload()
        seen.append(judges(authority))  # revoked: still the authority of her identity

    run_memnet(test, tmp_path / "home", budget=30)
    assert seen == [False, True, True]


def test_leases_revoked_after_the_expiry_time_stay_revoked(tmp_path: Path) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    config = {"audience": "payments", "scopes": ["read"], "ttl": 60, "max_ttl": 100}
    broker.put_secret("api", "token", config, b"", now=NOW)
    late = broker.issue(world.credential_a(), "api", now=NOW)
    swept = broker.issue(world.credential_a(), "api", now=NOW)
    broker.revoke(world.agent_a.identifier, late.lease_id, now=NOW + 61)  # past its expiry
    broker.revoke(world.agent_a.identifier, swept.lease_id, now=NOW + 30)
    broker.sweep(NOW + 62)
    for issued in (late, swept):
        with pytest.raises(SecretError) as caught:
            broker.renew(world.credential_a(), issued.lease_id, now=NOW + 62)
        assert caught.value.reason is SecretFailure.REVOKED
