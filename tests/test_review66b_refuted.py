"""Review 66b, refuted: attacks on the hold a restore (or a failed re-revoke) puts on the hosted
authority (reviews 65o, 65z) that did not work; each test fails if the defence it names
breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from troth.clock import SystemClock
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import open_node
from troth.node.authorities import refresh_locally


def test_1_a_ticket_redeemed_while_held_is_refused_and_keeps_its_use(troth_home: Path) -> None:
    """A ticket made while held (the operator's) redeemed then: RESTORED, its one use kept
    (the enrollment's transaction rolled back), so it enrolls its holder once released and
    not a second identity after."""
    with troth.Node.open("acme") as acme:
        acme.create_authority()
    with open_node("acme") as node:
        node.authority().store.hold(SystemClock().now())
    with troth.Node.open("acme") as acme:
        ticket = acme.authority().ticket({"team.name": "x"})
    with troth.Node.open("m") as m, pytest.raises(AuthorityError) as caught:
        m.enroll(ticket)
    assert caught.value.reason is AuthorityFailure.RESTORED
    with open_node("acme") as node:
        assert node.authority().members() == []
        assert node.authority().release_restored() is not None
    with troth.Node.open("m") as m:
        m.enroll(ticket)
    with troth.Node.open("m2") as m2, pytest.raises(AuthorityError):
        m2.enroll(ticket)  # one use: taken by m, not by the refused attempt


def test_2_a_hold_on_the_hosted_authority_leaves_another_authoritys_feed(
    troth_home: Path,
) -> None:
    """The hub is also a member of another authority: holding its own drops its own feed
    only (`NodeTrust.drop_feed`, `Node.feed`), the other's chains still judged by its feed,
    and a refresh at the other authority still answered."""
    with troth.Node.open("other") as other:
        ticket = other.create_authority().ticket({"team.name": "y"})
        other_id = other.authority().identifier
    with troth.Node.open("acme") as acme:
        own = acme.create_authority().identifier
        acme.enroll(ticket)
    with open_node("acme") as node:
        node.authority().store.hold(SystemClock().now())
    with troth.Node.open("acme") as acme:
        assert acme.feed(own) is None
        assert acme.feed(other_id) is not None
    with open_node("acme") as node:
        refresh_locally(node, "acme", other_id, address="node:other", clock=SystemClock())


def test_3_a_members_link_revocations_never_hold_the_authority(troth_home: Path) -> None:
    """A member revoking links it issued (feed entries charged to it) grows the store's line
    past the feed the hub's handle holds: the line extends it, no re-revoke, no hold
    (`extends_held`): a member cannot make the hub hold its authority without a restore."""
    with troth.Node.open("acme") as acme, troth.Node.open("agents") as agents:
        ticket = acme.create_authority().ticket({"orders.access": ["read"]})
        own = acme.authority().identifier
        before = acme.feed(own)  # the handle holds the line from here
        assert before is not None
        member = agents.identities.create("member")
        helper = agents.identities.create("helper")
        agents.enroll(ticket, identity=member)
        for n in range(3):
            link = agents.delegate(
                member, to=helper, attributes={"orders.access": ["read"]}, ttl=600, purpose=f"{n}"
            )
            agents.revoke(link, by=member)
        after = acme.feed(own)
        assert after is not None
        assert after.count >= before.count + 3
    with open_node("acme") as node:
        assert node.authority().restore_held() is None
