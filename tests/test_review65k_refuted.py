"""Review 65k, refuted: attacks on 65c's hosted feed reads (`read_hosted`, the re-revoke) and
65d's `add_service` that did not work (each test fails if the defence it names breaks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import feed_gone_back
from tests.support.histories import encode, extend, honest_history
from troth.errors import CredentialError
from troth.identity import verify_history
from troth.node import init_node, open_node
from troth.node.trust import _revoke_again


def test_two_holders_reading_a_gone_back_store_at_once_revoke_again_once(
    troth_home: Path,
) -> None:
    """Two processes (the running node, the CLI) each hold the old line and both read the
    gone-back store before either re-revokes: the second, its lists made from the line before
    the first one's commit, appends nothing (`revoke_many` finds each entry, `supersede_again`
    finds the supersession, inside its transaction): no duplicate entries, no growth."""
    init_node("auth")
    with open_node("auth") as one, open_node("auth") as two:
        authority = one.create_authority("acme", now=NOW)
        other = two.hosted_authority()
        assert other is not None
        start = authority.held_feed(now=NOW)
        one.identities.create(now=NOW, name="m")
        one.identities.rotate("m", now=NOW)
        member = one.identities.get("m", now=NOW).identity
        authority.revocations.supersede(member, now=NOW)
        authority.revoke_identity(member.identifier, now=NOW)
        authority.revoke_credentials([b"c" * 32], now=NOW)
        held = authority.held_feed(now=NOW, previous=start)
        held_two = other.held_feed(now=NOW)
        feed_gone_back(authority, start.count)
        gone_one = authority.held_feed(now=NOW, previous=held)
        gone_two = other.held_feed(now=NOW, previous=held_two)
        first = _revoke_again(authority, held, gone_one, NOW)
        assert first is not None
        tip = authority.store.revocation_tip()
        second = _revoke_again(other, held_two, gone_two, NOW)
        assert second is not None
        assert authority.store.revocation_tip() == tip
        assert first.count == second.count == start.count + 3
        assert second.identity_revoked(member.identifier.digest)
        assert second.credential_revoked(b"c" * 32)


def test_a_re_revoke_of_what_the_restored_store_never_knew_is_written(
    troth_home: Path,
) -> None:
    """The held feed names an identity that was never a member and a credential the store
    never issued (only their ids): the re-revoke writes them (no lookup of a member or an
    issued credential refuses it), and the held feed is not kept for good."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        start = authority.held_feed(now=NOW)
        stranger = verify_history(encode(honest_history(1, start=NOW - 10).changes), now=NOW)
        credential = os.urandom(32)
        authority.revoke_identity(stranger.identifier, now=NOW)
        authority.revoke_credentials([credential], now=NOW)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        again = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
        assert again is not None
        assert again.identity_revoked(stranger.identifier.digest)
        assert again.credential_revoked(credential)


def test_a_longer_rotation_of_the_owner_on_the_line_is_not_outranked_by_the_held(
    troth_home: Path,
) -> None:
    """65k feed 1's fix, from the other side: the line's newest supersession is the owner's
    own later rotation (3 changes, extending the held 2-change one; the node stores it). The
    held supersession is not published again over it (which accepted the retired 2-change
    history again): the feed taken still refuses it."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = honest_history(1, start=NOW - 10)
        two_h = extend(first, NOW - 5)
        two = verify_history(encode(two_h.changes), now=NOW)
        three = verify_history(encode(extend(two_h, NOW - 4).changes), now=NOW)
        start = authority.held_feed(now=NOW)
        assert authority.revocations.supersede(two, now=NOW, charged_to=authority.identifier) == 0
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        node.identities.import_history(three, now=NOW)
        assert authority.revocations.supersede(three, now=NOW, charged_to=authority.identifier) == 0
        tip = authority.store.revocation_tip()
        again = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
        assert again is not None
        assert authority.store.revocation_tip() == tip
        with pytest.raises(CredentialError):
            again.check_current(two)
        again.check_current(three)
