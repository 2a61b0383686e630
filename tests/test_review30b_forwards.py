"""Review 30b, forwards: the served broker's forward pool bounds each member's forwards, also
those of a caller whose chains start at several members."""

from __future__ import annotations

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world
from troth.errors import SecretError
from troth.node.services.broker import _forward_account
from troth.node.services.forwards import ForwardPool
from troth.secrets.endpoint import BrokerCaller


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(NOW)


def test_a_caller_of_two_members_takes_a_place_of_each(world: LeaseWorld) -> None:
    """Review 30b, forwards 1 (was a strict xfail until `ForwardPool.admit` took a place in
    the share of each member of the set). The pool counted a caller's forwards under the
    *set* of members its chains start at: agent A, a member itself that also holds a
    delegation from the user, ran its share of forwards as {A} and as many again presenting
    both chains, as {user, A} (with a third member's delegation, again as each other set):
    past `MAX_FORWARDS_PER_AGENT` of one member, which one member's slow upstream paths were
    to be kept within."""
    member = world.member_credential(world.agent_a)  # A's own member credential: its account is A
    alone = BrokerCaller(world.agent_a.identifier, (member,))
    both = BrokerCaller(world.agent_a.identifier, (member, world.credential_a()))
    assert _forward_account(both) == frozenset({world.agent_a.identifier, world.user.identifier})
    pool = ForwardPool(total=4, per_agent=1)
    first = pool.admit(_forward_account(alone))
    with pytest.raises(SecretError, match="of this member"):
        pool.admit(_forward_account(both))  # A's place is taken
    first.release()
    slot = pool.admit(_forward_account(both))  # now it takes A's and the user's
    with pytest.raises(SecretError, match="of this member"):
        pool.admit(frozenset({world.user.identifier}))  # another delegate of the user
    with pytest.raises(SecretError, match="of this member"):
        pool.admit(_forward_account(alone))
    slot.release()
    assert pool.running() == 0
    pool.admit(_forward_account(alone))
    pool.admit(frozenset({world.user.identifier}))
