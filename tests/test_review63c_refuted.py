"""Review 63c (secrets): attacks on the broker and its leases that did not work.

Each test is a real attempt, and fails if the defence it names breaks:

1. Renewal past the maximum TTL: renewing early and often, and asking a renewal for more than
   `max_ttl`, never moves a lease's end past `issued_at + max_ttl`; at that point a renewal is
   refused EXPIRED.
2. Scope escalation by argument tricks: a scope the secret does not offer, two scopes in one
   string ("refunds admin", the token's space-separated form), a plain string where a list is
   meant (split into characters), a scope with a control character and one written as SQL
   (a postgres secret maps scopes to template roles: no member text reaches a statement) are
   refused BAD_REQUEST, and open no lease.
3. JWT alg / kid confusion: the same signature under a header naming another alg, `none`,
   a kid list or an unknown kid, and claims re-encoded with a later `exp`, are refused; a token
   minted for one audience is refused at another.
4. A stolen lease id used by another agent: NO_SUCH_LEASE for renew and revoke, as for a
   lease that does not exist, and its list shows nothing; the owner still renews it.
5. A revoked lease's token, replayed: refused REVOKED by the broker and by a relying party
   holding the broker's lease states; its renewal is refused.
6. One member exhausting the broker with fresh chains: each `member_credential` is another
   chain (another chain hash) of the same member, and all count in the member's one quota.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, RemoteStub, make_world, open_broker
from tests.support.secret_checks import refusal, token_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker
from troth.secrets.engine import Grant, SecretSpec
from troth.secrets.jwt import validate_token
from troth.secrets.lease import (
    LeaseCredential,
    LeaseId,
    LeaseState,
    SecretValue,
    b64url,
    b64url_decode,
)

AUDIENCE = "payments"
TTL = 120
MAX_TTL = 600
CONFIG: dict[str, object] = {
    "scopes": ["read", "refunds"],
    "ttl": TTL,
    "max_ttl": MAX_TTL,
    "audience": AUDIENCE,
}


def _broker(path: Path) -> tuple[Broker, LeaseWorld]:
    world = make_world(NOW)
    holders = [world.agent_a.identifier, world.agent_b.identifier]
    return token_broker(path, holders, CONFIG, now=NOW), world


def test_renewals_never_pass_the_max_ttl(tmp_path: Path) -> None:
    """Refuted 1: early, frequent renewals and a renewal asking more than max_ttl."""
    broker, world = _broker(tmp_path / "node.db")
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", now=NOW)
    assert (
        refusal(lambda: broker.renew(credential, issued.lease_id, now=NOW + 1, ttl=MAX_TTL + 1))
        is SecretFailure.BAD_REQUEST
    )
    for step in range(1, 7):
        lease, _made = broker.renew(credential, issued.lease_id, now=NOW + 90 * step, ttl=MAX_TTL)
        assert lease.expires_at <= NOW + MAX_TTL
    assert lease.expires_at == NOW + MAX_TTL
    renewal = lambda: broker.renew(credential, issued.lease_id, now=NOW + MAX_TTL)  # noqa: E731
    assert refusal(renewal) is SecretFailure.EXPIRED
    broker.close()


@pytest.mark.parametrize(
    "scope",
    [
        ["admin"],
        ["refunds admin"],
        "refunds",
        ["refunds", "admin"],
        ["refunds\n"],
        ["read\x00"],
        ['read"; DROP ROLE admin; --'],
    ],
)
def test_scope_argument_tricks_are_refused(tmp_path: Path, scope: object) -> None:
    """Refuted 2: no scope the secret does not offer reaches a lease, however it is spelled."""
    broker, world = _broker(tmp_path / "node.db")
    credential = world.credential_a()
    issue = lambda: broker.issue(credential, "payments", now=NOW, scope=scope)  # type: ignore[arg-type]  # noqa: E731
    assert refusal(issue) is SecretFailure.BAD_REQUEST
    assert broker.leases(credential, include_ended=True) == []
    broker.close()


def _token(broker: Broker, world: LeaseWorld) -> str:
    issued = broker.issue(world.credential_a(), "payments", now=NOW, scope=["read"])
    return str(issued.credential.reveal()["token"])


def _with_header(token: str, **changes: object) -> str:
    head, body, tail = token.split(".")
    header = json.loads(b64url_decode(head))
    header.update(changes)
    return ".".join([b64url(json.dumps(header).encode()), body, tail])


def test_jwt_alg_kid_and_claims_confusion(tmp_path: Path) -> None:
    """Refuted 3: the broker's signature under another header or over other claims."""
    broker, world = _broker(tmp_path / "node.db")
    token = _token(broker, world)
    keys = broker.jwks(NOW)
    assert broker.validate_token(token, audience=AUDIENCE, now=NOW + 1).scope == ("read",)
    kid = json.loads(b64url_decode(token.split(".")[0]))["kid"]
    forged = {
        "alg none": (_with_header(token, alg="none"), SecretFailure.JWT_UNKNOWN_KEY),
        "alg ES256": (_with_header(token, alg="ES256"), SecretFailure.JWT_UNKNOWN_KEY),
        "kid list": (_with_header(token, kid=[kid]), SecretFailure.JWT_UNKNOWN_KEY),
        "kid other": (_with_header(token, kid=kid + "x"), SecretFailure.JWT_UNKNOWN_KEY),
        "crit": (_with_header(token, crit=["exp"]), SecretFailure.JWT_MALFORMED),
    }
    head, body, tail = token.split(".")
    claims = json.loads(b64url_decode(body))
    claims.update(exp=claims["exp"] + 10**6, scope="read refunds")
    forged["claims"] = (
        ".".join([head, b64url(json.dumps(claims).encode()), tail]),
        SecretFailure.JWT_BAD_SIGNATURE,
    )
    for name, (bad, reason) in forged.items():
        with pytest.raises(SecretError) as caught:
            validate_token(bad, keys, audience=AUDIENCE, now=NOW + 1)
        assert caught.value.reason is reason, name
    with pytest.raises(SecretError) as caught:
        broker.validate_token(token, audience="billing", now=NOW + 1)
    assert caught.value.reason is SecretFailure.JWT_WRONG_AUDIENCE
    broker.close()


def test_a_stolen_lease_id_is_no_lease_of_another_agent(tmp_path: Path) -> None:
    """Refuted 4: agent b holding agent a's lease id."""
    broker, world = _broker(tmp_path / "node.db")
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    thief = world.credential_b()
    stolen = LeaseId.parse(issued.lease_id.text())
    assert refusal(lambda: broker.renew(thief, stolen, now=NOW + 1)) is SecretFailure.NO_SUCH_LEASE
    assert refusal(lambda: broker.revoke(thief, stolen, now=NOW + 1)) is SecretFailure.NO_SUCH_LEASE
    assert broker.leases(thief, include_ended=True) == []
    assert broker.renew(world.credential_a(), issued.lease_id, now=NOW + 2)[0].expires_at
    broker.close()


def test_a_revoked_leases_token_replayed_is_refused(tmp_path: Path) -> None:
    """Refuted 5: a revoked lease's token, at the broker and at a relying party."""
    broker, world = _broker(tmp_path / "node.db")
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", now=NOW)
    token = str(issued.credential.reveal()["token"])
    broker.revoke(credential, issued.lease_id, now=NOW + 1)
    with pytest.raises(SecretError) as caught:
        broker.validate_token(token, audience=AUDIENCE, now=NOW + 2)
    assert caught.value.reason is SecretFailure.REVOKED
    with pytest.raises(SecretError) as caught:
        validate_token(
            token,
            broker.jwks(NOW + 2),
            audience=AUDIENCE,
            now=NOW + 2,
            revoked=broker.revoked_leases(),
        )
    assert caught.value.reason is SecretFailure.REVOKED
    renewal = lambda: broker.renew(credential, issued.lease_id, now=NOW + 3)  # noqa: E731
    assert refusal(renewal) is SecretFailure.REVOKED
    broker.close()


def test_fresh_chains_of_one_member_share_its_quota(tmp_path: Path) -> None:
    """Refuted 6: a new chain per issue buys no new quota."""
    world = make_world(NOW)
    member = world.user
    policy = AllowListPolicy({member.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=3)
    broker.put_secret("payments", "token", dict(CONFIG), b"", now=NOW)
    chains = [world.member_credential(member) for _ in range(4)]
    assert len({chain.chain for chain in chains}) == 4
    for credential in chains[:3]:
        broker.issue(credential, "payments", now=NOW)
    with pytest.raises(SecretError) as caught:
        broker.issue(chains[3], "payments", now=NOW)
    assert caught.value.reason is SecretFailure.QUOTA_EXCEEDED
    assert str(member.identifier) in caught.value.detail
    broker.close()


class _RenewRaced(RemoteStub):
    """A remote engine whose renewal runs `during_renew` where it would talk to its server."""

    def __init__(self) -> None:
        super().__init__()
        self.during_renew: list[Callable[[], object]] = []
        self.calls: list[str] = []

    def renew(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        for action in self.during_renew:
            action()
        self.calls.append(f"renew {grant.engine_ref}")
        return super().renew(grant, upstream)

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        self.calls.append(f"revoke {ref}")
        super().revoke(spec, ref, upstream)


def test_a_remote_renewal_raced_by_a_revocation_extends_nothing(tmp_path: Path) -> None:
    """Refuted 7: the revocation wins, and the role is revoked after the extension."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    engine = _RenewRaced()
    broker.engines[engine.kind] = engine
    config = {"scopes": ["x"], "ttl": 60, "max_ttl": 600, "server": "a"}
    broker.put_secret("s", engine.kind, config, b"admin", now=NOW)
    credential = world.credential_a()
    issued = broker.issue(credential, "s", now=NOW)
    handle = issued.lease.handle
    engine.during_renew.append(lambda: broker.revoke_lease(handle, now=NOW + 1))
    renewal = lambda: broker.renew(credential, issued.lease_id, now=NOW + 2, ttl=600)  # noqa: E731
    assert refusal(renewal) is SecretFailure.REVOKED
    lease = broker.book.lease(handle)
    assert lease is not None
    assert lease.state in (LeaseState.REVOKING, LeaseState.REVOKED)
    assert lease.expires_at == issued.lease.expires_at
    ref = issued.lease.engine_ref
    assert engine.calls[-2:] == [f"renew {ref}", f"revoke {ref}"]
    broker.close()
