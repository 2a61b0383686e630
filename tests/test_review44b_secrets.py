"""Review 44b, secrets: the broker's leases after revocation (library broker, token engine).

1. `revoke_for_feed` ends every live lease, under any authority, of an agent the feed revokes
   when the feed's authority has standing over it (it presented a chain of that authority
   here: review 31b, secrets 2 and 3), but an issue re-checked only the feed of the
   presented credential's own authority (`LeaseBook._check_feed`): globex revokes agent B, a
   member of acme and of globex who leased under both; both leases end, and B leased again at
   once under its acme chain (a new token `validate_token` accepts, a database role), renewed
   it and forwarded under it, for as long as it liked. The revocation held only where a node's
   peer checks stood in front of the broker; the library broker and gate 3 over `LocalLeases`
   (whose decision point judges a credential by its own authority's feed) leased again.

The test asserts the correct behaviour and was a strict xfail until `LeaseBook._check_feed`
(every issue, renewal and forward) also refused an agent that a feed installed in the book
revokes when that feed's authority has standing over it (`has_member(standing_member(...))`,
the rule `revoke_for_feed` applies).

Refuted here (pinned, each would fail if the hole opened):
- the guard of 1: a feed of an authority that never justified a chain of the agent here ends
  nothing, and the agent still leases and renews under its other authority;
- a token replayed to another audience of the same broker (another token secret), or after its
  lease was revoked, is refused by `broker.validate_token` and by the JWKS-only check with the
  broker's `revoked_leases()`;
- renewal: never past the lease's cap (issued_at + max_ttl), not after the agent revoked it,
  not by a delegate of the holder holding its lease id (a narrower chain: NO_SUCH_LEASE);
- crash: a revocation committed (REVOKING) before the process died is finished by `recover` on
  restart, never resurrected (the token stays refused);
- malformed requests to the served endpoint (random maps, wrong types, huge integers, bad lease
  ids) are a DecodeError or a typed refusal, and leave no lease.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import ATTRS, CHAIN_TTL, LeaseWorld, make_world, open_broker
from tests.support.parties import make_party, verified_feed
from tests.test_review31b_secrets import broker_for, globex_member
from troth.credentials import CredentialChain, RevocationKind, delegate, issue_credential
from troth.errors import DecodeError, SecretError, SecretFailure
from troth.secrets import AllowListPolicy, LeaseState, validate_token
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint

TOKEN = {"scopes": ["refunds"], "ttl": 60, "max_ttl": 600, "audience": "payments"}


def test_an_agent_revoked_by_an_authority_with_standing_cannot_lease_again(
    tmp_path: Path,
) -> None:
    """Secrets 1: B, revoked by globex (which justified a chain of B here), leases again under
    its acme chain right after `revoke_for_feed` ended both its leases."""
    world = make_world(NOW)
    globex = make_party(world.vault, now=NOW)
    broker = broker_for(tmp_path, world.agent_b)
    broker.issue(world.credential_b(), "payments", now=NOW)
    broker.issue(globex_member(world, globex, world.agent_b), "payments", now=NOW)
    feed = verified_feed(
        globex, [(int(RevocationKind.IDENTITY), world.agent_b.identifier.digest)], now=NOW + 5
    )
    assert len(broker.revoke_for_feed(feed, now=NOW + 5)) == 2

    with pytest.raises(SecretError) as caught:
        broker.issue(world.credential_b(), "payments", now=NOW + 6)
    assert caught.value.reason is SecretFailure.REVOKED


def test_a_feed_without_standing_over_the_agent_leaves_it_leasing(tmp_path: Path) -> None:
    """The guard of secrets 1: acme revokes B, for whom acme justified no chain here; B's globex
    lease stays, renews, and B leases again under globex."""
    world = make_world(NOW)
    globex = make_party(world.vault, now=NOW)
    broker = broker_for(tmp_path, world.agent_b)
    at_globex = globex_member(world, globex, world.agent_b)
    issued = broker.issue(at_globex, "payments", now=NOW)
    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.agent_b.identifier.digest)], now=NOW + 5
    )
    assert broker.revoke_for_feed(feed, now=NOW + 5) == []
    broker.renew(at_globex, issued.lease_id, now=NOW + 6)
    broker.issue(at_globex, "payments", now=NOW + 6)


def test_a_token_is_refused_for_another_audience_and_once_revoked(tmp_path: Path) -> None:
    """Refuted: a payments token replayed to the ledger audience (another secret of the same
    broker), or after its lease was revoked, validates nowhere."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None, "ledger": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    broker.put_secret("ledger", "token", {**TOKEN, "audience": "ledger"}, b"", now=NOW)
    issued = broker.issue(world.credential_b(), "payments", now=NOW)
    token = str(issued.credential.reveal()["token"])
    elsewhere: list[Callable[[], object]] = [
        lambda: broker.validate_token(token, audience="ledger", now=NOW + 1),
        lambda: validate_token(token, broker.jwks(NOW), audience="ledger", now=NOW + 1),
    ]
    for check in elsewhere:
        with pytest.raises(SecretError) as caught:
            check()
        assert caught.value.reason is SecretFailure.JWT_WRONG_AUDIENCE
    broker.validate_token(token, audience="payments", now=NOW + 1)
    broker.revoke(world.credential_b(), issued.lease_id, now=NOW + 2)
    revoked = broker.revoked_leases()
    after: list[Callable[[], object]] = [
        lambda: broker.validate_token(token, audience="payments", now=NOW + 3),
        lambda: validate_token(
            token, broker.jwks(NOW), audience="payments", now=NOW + 3, revoked=revoked
        ),
    ]
    for check in after:
        with pytest.raises(SecretError) as caught:
            check()
        assert caught.value.reason is SecretFailure.REVOKED


def test_renewal_stays_within_the_cap_the_holder_and_its_chain(tmp_path: Path) -> None:
    """Refuted: renewals never pass issued_at + max_ttl; a revoked lease is not renewed; a
    delegate of the holder that holds the lease id (a narrower chain) cannot renew it."""
    world = make_world(NOW)
    policy = AllowListPolicy(
        {world.agent_b.identifier: {"payments": None}, world.agent_a.identifier: {"payments": None}}
    )
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    member = world.credential_b()
    issued = broker.issue(member, "payments", now=NOW)
    at = NOW
    while at < NOW + 600:
        lease, _ = broker.renew(member, issued.lease_id, now=at)
        assert lease.expires_at <= NOW + 600
        at += 50
    with pytest.raises(SecretError) as caught:
        broker.renew(member, issued.lease_id, now=NOW + 600)
    assert caught.value.reason is SecretFailure.EXPIRED

    fresh = broker.issue(member, "payments", now=NOW + 1)
    chain = delegate(
        world.agent_b.signer,
        _chain_of(world),
        subject=world.agent_a.identifier,
        attributes=ATTRS,
        now=NOW,
        ttl=CHAIN_TTL,
        purpose="narrower",
    ).encode()
    narrower = world.verifier.verify(
        chain, presenter=world.agent_a.identifier, feeds=world.feeds(), now=NOW
    )
    with pytest.raises(SecretError) as caught:
        broker.renew(narrower, fresh.lease_id, now=NOW + 2)
    assert caught.value.reason is SecretFailure.NO_SUCH_LEASE
    broker.revoke(member, fresh.lease_id, now=NOW + 3)
    with pytest.raises(SecretError) as caught:
        broker.renew(member, fresh.lease_id, now=NOW + 4)
    assert caught.value.reason is SecretFailure.REVOKED


def _chain_of(world: LeaseWorld) -> CredentialChain:
    """Agent B's member chain (depth 1, so B may delegate once)."""
    credential = issue_credential(
        world.authority.signer,
        subject=world.agent_b.identifier,
        attributes=ATTRS,
        now=NOW,
        ttl=CHAIN_TTL,
        depth=1,
    )
    return CredentialChain((credential,), (world.authority.identity.history,))


def test_a_revocation_cut_short_by_a_crash_is_finished_never_resurrected(tmp_path: Path) -> None:
    """Refuted: the process dies after REVOKING is committed and before the engine ran; the
    restarted broker's `recover` finishes it and the token stays refused."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    issued = broker.issue(world.credential_b(), "payments", now=NOW)
    token = str(issued.credential.reveal()["token"])
    assert broker.book.revoke_handle(issued.lease.handle, NOW + 1) is not None  # REVOKING
    broker.close()
    db.close()

    _db, again = open_broker(tmp_path / "node.db", now=NOW + 2, policy=policy)
    again.recover(NOW + 2)
    lease = again.book.lease(issued.lease.handle)
    assert lease is not None
    assert lease.state is LeaseState.REVOKED
    with pytest.raises(SecretError) as caught:
        again.validate_token(token, audience="payments", now=NOW + 3)
    assert caught.value.reason is SecretFailure.REVOKED


def test_malformed_requests_are_typed_and_leave_no_lease(tmp_path: Path) -> None:
    """Refuted: random malformed requests to the endpoint are a DecodeError or a refusal."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    endpoint = BrokerEndpoint(broker)
    callers = (
        BrokerCaller(world.agent_b.identifier, (world.credential_b(),)),
        BrokerCaller(world.agent_b.identifier, ()),
    )
    values: list[object] = [
        None, True, 0, -1, 2**64 - 1, 1.5, "", "x", "payments", "lease_", "lease_" + "A" * 43,
        "a" * 5000, b"x", [], [" "], ["a"] * 17, [["a", "b"]], {}, {"a": 1}, "\x00",
    ]  # fmt: skip
    fields = {
        "issue": ["secret", "scope", "ttl"],
        "renew": ["lease_id", "ttl"],
        "revoke": ["lease_id", "ttl"],
        "list": ["ended"],
        "jwks": ["x"],
        "forward": ["lease_id", "method", "target", "headers", "body"],
        "revoke-identity": ["identity"],
        "nope": ["x"],
    }
    rnd = random.Random(44)
    answers = 0
    for _ in range(3000):
        method = rnd.choice(sorted(fields))
        arguments: object = {k: rnd.choice(values) for k in fields[method] if rnd.random() < 0.9}
        if rnd.random() < 0.05:
            arguments = rnd.choice(values)
        try:
            answer = endpoint.handle(method, arguments, rnd.choice(callers), NOW)
        except DecodeError:
            continue
        answers += 1
        assert isinstance(answer, dict)
        assert "refused" in answer or method in ("list", "jwks"), (method, arguments)
    assert answers > 0
    assert db.fetch_one("SELECT COUNT(*) FROM secret_leases", ()) == (0,)
