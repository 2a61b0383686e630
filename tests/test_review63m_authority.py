"""Review 63m, authority: attacks on review 63a, authority 2 (the authority's held feed kept
and grown in place).

Authority 1 (medium; fixed in troth/credentials/revocation_held.py). `AuthorityFeed.held` now
keeps the view it made last and grows that view's index in place, so every view a library
`Verifier` (an `Authority` as a feed source) or a node gets shares one index with the next.
The held feed's lock covers the growth only: a reader of an older view that copies the index
(`VerifiedFeed.agrees_with`, through `newest_copy`, which a `Verifier` with two sources calls at
every verification) iterated its dicts in Python bytecode while another thread's `held_feed`
added to them: RuntimeError ("dictionary changed size during iteration") out of `verify`, no
TrothError. Before, each view had an index of its own. `_Index.prefix` now copies each dict's
items first (one C-level step under the GIL) and filters the copy. The test makes the other
thread's growth happen at that point deterministically (a trace hook in the copying frame).

Authority 2 (low; fixed in troth/authority/revoking.py). Review 63a let a refresh and an
enrollment go on when the supersession of the requester's new history cannot be published (a
spent supersession budget, a full members' part); a link revocation did not: a member (quota
1) that rotated, announced it, and rotated again (that announcement refused, the history
stored) could revoke no link it issued for up to an hour, its link budget unspent, told
"may cause 1 feed entries per hour". `revoke_link` learns the requester with
`unpublished_ok` too; the revocation itself is still charged to the link budget.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.conftest import NOW
from tests.test_review63a_authority import TEAM, _ticket
from troth.authority import Authority
from troth.authority.client import (
    enroll_request,
    refresh_request,
    revoke_request,
    rotated_request,
)
from troth.credentials import VerifiedFeed, delegate
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import init_node, open_node


def _grow_while_copying(authority: Authority, older: VerifiedFeed, newer: VerifiedFeed) -> bool:
    """`older.agrees_with(newer)` with another thread's revocation and `held_feed` landing in
    the middle of the copy of the shared index (at the second step of a comprehension)."""
    lines: list[int] = []

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            lines.append(frame.f_lineno)
            if len(lines) == 2:  # mid-iteration: the other thread's turn
                sys.settrace(None)
                authority.revoke_credentials([os.urandom(32) for _ in range(8)], now=NOW)
                authority.held_feed(now=NOW)
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if event == "call" and frame.f_code.co_name == "<dictcomp>" else None

    sys.settrace(tracer)
    try:
        return older.agrees_with(newer)
    finally:
        sys.settrace(None)


def test_authority_1_an_older_view_is_compared_while_another_thread_grows_it(
    troth_home: Path,
) -> None:
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        authority.revoke_credentials([os.urandom(32) for _ in range(6)], now=NOW)
        older = authority.held_feed(now=NOW)  # the cached view: its index grows in place
        authority.revoke_credentials([os.urandom(32) for _ in range(6)], now=NOW)
        newer = authority.held_feed(now=NOW)  # the same index, grown
        assert _grow_while_copying(authority, older, newer)


def test_authority_2_a_rotated_member_revokes_while_its_rotation_is_unpublished(
    troth_home: Path,
) -> None:
    """alice (quota 1) rotated and announced it (her supersession budget spent), then rotated
    again (announcement refused, history stored: authority 3). She revokes the link she
    delegated to bob under her newest history: her link budget is unspent, so it is appended."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW, revocation_quota=1)
        ids = agents.identities
        ids.create(now=NOW, name="alice")
        bob = ids.create(now=NOW, name="bob").identifier
        authority.enroll(enroll_request(ids, "alice", _ticket(authority), now=NOW), now=NOW)
        ids.rotate("alice", now=NOW + 1)
        authority.rotated(
            rotated_request(ids, "alice", authority.identifier, now=NOW + 2), now=NOW + 2
        )
        ids.rotate("alice", now=NOW + 3)
        with pytest.raises(AuthorityError) as caught:
            authority.rotated(
                rotated_request(ids, "alice", authority.identifier, now=NOW + 4), now=NOW + 4
            )
        assert caught.value.reason is AuthorityFailure.QUOTA_EXCEEDED
        root = authority.refresh(
            refresh_request(ids, "alice", authority.identifier, now=NOW + 5), now=NOW + 5
        )
        chain = delegate(
            ids.signer("alice", now=NOW + 5),
            root,
            subject=bob,
            attributes=TEAM,
            now=NOW + 5,
            ttl=600,
            purpose="a task",
        )
        request = revoke_request(
            ids,
            "alice",
            authority.identifier,
            credential_hash=chain.credentials[-1].hash,
            chain=chain.encode(),
            reason="",
            now=NOW + 6,
        )
        seq = authority.revoke_link(request, now=NOW + 6)
        assert authority.held_feed(now=NOW + 6).credential_revoked(chain.credentials[-1].hash)
        assert seq == authority.store.revocation_tip()[0] - 1
