"""Review 61c, refuted: attacks on the authority's tickets and enrollment that did not work.

Each test is a real attempt and fails if the defence breaks: one ticket raced by twice as many
identities as its uses (1 and 2), on threads and two handles of its node (exactly `uses`
members); an answer lost and the enrollment repeated after both nodes restarted, or after the
holder rotated (the same credential, no second one); a ticket's code sent to a second
authority; an altered code; an expired ticket; a ticket made before the authority rotated (it
enrolls under the new key, also where the holder's node stored the newer history); an identity
revoked for good (refused, the ticket's use left for someone else); a request nested 50,000
deep (`request invalid`); a member revoking another member's credential (`not upstream`);
10,000 enroll requests from one source (its burst served, another source and a member still
served); a member refreshing every 4 s (issued rows and feed entries stay within bounds).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.enroll import (
    acme_and_agent,
    acme_ticket,
    enroll_answer_lost,
    enroll_in_process,
    resume_in_process,
)
from troth import limits
from troth.authority import Authority, Ticket
from troth.authority.budgets import RequestBudgets
from troth.authority.client import enroll_request, refresh_request, revoke_request
from troth.authority.requests import REQUEST_TYPE, VERSION, make_request
from troth.clock import FixedClock
from troth.encoding import cbor
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import init_node, open_node

NOW = 1_800_000_000
DAY = 86_400


def _refused(reason: AuthorityFailure, call: object, *args: object, **kwargs: object) -> None:
    with pytest.raises(AuthorityError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.reason is reason, caught.value


@pytest.mark.parametrize("uses", [1, 2])
def test_one_ticket_raced_by_more_identities_than_uses_on_two_handles(
    tmp_path: Path, uses: int
) -> None:
    """Each racer on its own thread, half of them on a second handle of the authority's node
    (another connection to node.db, as a CLI beside the running node): `uses` members."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, _ticket):
        ticket = acme_ticket(authority, NOW, uses=uses)
        refs = [f"r{i}" for i in range(2 * uses)]
        for ref in refs:
            agent.identities.create(now=NOW, name=ref)
        requests = [enroll_request(agent.identities, ref, ticket, now=NOW) for ref in refs]
        answers: list[object] = []
        barrier = threading.Barrier(len(requests))
        with open_node("acme", home=tmp_path) as beside:
            hosts = [authority, beside.authority()] * uses

            def redeem(host: Authority, request: bytes) -> None:
                barrier.wait()
                try:
                    answers.append(host.enroll(request, now=NOW))
                except AuthorityError as exc:
                    answers.append(exc.reason)

            threads = [
                threading.Thread(target=redeem, args=pair)
                for pair in zip(hosts, requests, strict=True)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert answers.count(AuthorityFailure.TICKET_UNKNOWN) == uses, answers
        assert len(authority.members()) == uses


def test_a_lost_answer_repeated_after_a_restart_gets_the_same_credential(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, clock)
        issued_before = authority.store.live_issued(member.digest, NOW, 0)
    clock = FixedClock(NOW + 30)
    with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
        authority = acme.authority()
        (pending,) = agent.wallet.pending_enrollments("agent")
        done = resume_in_process(agent, pending, authority, clock)
        again = authority.enroll(
            enroll_request(agent.identities, "agent", ticket, now=NOW + 40), now=NOW + 40
        )
        assert authority.store.live_issued(member.digest, NOW + 40, 0) == issued_before
        assert done.credential.links[-1].hash == again.credentials[0].hash == issued_before[0]


def test_a_ticket_made_before_the_authority_rotated_enrolls_under_its_new_key(
    tmp_path: Path,
) -> None:
    clock = FixedClock(NOW + 60)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        authority.identities.rotate(authority.config.name, now=NOW + 30)
        done = enroll_in_process(agent, "agent", authority, ticket, clock)
        assert done.credential.links[0].issuer == authority.identifier
        (held,) = agent.wallet.presentable("agent", now=NOW + 60)
        assert agent.wallet.inspect(held.chain, now=NOW + 60).links[-1].hash == (
            done.credential.links[-1].hash
        )


def test_a_ticket_replayed_against_a_second_authority_is_unknown(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (_authority, agent, _member, ticket):
        init_node("beta", home=tmp_path)
        with open_node("beta", home=tmp_path) as beta:
            second = beta.create_authority("beta", now=NOW)
            request = make_request(
                agent.identities.signer("agent", now=NOW),
                "enroll",
                second.identifier,
                [ticket.code],
                now=NOW,
            )
            _refused(AuthorityFailure.TICKET_UNKNOWN, second.enroll, request, now=NOW)
            assert second.members() == []


def test_an_altered_code_and_an_expired_ticket_are_unknown(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        flipped = Ticket(
            bytes([ticket.code[0] ^ 1]) + ticket.code[1:], ticket.authority_history, ticket.address
        )
        for text, clock in ((flipped, FixedClock(NOW)), (ticket, FixedClock(NOW + 601))):
            _refused(
                AuthorityFailure.TICKET_UNKNOWN,
                enroll_in_process,
                agent,
                "agent",
                authority,
                text,
                clock,
            )
        assert authority.members() == []


def test_an_identity_revoked_for_good_takes_no_use_of_a_ticket(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        authority.revoke_identity(member, now=NOW)
        request = enroll_request(agent.identities, "agent", ticket, now=NOW)
        _refused(AuthorityFailure.NOT_A_MEMBER, authority.enroll, request, now=NOW)
        agent.identities.create(now=NOW, name="other")
        other = enroll_request(agent.identities, "other", ticket, now=NOW)
        assert authority.enroll(other, now=NOW).credentials[0]  # the one use is still there


def test_a_deeply_nested_request_is_refused_as_invalid(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, _ticket):
        signer = agent.identities.signer("agent", now=NOW)
        head = cbor.encode([REQUEST_TYPE, VERSION, "enroll", authority.identifier.digest, NOW])
        body = b"\x86" + head[1:] + b"\x81" * 50_000 + b"\x00"
        request = cbor.encode(
            [body, signer.sign(body), signer.attestation, signer.identity.history]
        )
        _refused(AuthorityFailure.REQUEST_INVALID, authority.enroll, request, now=NOW)


def test_a_member_cannot_revoke_another_members_credential(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        agent.identities.create(now=NOW, name="other")
        enroll_in_process(agent, "agent", authority, ticket, clock)
        theirs = enroll_in_process(agent, "other", authority, acme_ticket(authority, NOW), clock)
        (held,) = agent.wallet.held("other")
        chain = held.chain
        request = revoke_request(
            agent.identities,
            "agent",
            authority.identifier,
            credential_hash=theirs.credential.links[-1].hash,
            chain=chain,
            reason="mine now",
            now=NOW,
        )
        _refused(AuthorityFailure.NOT_UPSTREAM, authority.revoke_link, request, now=NOW)


def test_ten_thousand_requests_from_one_source_leave_another_served() -> None:
    budgets = RequestBudgets()
    refused: list[AuthorityFailure] = []
    for _ in range(10_000):
        try:
            budgets.charge("flooder", member=False, now=NOW)
        except AuthorityError as exc:
            refused.append(exc.reason)
    assert refused == [AuthorityFailure.RATE_LIMITED] * (10_000 - limits.ENROLL_REQUESTS_BURST)
    budgets.charge("neighbour", member=False, now=NOW)  # another network: served
    budgets.charge(b"member", member=True, now=NOW)  # a member: served


def test_an_old_key_ticket_enrolls_where_the_newer_history_is_stored(tmp_path: Path) -> None:
    clock = FixedClock(NOW + 60)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, old):
        authority.identities.rotate(authority.config.name, now=NOW + 30)
        agent.identities.create(now=NOW, name="other")
        enroll_in_process(agent, "other", authority, acme_ticket(authority, NOW + 40), clock)
        done = enroll_in_process(agent, "agent", authority, old, clock)
        assert agent.wallet.presentable("agent", now=NOW + 60)
        assert done.authority == authority.identifier


def test_a_lost_answer_resumed_after_the_holder_rotated_gets_the_same_credential(
    tmp_path: Path,
) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, clock)
        (issued,) = authority.store.live_issued(member.digest, NOW, 0)
        agent.identities.rotate("agent", now=NOW + 10)
        (pending,) = agent.wallet.pending_enrollments("agent")
        done = resume_in_process(agent, pending, authority, FixedClock(NOW + 20))
        assert done.credential.links[-1].hash == issued
        assert authority.store.live_issued(member.digest, NOW + 20, 0) == [issued]
        assert agent.wallet.presentable("agent", now=NOW + 20)


def test_a_member_refreshing_in_a_loop_leaves_bounded_rows_and_feed(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_in_process(agent, "agent", authority, ticket, FixedClock(NOW))
        for step in range(1, 161):  # every 4 s for over 10 minutes, twice the skew
            now = NOW + 4 * step
            authority.refresh(
                refresh_request(agent.identities, "agent", authority.identifier, now=now), now=now
            )
        rows = authority.store.live_issued(member.digest, NOW - DAY, 0)
        assert len(rows) <= limits.MAX_RECENT_CREDENTIALS_PER_MEMBER
        assert authority.store.revocation_tip()[0] <= authority.config.revocation_quota
