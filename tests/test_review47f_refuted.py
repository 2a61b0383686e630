"""Review 47f, the node's durable state across crashes and restarts: attacks that failed (the
code was right), kept as tests. Real `troth` processes are killed (TROTH_CRASH_AT, exit 137 as
a SIGKILL would) between two durable effects of an operation no earlier crash test covered,
then the stores are reopened and the invariant checked: no acknowledged effect lost, no
one-time ticket reusable beyond its uses, no revoked link accepted after the restart, no key
usable after its retirement, no half-state that strands a member."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.enroll import acme_and_agent
from tests.support.forked import troth_forked
from tests.support.leases import make_world, open_broker
from troth import limits
from troth.authority.client import revoke_request, rotated_request
from troth.clock import SystemClock
from troth.credentials import CredentialChain, RevocationKind
from troth.enrollment import enroll
from troth.errors import AuthorityError, KeyNotFound, SecretError, SecretFailure, TrothError
from troth.faults import CRASH_EXIT_CODE, CRASH_POINTS
from troth.identity import Identifier
from troth.node import open_node
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.lease import LeaseRequest
from troth.storage import SqliteAuthorityStore
from troth.vault import KeyHandle


def troth(
    *args: str, crash: str | None = None, code: int | None = 0, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`troth_forked`; `code=None`: the exit code not checked."""
    return troth_forked(
        *args, crash=crash, code=code or None, input_text=input_text, check=code is not None
    )


def enrolled_with_helper() -> tuple[Identifier, Identifier]:
    """Nodes acme and agent, `agent` enrolled at acme (a `node:acme` ticket); a local identity
    `helper` to delegate to. (acme's identifier, helper's.)"""
    now = int(time.time())
    with acme_and_agent(None, now) as (authority, agent, _member, ticket):

        def send(request: bytes) -> bytes:
            return authority.enroll(request, now=int(time.time())).encode()

        enroll(agent.identities, agent.wallet, "agent", ticket, clock=SystemClock(), send=send)
        helper = agent.identities.create(now=now, name="helper").identifier
        return authority.identifier, helper


def delegate(out: Path, to: Identifier) -> bytes:
    troth(
        "credential", "delegate", "--as", "agent", "--to", str(to), "--attr", "team.name=x",
        "--ttl", "30m", "--purpose", "help", "--out", str(out), "--node", "agent",
    )  # fmt: skip
    return CredentialChain.decode(out.read_bytes()).credentials[-1].hash


def revocation_records(home: Path) -> int:
    path = home / "nodes" / "agent" / "trace.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM leaves").fetchone()[0])


def feed_state(link: bytes) -> tuple[int | None, int]:
    """(the seq of `link`'s revocation in acme's feed, the feed's entry count)."""
    with open_node("acme") as node:
        store = SqliteAuthorityStore(node.db)
        return store.find_revocation(int(RevocationKind.CREDENTIAL), link), (
            store.revocation_tip()[0]
        )


def revoke_link(
    link: bytes, chain: Path, crash: str | None = None
) -> subprocess.CompletedProcess[str]:
    return troth(
        "revoke", "link", link.hex(), "--chain", str(chain), "--as", "agent",
        "--authority", "acme", "--node", "agent", "--json", crash=crash,
    )  # fmt: skip


def refused_at_acme(chain: Path) -> bool:
    """Whether acme's own view of its feed refuses the chain (a restarted acme verifies so)."""
    result = troth(
        "credential", "verify", str(chain), "--trust", "acme", "--authority", "acme", code=None
    )
    return result.returncode != 0


def test_a_link_revocation_killed_after_the_feeds_commit_stands_and_is_redone_once(
    troth_home: Path, tmp_path: Path
) -> None:
    """`troth revoke link` (a delegator revoking the link it issued, its authority on this
    machine) is two commits in two files: the feed entry at acme, then the delegator's record
    of it. Killed between them the link is revoked at the restart (the entry is durable, and
    chains through it are refused), not yet recorded; the redo answers the same feed entry,
    appends no second entry (nor charges the member's quota twice: the feed's count is the
    same) and records it once; a redo after the record is answered from it."""
    _acme, helper = enrolled_with_helper()
    chain = tmp_path / "helper.chain"
    link = delegate(chain, helper)
    base = revocation_records(troth_home)  # the delegation's record
    assert not refused_at_acme(chain)

    assert revoke_link(link, chain, "authority.revoke.before-commit").stdout == ""
    assert feed_state(link)[0] is None  # rolled back: nothing revoked
    assert not refused_at_acme(chain)

    assert revoke_link(link, chain, "authority.revoke.after-commit").stdout == ""
    seq, count = feed_state(link)
    assert seq is not None
    assert refused_at_acme(chain)  # the acknowledged-at-acme revocation holds after the kill
    assert revocation_records(troth_home) == base  # not recorded yet

    assert json.loads(revoke_link(link, chain).stdout)["seq"] == seq
    assert feed_state(link) == (seq, count)  # no second entry, no second charge
    assert revocation_records(troth_home) == base + 1

    assert json.loads(revoke_link(link, chain).stdout)["seq"] == seq
    assert revocation_records(troth_home) == base + 1  # answered from the held record
    assert feed_state(link) == (seq, count)
    troth("trace", "verify", "--node", "agent")


def test_a_rotation_killed_after_its_commit_leaves_no_retired_key_in_the_vault(
    troth_home: Path,
) -> None:
    """A rotation retires the old primary key and every purpose key in the transaction that
    stores the new history (software vault: their rows are deleted in it). Killed right after
    that commit — before anything in memory runs — no retired key is left in the vault to
    sign with; killed before it, the old keys are all still there and sign."""
    enrolled_with_helper()
    now = int(time.time())
    with open_node("agent") as node:
        local = node.identities.find("agent")
        old_primary = KeyHandle.parse(local.primary_key)
        signer = node.identities.signer("agent", now=now)
        old_signing = signer.handle
        signer.sign(b"before")

    troth("identity", "rotate", "agent", "--node", "agent", crash="identity.rotate.before-commit")
    with open_node("agent") as node:
        node.vault.public_key(old_primary)
        node.vault.sign(old_signing, b"still here")

    troth(
        "identity", "rotate", "agent", "--compromised", "--node", "agent",
        crash="identity.rotate.after-commit",
    )  # fmt: skip
    with open_node("agent") as node:
        for handle in (old_primary, old_signing):
            with pytest.raises(KeyNotFound):
                node.vault.public_key(handle)
            with pytest.raises(TrothError):
                node.vault.sign(handle, b"after retirement")
        fresh = node.identities.signer("agent", now=int(time.time()))
        assert fresh.handle not in (old_primary, old_signing)
        fresh.sign(b"the new key signs")


def test_a_one_use_ticket_taken_before_a_crash_is_not_redeemable_by_anyone_else(
    troth_home: Path,
) -> None:
    """`troth enroll` killed after the authority's commit (its use taken, the redemption and
    credential stored) and before the holder stored the answer: after the restart another
    identity with the same one-use ticket is refused (the use is not given back), while the
    member that redeemed it gets its one credential on the redo (never a second)."""
    with acme_and_agent(None, int(time.time())) as (_authority, agent, member, ticket):
        agent.identities.create(now=int(time.time()), name="other")
    troth(
        "enroll", "-", "--as", "agent", "--node", "agent",
        crash="authority.enroll.after-commit", input_text=str(ticket),
    )  # fmt: skip
    refused = troth(
        "enroll", "-", "--as", "other", "--node", "agent", code=None, input_text=str(ticket)
    )
    assert refused.returncode != 0
    assert "ticket" in refused.stderr.lower()
    troth("enroll", "-", "--as", "agent", "--node", "agent", input_text=str(ticket))
    with open_node("agent") as node, open_node("acme") as acme:
        store = SqliteAuthorityStore(acme.db)
        assert store.count_redemptions(member.digest) == 1
        issued = store.unexpired_issued(member.digest, int(time.time()))
        assert [h.id for h in node.wallet.held("agent")] == issued
        assert node.wallet.held("other") == []


def test_the_refresh_points_are_declared() -> None:
    assert {"authority.refresh.before-commit", "authority.refresh.after-commit"} <= set(
        CRASH_POINTS
    )


def test_refreshes_killed_after_the_authoritys_commit_never_strand_the_member(
    troth_home: Path,
) -> None:
    """`troth credential refresh` (the authority on this machine) killed after the authority
    issued and committed the credential, before the member stored it, more times than the
    member's bound of live credentials (16): the member still holds its earlier credential
    after each kill, the authority never holds more than the bound live for it, and the next
    refresh completes (at the bound the newest credential is answered again, not refused)."""
    enrolled_with_helper()
    with open_node("agent") as node:
        (first,) = [h.id for h in node.wallet.held("agent")]
        member = Identifier(node.identities.find("agent").identifier)
    refresh = ("credential", "refresh", "agent", "--node", "agent")
    assert troth(*refresh, crash="authority.refresh.before-commit").stdout == ""
    for _ in range(limits.MAX_LIVE_CREDENTIALS_PER_MEMBER + 1):
        assert troth(*refresh, crash="authority.refresh.after-commit").stdout == ""
        with open_node("agent") as node:
            assert [h.id for h in node.wallet.held("agent")] == [first]
    with open_node("acme") as acme:
        issued = SqliteAuthorityStore(acme.db).unexpired_issued(member.digest, int(time.time()))
    assert len(issued) == limits.MAX_LIVE_CREDENTIALS_PER_MEMBER
    troth(*refresh)
    with open_node("agent") as node:
        held = [h.id for h in node.wallet.held("agent")]
    fresh = set(held) - {first}
    assert len(fresh) == 1
    assert fresh <= set(issued)  # one of the 16, answered again
    with open_node("agent") as node:
        node.identities.signer("agent", now=int(time.time())).sign(b"member still signs")


def _killed_after(issue: Callable[[], object]) -> None:
    """Run `issue` in a forked process killed (exit 137, no cleanup) right after it returned:
    the lease committed, its answer never delivered."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            issue()
        finally:
            os._exit(CRASH_EXIT_CODE)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == CRASH_EXIT_CODE


def test_a_broker_restart_keeps_the_lease_quota_and_the_served_request_attempts(
    tmp_path: Path,
) -> None:
    """Leases issued by a broker process killed before their answers left it (a token lease:
    row and token in one commit) are live after the restart and still count in the quota: a
    restart frees no place (a member cannot exceed its quota by crashing the broker). A lease
    request's served attempt survives too: the retry (attempt 2) revokes the lost lease and
    leases again, and a replay of attempt 1 after the restart is refused, issuing nothing."""
    world = make_world(NOW)
    path = tmp_path / "node.db"
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    token = {"scopes": ["refunds"], "ttl": 60, "max_ttl": 600, "audience": "payments"}
    db, broker = open_broker(path, now=NOW, policy=policy, quota=2)
    broker.put_secret("payments", "token", token, b"", now=NOW)
    broker.close()
    db.close()
    request = LeaseRequest.new()

    def issue(attempt: int | None) -> Callable[[], object]:
        def run() -> object:
            _db, broker = open_broker(path, now=NOW, policy=policy, quota=2)
            asked = None if attempt is None else LeaseRequest(request.id, attempt)
            return broker.issue(world.credential_b(), "payments", now=NOW + 1, request=asked)

        return run

    _killed_after(issue(1))
    _killed_after(issue(None))

    db, broker = open_broker(path, now=NOW + 2, policy=policy, quota=2)
    try:
        broker.recover(NOW + 2)
        live = broker.leases(world.agent_b.identifier)
        assert [lease.state for lease in live] == [LeaseState.ACTIVE] * 2
        with pytest.raises(SecretError) as caught:
            broker.issue(world.credential_b(), "payments", now=NOW + 3)
        assert caught.value.reason is SecretFailure.QUOTA_EXCEEDED
        retried = broker.issue(
            world.credential_b(), "payments", now=NOW + 4, request=LeaseRequest(request.id, 2)
        )
        states = sorted(
            lease.state.value
            for lease in broker.leases(world.agent_b.identifier, include_ended=True)
        )
        assert states.count(LeaseState.ACTIVE.value) == 2  # the retry's and the lost plain one
        assert retried.lease.state is LeaseState.ACTIVE
        with pytest.raises(SecretError) as caught:
            broker.issue(
                world.credential_b(), "payments", now=NOW + 5, request=LeaseRequest(request.id, 1)
            )
        assert caught.value.reason is SecretFailure.BAD_REQUEST
        assert len(broker.leases(world.agent_b.identifier, include_ended=True)) == 3
    finally:
        broker.close()
        db.close()


def test_a_signed_request_replayed_after_the_authority_restarted_changes_nothing(
    troth_home: Path, tmp_path: Path
) -> None:
    """The authority's memory of answered requests (`ANSWERED_REQUESTS`) is in memory only:
    a restart forgets it. A revoke request (and a `rotated` one) replayed after the restart,
    within its validity, is verified and carried out again, which is idempotent: the same
    feed entry, no second entry, the member's quota charged once; a request older than the
    clock skew is refused whatever the memory holds."""
    acme_id, helper = enrolled_with_helper()
    chain = tmp_path / "helper.chain"
    link = delegate(chain, helper)
    now = int(time.time())
    with open_node("agent") as agent:
        member = agent.identities.find("agent").identifier
        request = revoke_request(
            agent.identities,
            "agent",
            acme_id,
            credential_hash=link,
            chain=chain.read_bytes(),
            reason="lost",
            now=now,
        )
        rotated = rotated_request(agent.identities, "agent", acme_id, now=now)
    answers = []
    for _restart in range(2):  # each open is a fresh authority: an empty memory
        with open_node("acme") as acme:
            authority = acme.authority()
            answers.append(
                (
                    authority.revoke_link(request, now=now + 1),
                    authority.rotated(rotated, now=now + 1),
                    authority.store.revocation_tip()[0],
                    len(authority.store.charged_since(member, now - 3600)),
                )
            )
    assert answers[0] == answers[1]
    assert answers[0][3] == 1  # the link's entry, charged once
    with open_node("acme") as acme, pytest.raises(AuthorityError):
        acme.authority().revoke_link(request, now=now + 2 * limits.MAX_CLOCK_SKEW_SECONDS)
