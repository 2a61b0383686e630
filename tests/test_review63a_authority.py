"""Review 63a, authority: findings on the authority's budgets, enrollment and revocation feed.

Authority 1: once the members' part of the revocation feed is full (every entry past
MAX_FEED_ENTRIES - FEED_AUTHORITY_RESERVE is the authority's own: review 34c, feed 1) — a state
members reach together, each within its quota, and one that never ends, since an entry is
never removed — every member that rotates afterwards was cut off for good: its refresh (and a
rotated identity's enrollment) first publishes its history as a supersession (`_learn`), that
append was refused FEED_LIMIT, and the refusal took the whole request down. The member could
never get a credential again once its last one expired, while the authority kept her older
history: a thief holding the key she rotated away from still refreshed under it. A revoke
request's chain issuers were already kept and the request went on (`_keep_issuers`: "a budget
spent, or a feed full for members, leaves it stored"); a refresh and an enrollment now do the
same for a full feed: the history is stored (nodes and the authority refuse the older one),
the credential issued, and the supersession is published by the member's `rotated`
announcement, which still says FEED_LIMIT.

Authority 2: every verification by a library `Verifier` whose feed source is an `Authority`
(or a `Node` hosting one) read the authority's whole feed from its store and built its index
again (`Authority.held_feed(now=...)` with no `previous`: troth._api.authority and
troth._api.node), so each `verify` cost time and memory in the feed's size — up to
MAX_FEED_ENTRIES rows a call, where docs/credentials.md promises "chain verification with it
held costs the same as with 10 entries". The authority's feed keeps the view it last built
(`AuthorityFeed.held`) and reads only the entries after it, from the start again when its store
no longer holds that view's head at its count (a store restored and grown again).

Authority 3 (authority 1 from another side): a supersession refused for a spent budget (a
quota of 0, `--revocation-quota 0`, refuses every one) refused a rotated member's refresh and
enrollment as well, and its `rotated` announcement rolled back the history it carried: the
authority kept the older history, so a thief holding the key the member rotated away from
refreshed under it while the member got nothing. A refresh and an enrollment go on past
QUOTA_EXCEEDED as past FEED_LIMIT, and a `rotated` announcement keeps the history it carries
(committed) before it answers why its supersession was not appended.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth import limits
from troth.authority import Authority, Ticket
from troth.authority.client import enroll_request, refresh_request, rotated_request
from troth.credentials import Attributes
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import init_node, open_node
from troth.storage import FeedRow

_FEED = 12
_RESERVE = 4
TEAM = Attributes({"agents.team": "support"})


def _fill_members_part(authority: Authority) -> None:
    """The authority's own revocations up to the members' bound (as members' entries would)."""
    hashes = [os.urandom(32) for _ in range(_FEED - _RESERVE)]
    authority.revoke_credentials(hashes, now=NOW)


def _ticket(authority: Authority) -> Ticket:
    return authority.create_ticket(
        creator=authority.identifier, attributes=TEAM, address="node:auth", now=NOW, uses=4
    )


def test_a_full_feed_does_not_strand_a_rotated_member(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authority 1: alice rotates after the members' part of the feed filled; her refresh is
    answered, the history stored; her announcement still says the feed is full."""
    monkeypatch.setattr(limits, "MAX_FEED_ENTRIES", _FEED)
    monkeypatch.setattr(limits, "FEED_AUTHORITY_RESERVE", _RESERVE)
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW)
        ids = agents.identities
        alice = ids.create(now=NOW, name="alice").identifier
        authority.enroll(enroll_request(ids, "alice", _ticket(authority), now=NOW), now=NOW)
        _fill_members_part(authority)
        stolen = refresh_request(ids, "alice", authority.identifier, now=NOW + 1)  # a thief's
        ids.rotate("alice", now=NOW + 1)
        chain = authority.refresh(
            refresh_request(ids, "alice", authority.identifier, now=NOW + 2), now=NOW + 2
        )
        assert chain.credentials[-1].body  # a credential, issued
        assert authority.identities.stored_changes(alice) == 2  # the rotation is kept
        with pytest.raises(AuthorityError) as refused:  # so the retired key gets nothing
            authority.refresh(stolen, now=NOW + 2)
        assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
        with pytest.raises(AuthorityError) as caught:
            authority.rotated(
                rotated_request(ids, "alice", authority.identifier, now=NOW + 3), now=NOW + 3
            )
        assert caught.value.reason is AuthorityFailure.FEED_LIMIT


def test_a_full_feed_does_not_refuse_a_rotated_identitys_enrollment(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authority 1: bob rotated before he enrolls, once the members' part is full."""
    monkeypatch.setattr(limits, "MAX_FEED_ENTRIES", _FEED)
    monkeypatch.setattr(limits, "FEED_AUTHORITY_RESERVE", _RESERVE)
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW)
        _fill_members_part(authority)
        ids = agents.identities
        bob = ids.create(now=NOW, name="bob").identifier
        ids.rotate("bob", now=NOW + 1)
        request = enroll_request(ids, "bob", _ticket(authority), now=NOW + 2)
        chain = authority.enroll(request, now=NOW + 2)
        assert chain.credentials[0].body
        assert authority.member(bob).attributes == TEAM


def test_the_authoritys_held_feed_reads_only_the_new_entries(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authority 2: a second view of the feed reads from where the first ended, and holds the
    revocation made between them."""
    init_node("auth")
    with open_node("auth") as auth_node:
        authority = auth_node.create_authority("acme", now=NOW)
        authority.revoke_credentials([os.urandom(32) for _ in range(5)], now=NOW)
        first = authority.held_feed(now=NOW)
        starts: list[int] = []
        rows = authority.store.revocation_rows

        def counted(start: int) -> Iterator[FeedRow]:
            starts.append(start)
            return rows(start)

        monkeypatch.setattr(authority.store, "revocation_rows", counted)
        late = os.urandom(32)
        authority.revoke_credential(late, now=NOW + 1)
        second = authority.held_feed(now=NOW + 2)
        assert starts == [first.count]
        assert second.count == first.count + 1
        assert second.credential_revoked(late)
        assert not first.credential_revoked(late)


def test_a_spent_supersession_budget_leaves_no_retired_key_refreshing(troth_home: Path) -> None:
    """Authority 3: with a quota of 0 (no member-caused entries: `--revocation-quota 0`), alice's
    key is stolen and she rotates: her announcement cannot be published (QUOTA_EXCEEDED, as
    before), but her rotated history is stored all the same, so the thief's refresh under the
    retired key is refused; her own refresh is answered."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW, revocation_quota=0)
        ids = agents.identities
        alice = ids.create(now=NOW, name="alice").identifier
        authority.enroll(enroll_request(ids, "alice", _ticket(authority), now=NOW), now=NOW)
        stolen = refresh_request(ids, "alice", authority.identifier, now=NOW + 1)  # a thief's
        ids.rotate("alice", now=NOW + 1)
        with pytest.raises(AuthorityError) as caught:
            authority.rotated(
                rotated_request(ids, "alice", authority.identifier, now=NOW + 2), now=NOW + 2
            )
        assert caught.value.reason is AuthorityFailure.QUOTA_EXCEEDED
        assert authority.identities.stored_changes(alice) == 2
        with pytest.raises(AuthorityError) as refused:
            authority.refresh(stolen, now=NOW + 3)
        assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
        own = refresh_request(ids, "alice", authority.identifier, now=NOW + 4)
        assert authority.refresh(own, now=NOW + 4).credentials[0].body
