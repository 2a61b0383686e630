"""Review 65z, refuted: attacks on the hosted authority's hold (review 65o, feed 2; review
65z, hold 1) that did not work. Each test fails if the defence it names breaks.

1. A handle opened before the hold, its feed read: a hold placed by another process is seen
   at its next call (`Node._feed_due` reads the store's hold each time), not after a refresh.
2. A member refreshing at a hold placed by a failed re-revoke (no restore found): refused
   RESTORED each time, and the hold left (`check_not_held` in `issuing`).
3. A later hold (a second failed re-revoke, a restore found while held) keeps the first's
   date, and one release lifts it; a second release does nothing (`_HOLD`'s DO NOTHING).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from troth.clock import SystemClock
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import init_node, open_node
from troth.node.authorities import refresh_locally


def test_1_a_handle_sees_a_hold_another_process_placed_at_once(troth_home: Path) -> None:
    with troth.Node.open("acme") as handle:
        acme = handle.create_authority()
        assert handle.feed(acme.identifier) is not None
        with open_node("acme") as other:
            other.authority().store.hold(SystemClock().now())
        assert handle.feed(acme.identifier) is None
        assert handle.feed(acme.identifier) is None  # nor from the handle's cache next time


def test_2_a_member_refreshing_at_a_held_authority_is_refused(troth_home: Path) -> None:
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
        authority = acme.authority().identifier
    with troth.Node.open("m") as m:
        m.enroll(ticket)
    with open_node("acme") as node:
        node.authority().store.hold(SystemClock().now())
    with open_node("m") as m_node:
        for _ in range(3):
            with pytest.raises(AuthorityError) as caught:
                refresh_locally(m_node, "m", authority, address="node:acme", clock=SystemClock())
            assert caught.value.reason is AuthorityFailure.RESTORED
    with open_node("acme") as node:
        assert node.authority().restore_held() is not None


def test_3_a_later_hold_keeps_the_first_and_one_release_lifts_it(troth_home: Path) -> None:
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        authority.store.hold(NOW)
        authority.store.hold(NOW + 50)
        assert authority.restore_held() == NOW
        assert authority.release_restored() == NOW
        assert authority.restore_held() is None
        assert authority.release_restored() is None
