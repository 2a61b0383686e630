"""Review 31a, quota 1 (found on the way): an authority created with a revocation quota of 0
(`create_authority(revocation_quota=0)`, accepted: a quota below 0 is refused) raised
IndexError on a member's first feed entry instead of refusing it QUOTA_EXCEEDED:
`AuthorityFeed._charge` computed the wait from the oldest of the last `quota` entries, of which
there are none. A member's enroll request with a rotated history (a supersession to publish)
then failed with an unexpected error, which a served authority answers as an internal failure.

Was a strict xfail until `_charge` refused a zero quota with a full window's wait.

Since review 63a (authority 3) the enrollment itself goes on, its history stored, the
supersession unpublished (refused, the authority kept no copy of a rotated history, and a key
the member rotated away from refreshed on); the member's `rotated` announcement is what says
QUOTA_EXCEEDED.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review30a_enrollment import enroll_alice
from tests.test_trust_scope import NOW
from troth.authority.client import rotated_request
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import init_node, open_node


def test_a_zero_quota_refuses_a_members_entry(troth_home: Path) -> None:
    init_node("acme-node")
    init_node("members")
    with open_node("acme-node") as node, open_node("members") as members:
        authority = node.create_authority("acme", now=NOW, revocation_quota=0)
        members.identities.create(now=NOW, name="alice")
        members.identities.rotate("alice", now=NOW)
        enroll_alice(authority, members)
        announce = rotated_request(members.identities, "alice", authority.identifier, now=NOW)
        with pytest.raises(AuthorityError) as caught:
            authority.rotated(announce, now=NOW)
    assert caught.value.reason is AuthorityFailure.QUOTA_EXCEEDED
    assert "may cause 0 feed entries per hour" in str(caught.value)
