"""Review 38c, refuted: crash windows tried and found closed, pinned.

Each test stops a multi-step operation after one of its commits (closing the nodes, as a
SIGKILL after the commit would leave them: nothing in memory survives) and checks that what
was acknowledged is there and that the next open completes or reports the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent
from tests.test_review38c_enroll import _interrupted
from troth.authority.core import DEFAULT_TICKET_TTL
from troth.clock import FixedClock
from troth.enrollment import enroll
from troth.errors import AuthorityError, AuthorityFailure
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.node.node import node_dir

NOW = 1_800_000_000


@dataclass
class Pair:
    home: Path
    clock: FixedClock
    authority: Identifier
    member: Identifier
    credential: bytes


@pytest.fixture
def enrolled(tmp_path: Path) -> Iterator[Pair]:
    """acme (authority) and agent (member `agent`, enrolled); both nodes closed."""
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):

        def send(request: bytes) -> bytes:
            return authority.enroll(request, now=clock.now()).encode()

        enroll(agent.identities, agent.wallet, "agent", ticket, clock=clock, send=send)
        (held,) = agent.wallet.held("agent")
        yield Pair(tmp_path, clock, authority.identifier, member, held.id)


def test_a_revocation_committed_is_published_without_another_step(enrolled: Pair) -> None:
    """Revocation: the authority's feed is read from its store at each page (no outbox, no
    publish step), so a revocation whose command was killed right after its commit is in the
    next page any holder fetches: never recorded locally yet unpublished."""
    home, clock = enrolled.home, enrolled.clock
    with open_node("acme", home=home) as acme:
        acme.authority().revoke_credential(enrolled.credential, now=clock.now(), reason="x")
    clock.advance(1)
    with open_node("acme", home=home) as acme, open_node("agent", home=home) as agent:
        authority = acme.authority()
        feed = agent.wallet.sync_feed(
            authority.identifier,
            lambda since: authority.feed(now=clock.now(), since=since),
            now=clock.now(),
        )
        assert feed.credential_revoked(enrolled.credential)


def test_a_rotation_committed_but_never_announced_stays_due(enrolled: Pair) -> None:
    """Identity rotation: the new history, its keys and the retired keys are one commit; the
    announcement to the authorities comes after it and is derived (stored history vs what
    each authority was told), not queued, so a rotation killed before announcing is still due
    at the next open (the node's maintenance announces it)."""
    home, clock = enrolled.home, enrolled.clock
    with open_node("agent", home=home) as agent:
        before, due = agent.wallet.unannounced("agent")
        assert due == []
        agent.identities.rotate("agent", now=clock.now())
    with open_node("agent", home=home) as agent:
        changes, due = agent.wallet.unannounced("agent")
        assert (changes, due) == (before + 1, [enrolled.authority])


def test_after_the_window_another_identity_cannot_use_the_redeemed_ticket(tmp_path: Path) -> None:
    """One-time tickets: a ticket whose redemption committed before the crash (the answer
    lost) is used: another identity presenting its code (it leaked with the crash's logs),
    after the window as within it, is refused for good and made no member. Also the bound
    any fix of enroll 1 must keep: only the member that redeemed it may be answered."""
    clock, _member = _interrupted(tmp_path)
    clock.advance(DEFAULT_TICKET_TTL + 60)
    with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
        authority = acme.authority()
        (pending,) = agent.wallet.pending_enrollments("agent")
        agent.identities.create(now=clock.now(), name="mallory")

        def send(request: bytes) -> bytes:
            return authority.enroll(request, now=clock.now()).encode()

        with pytest.raises(AuthorityError) as refused:
            enroll(
                agent.identities, agent.wallet, "mallory", pending.ticket, clock=clock, send=send
            )
        assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN
        mallory = agent.identities.find("mallory").identifier
        assert [m for m in authority.members() if m.identifier.digest == mallory] == []


def test_a_node_created_but_killed_before_its_database_opens_whole(tmp_path: Path) -> None:
    """Node home files: `node create` writes node.json (an exclusive link of a complete,
    fsynced file, the directory fsynced), then opens the node, which makes the database and
    `vault.key`. Killed between the two, the node has a configuration and nothing else: the
    next open makes both (no key check is stored yet, so a new `vault.key` is right: review
    38c, vault 1 refuses one only once the vault holds keys)."""
    init_node("agent", home=tmp_path)
    directory = node_dir(tmp_path, "agent")
    for left in directory.iterdir():
        if left.name != "node.json":
            left.unlink()
    with open_node("agent", home=tmp_path) as node:
        node.identities.create(now=NOW, name="agent")
    with open_node("agent", home=tmp_path) as node:
        assert node.identities.find("agent").name == "agent"
