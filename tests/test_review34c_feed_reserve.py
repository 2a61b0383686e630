"""Review 34c, feed reserve: members together cannot fill the revocation feed so that the
authority itself can no longer revoke (reported by review 34b)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth import limits
from troth.credentials import RevocationKind
from troth.errors import AuthorityError, AuthorityFailure
from troth.identity import Identifier
from troth.node import init_node, open_node

_FEED = 12
_RESERVE = 4


def test_members_cannot_take_the_room_the_authority_needs_to_revoke(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 34c, feed 1. Every entry a member causes is within its quota, but the feed holds
    at most MAX_FEED_ENTRIES: many members (or an enroller minting members) together filled it,
    and from then on the authority could revoke nothing — not a stolen credential, not a
    member — since every append past the limit is refused (FEED_LIMIT). The last
    FEED_AUTHORITY_RESERVE entries are the authority's own: what members cause is refused past
    MAX_FEED_ENTRIES - FEED_AUTHORITY_RESERVE, and the authority still revokes.

    Was a strict xfail until `AuthorityFeed` kept the reserve (`_write`: an entry charged to a
    member past MAX_FEED_ENTRIES - FEED_AUTHORITY_RESERVE is refused)."""
    monkeypatch.setattr(limits, "MAX_FEED_ENTRIES", _FEED)
    monkeypatch.setattr(limits, "FEED_AUTHORITY_RESERVE", _RESERVE)
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        members = [Identifier(os.urandom(32)) for _ in range(_FEED + 1)]
        refused: AuthorityError | None = None
        for member in members:  # one entry each: every member within its quota
            try:
                authority.revocations.revoke(
                    RevocationKind.CREDENTIAL,
                    os.urandom(32),
                    by=member,
                    now=NOW,
                    charged_to=member,
                )
            except AuthorityError as exc:
                refused = exc
                break
        for _ in range(_RESERVE):  # the authority's own revocations still go in
            authority.revoke_credential(os.urandom(32), now=NOW, reason="stolen")
        assert refused is not None
        assert refused.reason is AuthorityFailure.FEED_LIMIT
        assert "kept for the authority's own revocations" in refused.detail
        with pytest.raises(AuthorityError) as full:  # and the feed's limit still holds
            authority.revoke_credential(os.urandom(32), now=NOW)
        assert full.value.reason is AuthorityFailure.FEED_LIMIT
