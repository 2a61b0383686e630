"""Review 70t, enroll: enrollment tickets and member enrollment.

enroll 1 (medium: a restored authority answered a revoked member's enrollment) A member's
enrollment committed at the authority, its answer lost (a crash of either side: a pending
record at the holder, a redemption at the authority, within a ticket's window of a day); a
copy of the hub's node.db taken; the member removed (its recorded credential revoked); the
copy put back. The restore holds the authority (review 65o, feed 2: it "issues no credential
and serves no feed page", `_issue_bounded`: "nothing answered again either") until its
operator revoked again what was revoked after the copy; but a repeat of the enrollment within
the ticket's window was answered with the credential the redemption recorded
(`Authority.enroll`'s `_answers_again` path never asked `check_not_held`): the member whose
removal the copy lost got the very credential that removal revoked, from an authority held for
being in doubt. Fixed: that path is refused RESTORED as every other answer is (the holder
keeps its pending record: not a refusal for good, resumed once the authority is released).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import copy_db, node_db, release_authority, restore_db
from tests.support.enroll import acme_ticket, enroll_answer_lost, resume_in_process
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import init_node, open_node

NOW = 1_800_000_000
DAY = 24 * 3600


def test_enroll1_a_restored_authority_answers_no_recorded_enrollment(tmp_path: Path) -> None:
    """70t enroll 1: a repeat of an enrollment the restored copy recorded (its member removed
    after the copy) is refused RESTORED while the authority is held, not answered with the
    credential the removal revoked; the pending record stays until the released authority
    answers it (its operator removed the member again: NOT_A_MEMBER)."""
    clock = FixedClock(NOW)
    init_node("acme", home=tmp_path)
    init_node("agent", home=tmp_path)
    with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
        authority = acme.create_authority("acme", now=NOW)
        member = agent.identities.create(now=NOW, name="agent").identifier
        ticket = acme_ticket(authority, NOW, ttl=DAY)
        enroll_answer_lost(agent, "agent", authority, ticket, clock)
    path = node_db(tmp_path, "acme")
    copy_db(path, tmp_path / "acme-copy.db")
    clock.advance(60)
    with open_node("acme", home=tmp_path) as acme:
        assert len(acme.authority().remove_member(member, now=clock.now())) == 1
    restore_db(path, tmp_path / "acme-copy.db")
    clock.advance(60)
    with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
        authority = acme.authority()
        assert authority.restore_held() is not None
        (pending,) = agent.wallet.pending_enrollments("agent")
        with pytest.raises(AuthorityError) as refused:
            resume_in_process(agent, pending, authority, clock)
        assert refused.value.reason is AuthorityFailure.RESTORED
        assert agent.wallet.held("agent") == []
        assert len(agent.wallet.pending_enrollments("agent")) == 1
    with open_node("acme", home=tmp_path) as acme:  # its operator removes it again
        acme.authority().remove_member(member, now=clock.now())
    assert release_authority(tmp_path, "acme") is not None
    with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
        (pending,) = agent.wallet.pending_enrollments("agent")
        with pytest.raises(AuthorityError) as removed:
            resume_in_process(agent, pending, acme.authority(), clock)
        assert removed.value.reason is AuthorityFailure.NOT_A_MEMBER
        assert agent.wallet.held("agent") == []
