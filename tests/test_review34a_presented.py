"""Review 34a, presented: whose checkpoint a long-lived local identity is presented from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.enroll import enroll_in_process
from tests.test_identity_long_life import World
from troth.authority import Authority
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.errors import IdentityError
from troth.identity import encode_history, verify_history
from troth.node import init_node, open_node


@pytest.fixture
def worlds(troth_home: Path) -> Iterator[tuple[World, Authority]]:
    """The long-life world (acme, the owner's agent enrolled there, a verifier trusting acme
    only) and globex, another authority, whose feed the owner's node holds (it trusts globex
    for its own members: the agent is none)."""
    clock = FixedClock(NOW)
    for name in ("acme", "globex", "owner", "verifier"):
        init_node(name)
    with (
        open_node("acme") as acme_node,
        open_node("globex") as globex_node,
        open_node("owner") as owner,
        open_node("verifier") as verifier,
    ):
        acme = acme_node.create_authority("acme", now=NOW)
        globex = globex_node.create_authority("globex", now=NOW)
        owner.identities.create(now=NOW, name="agent")
        ticket = acme.create_ticket(
            creator=acme.identifier, attributes=Attributes(), address="node:acme", now=NOW
        )
        enroll_in_process(owner, "agent", acme, str(ticket), clock)
        owner.wallet.trust(globex.identifier, "node:globex", now=NOW)
        yield World(clock, acme, owner, verifier), globex


def test_another_authoritys_word_does_not_cut_a_members_history(
    worlds: tuple[World, Authority],
) -> None:
    """Review 34a, presented 1. The agent, a member of acme only, rotates on and announces
    every 32nd rotation to acme; past 64 changes its node presents it from acme's oldest
    checkpoint within the last 64 changes, which every verifier holding acme's feed attests.
    globex, an authority the agent's node trusts for its own members (and whose feed
    it therefore holds), names change 10 of the agent in its feed (any authority can name any
    change of any identifier: docs/formats.md; the history is public). The node took it as a
    checkpoint like acme's, and the oldest: once cut, the agent was presented from change 10 with
    globex's checkpoint, which acme's feed never named, so every verifier that trusts acme
    and has not stored the agent (a stranger holding acme's fresh feed) refused the agent
    from then on, as long as globex kept naming its oldest changes. Only the authorities an
    identity holds credentials from (which it announces its rotations to) cut its history.

    Was a strict xfail until the checkpoint look-up of a presented history
    (`SqliteIdentityStore.checkpoint`) read only the feeds of authorities the identity holds
    a credential from (and the authority its node hosts)."""
    world, globex = worlds
    world.rotate(60)  # announced to acme at change 32: presented whole (61 changes)
    now = world.clock.now()
    old = encode_history([c.signed for c in world.presented().changes[:11]])  # public
    globex.revocations.supersede(  # globex names change 10 of the agent
        verify_history(old, now=now), now=now, charged_to=globex.identifier
    )
    world.owner.wallet.sync_feed(
        globex.identifier, lambda since: globex.feed(now=now, since=since), now=world.clock
    )
    world.rotate(10)  # past 64 changes: the presented history is cut
    try:
        world.verify_as_a_stranger()
    except IdentityError as exc:
        raise AssertionError(f"acme's verifiers refuse the agent: {exc}") from None
    presented = world.presented()
    assert presented.first_index == 32  # acme's checkpoint
    assert presented.checkpoint is not None
    assert presented.checkpoint.authority == world.acme.identifier.digest
