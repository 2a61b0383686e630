"""Review 55m: attacks on this session's fixes (reviews 55c, 55g, 55h, 55j, 55k) that the
code withstood, each a test that fails if the defence breaks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, acme_ticket
from tests.support.held_source import HeldSources
from tests.support.histories import DAY, T0, encode, extend, honest_history
from tests.test_review53e_feeds import _feed_file
from troth.authority.client import enroll_request
from troth.clock import SystemClock
from troth.credentials import read_page_sequence, verify_pages, write_page_sequence
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    IdentityError,
    IdentityFailure,
)
from troth.identity import verify_history
from troth.identity.known import KnownHistories
from troth.node.verify import read_feed_file
from troth.storage import SqliteDatabase, SqliteIdentityStore

NOW = 1_800_000_000


# -- 55g, cli 12: verify_pages refuses a page adding nothing after one that added none -------


def test_an_honest_feed_file_verifies_at_every_stage(tmp_path: Path) -> None:
    """The authority's own feed files verify (no two pages in a row add nothing): revoked
    nothing (one empty page), a revocation, then its own rotation (a supersession on the first
    page signed under the new history); a second empty page after the first is still taken,
    a third refused (the bound, by the same check)."""
    with acme_and_agent(tmp_path / "home", NOW) as (authority, agent, _member, ticket):
        anchors = frozenset({authority.identifier})
        empty = _feed_file(authority, tmp_path / "empty.feed", NOW)
        assert read_feed_file(empty, anchors, NOW).count == 0
        chain = authority.enroll(
            enroll_request(agent.identities, "agent", ticket, now=NOW), now=NOW
        )
        authority.revoke_credential(chain.credentials[0].hash, now=NOW + 1, reason="stolen")
        revoked = _feed_file(authority, tmp_path / "revoked.feed", NOW + 2)
        assert read_feed_file(revoked, anchors, NOW + 2).count == 1
        authority.identities.rotate(authority.config.name, now=NOW + 3)
        rotated = _feed_file(authority, tmp_path / "rotated.feed", NOW + 4)
        feed = read_feed_file(rotated, anchors, NOW + 4)
        assert feed.count == 2
        with Path(empty).open("rb") as stream:
            page = next(read_page_sequence(stream.read))
        assert verify_pages([page, page], authority=authority.identifier, now=NOW).count == 0
        with pytest.raises(CredentialError, match="adds no entry"):
            verify_pages([page] * 3, authority=authority.identifier, now=NOW)
        assert b"".join(write_page_sequence([page])) == Path(empty).read_bytes()


# -- 55c, tickets 1 and 2: tickets deleted past their expiry, voided ----------------------------


def test_a_voided_ticket_leaves_its_redeemers_answered_and_no_one_else(tmp_path: Path) -> None:
    """A two-use ticket redeemed once, then voided: the redeemer's repeat (its answer lost) is
    answered with its recorded credential; a second identity's first use is refused; voiding
    again says nothing was voided; the clock set forward past the expiry and back deletes an
    unexpired ticket (the documented cost of a clock run ahead) and revives none."""
    with acme_and_agent(tmp_path / "home", NOW) as (authority, agent, _member, _one):
        ticket = acme_ticket(authority, NOW, uses=2)
        first = authority.enroll(
            enroll_request(agent.identities, "agent", ticket, now=NOW), now=NOW
        )
        assert authority.void_ticket(ticket, now=NOW + 1)
        again = enroll_request(agent.identities, "agent", ticket, now=NOW + 2)
        assert authority.enroll(again, now=NOW + 2) == first
        agent.identities.create(now=NOW, name="other")
        other = enroll_request(agent.identities, "other", ticket, now=NOW + 3)
        with pytest.raises(AuthorityError) as refused:
            authority.enroll(other, now=NOW + 3)
        assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert not authority.void_ticket(ticket, now=NOW + 4)
        later = acme_ticket(authority, NOW, ttl=3600)
        # a clock run ahead: this ticket and acme_and_agent's (a day) deleted
        assert authority.forget_expired_tickets(now=NOW + 2 * 86_400) == 2
        back = enroll_request(agent.identities, "other", later, now=NOW + 5)
        with pytest.raises(AuthorityError) as refused:
            authority.enroll(back, now=NOW + 5)
        assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN


# -- 55k, transport 1: the first-frame clock does not run while a source is held ---------------


def test_a_held_silent_connection_is_still_closed_when_idle_and_after_its_hold() -> None:
    """A stranger gets its own address held (its frames wait) and opens silent connections:
    the idle clock still runs while held, and once released the first-frame clock counts
    from the connection's opening (no time was bought by the hold)."""

    async def main() -> None:
        net = HeldSources()
        transport, settings = net.transport, net.settings
        assert settings.idle_timeout > settings.first_frame_timeout
        net.over_share("10.0.0.9")
        idle, idle_socket = net.accept("10.0.0.9", 1001)
        silent, silent_socket = net.accept("10.0.0.9", 1002)
        assert idle_socket.paused
        assert silent_socket.paused
        idle._check(idle.liveness.opened_at + settings.idle_timeout + 1)
        assert transport.counters.closed_idle == 1
        net.release.set()
        await asyncio.wait_for(_until_released(net), 10)
        assert not silent_socket.paused
        silent._check(silent.liveness.opened_at + settings.first_frame_timeout + 1)
        assert transport.counters.closed_first_frame == 1
        await transport.close()

    asyncio.run(main())


async def _until_released(net: HeldSources) -> None:
    while net.transport.inbound.held:
        await asyncio.sleep(0.01)


# -- 55j, rotation 1: a peer whose history is an older prefix of a copy held is refused --------


def test_a_longer_fork_shown_here_never_makes_the_honest_history_outgrown(tmp_path: Path) -> None:
    """A thief holding the key the owner's change 2 revealed shows a fork of two more changes
    (a handshake, `trace verify`: each observed): refused as a FORK, kept as evidence only, and
    the owner's history (at change 3) is not outgrown by it; nor by its own older copy."""
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "n.db"))
    known = KnownHistories(store, SystemClock(), cache_seconds=0)
    two = honest_history(2)
    honest = extend(two, T0 + 3 * DAY)
    fork = extend(extend(two, T0 + 3 * DAY), T0 + 4 * DAY)
    now = T0 + 5 * DAY
    owner, forked = (verify_history(encode(h.changes), now=now) for h in (honest, fork))
    known.observe(owner)
    with pytest.raises(IdentityError) as refused:
        known.observe(forked)
    assert refused.value.reason is IdentityFailure.FORK
    assert store.forks(owner.identifier.digest)  # kept as evidence
    assert not known.outgrown(owner)
    stored = known.stored(owner.identifier.digest)
    assert stored is not None
    assert stored.last == owner.current.index  # the owner's copy, not the fork's
    assert known.outgrown(verify_history(encode(two.changes), now=now))
