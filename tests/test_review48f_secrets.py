"""Review 48f, the secrets broker's tokens and leases.

1. A token key another process retired kept signing here: a broker reads the current key again
   only every `limits.TOKEN_KEY_RECHECK_SECONDS`, so for up to 10 s after a rotation made by
   another broker over the same database (the daemon, a CLI command) it minted tokens with the
   retired key, dated after the retirement, which `Broker.validate_token` then refuses ("a
   token signed by a retired key must predate its retirement"): a lease handed out ACTIVE with
   a token no broker takes. After a compromised rotation, the key it signed with was withdrawn
   from the JWKS: a token nobody takes.

2. `revoke-identity` answered every lease it revoked, unbounded: an identity holding more
   live leases than a list answer carries (`limits.MAX_LEASE_LIST`, `MAX_LEASE_LIST_BYTES`;
   an agent delegated by several members holds a quota under each, and short leases not yet
   swept are ACTIVE past the quota) had them revoked, but the operator was told a failure:
   the client refused the answer (more than the list limit), or the node did (over the
   service limit). It now answers the leases that fit, newest first, and how many it revoked.

3. An ACTIVE lease past its expiry freed its place in the quota at once, though its upstream
   object (a database role, and its sessions) lives until the sweep revokes it: review 44b
   made a REVOKING lease hold its place for that reason, and a member leasing with ttl 1
   between two sweeps held several quotas of roles. An expired lease with an upstream object
   (`engine_ref`) now counts until the sweep; an expired token lease still frees its place.

4. A routine token key rotation could publish more keys than a JWKS holds (`MAX_JWKS_KEYS`:
   each retired key stays published 30 days): `Jwks.parse` refused the broker's JWKS and no
   token validated there. Such a rotation is now refused (a compromised one never is).

5. Gate 3's held leases (up to 1,024) were keyed by the caller's whole chain, up to 128 KiB
   each: now by its hash.

Each test was a strict xfail until its fix.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, RemoteStub, make_world, open_broker
from tests.support.parties import make_party
from tests.test_review47d_secrets import _delegated
from tests.test_secrets_tokens import AUDIENCE, CONFIG
from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, Jwks, LeaseState
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.toolgate import SecretNeed, ToolLeases
from troth.secrets.wire import decode_leases, decode_revoked


def _pair(tmp_path: Path, world: LeaseWorld) -> tuple[Broker, Broker]:
    """Two brokers over one node database (a daemon and a CLI command's runtime)."""
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, first = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    first.put_secret("payments", "token", CONFIG, b"", now=NOW)
    _db2, second = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    return first, second


@pytest.mark.parametrize("compromised", [False, True])
def test_a_token_minted_after_another_process_rotated_is_valid(
    tmp_path: Path, compromised: bool
) -> None:
    world = make_world(NOW)
    first, second = _pair(tmp_path, world)
    second.issue(world.credential_a(), "payments", now=NOW)  # its signer read at NOW
    first.keys.rotate_signing_key(NOW + 1, compromised=compromised)
    issued = second.issue(world.credential_a(), "payments", now=NOW + 2)
    token = str(issued.credential.reveal()["token"])
    for broker in (first, second):
        validated = broker.validate_token(token, audience=AUDIENCE, now=NOW + 3)
        assert validated.jti == str(issued.lease.handle)


def test_revoke_identity_answers_within_a_list_answer(tmp_path: Path) -> None:
    world = make_world(NOW)
    members = [make_party(world.vault, now=NOW) for _ in range(11)]
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    for member in members:  # a full quota under each member's account
        credential = _delegated(world, member, world.agent_b)
        for _ in range(broker.book.quota):
            broker.issue(credential, "payments", now=NOW)
    live = 11 * broker.book.quota
    assert live > limits.MAX_LEASE_LIST
    answer = BrokerEndpoint(broker).handle(
        "revoke-identity",
        {"identity": str(world.agent_b.identifier)},
        BrokerCaller(None, operator=True),
        NOW + 1,
    )
    assert len(cbor.encode(answer)) <= limits.MAX_LEASE_LIST_BYTES + 64
    shown, revoked = decode_revoked(answer)
    assert revoked == live
    assert [lease.issued_at for lease in shown] == sorted(
        (lease.issued_at for lease in shown), reverse=True
    )
    assert 0 < len(shown) <= limits.MAX_LEASE_LIST
    assert all(lease.state.name == "REVOKED" for lease in shown)
    assert not broker.store.leases_in([LeaseState.ACTIVE], identity=world.agent_b.identifier)
    # an answer that holds them all carries no count, as before
    small = BrokerEndpoint(broker).handle(
        "revoke-identity",
        {"identity": str(world.agent_a.identifier)},
        BrokerCaller(None, operator=True),
        NOW + 1,
    )
    assert small == {"leases": []}
    assert decode_leases(small) == []
    with pytest.raises(DecodeError):  # a list answer carries no count
        decode_leases({"leases": [], "revoked": 3})
    with pytest.raises(DecodeError):  # nor one below the leases it shows
        decode_revoked({"leases": answer["leases"][:2], "revoked": 2})


def test_a_lease_past_its_expiry_holds_its_place_until_the_sweep_revokes_it(
    tmp_path: Path,
) -> None:
    """quota 2, a remote engine (a database role per lease), ttl 1: at NOW + 1 the two leases
    of NOW are over but not swept (the served broker sweeps every few seconds), their roles
    still there; two more leases would make four roles for a quota of two."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"s": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=2)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    credential = world.credential_b()
    for _ in range(2):
        broker.issue(credential, "s", now=NOW, ttl=1)
    with pytest.raises(SecretError) as refused:
        broker.issue(credential, "s", now=NOW + 1, ttl=1)
    assert refused.value.reason is SecretFailure.QUOTA_EXCEEDED
    broker.sweep(NOW + 1)  # the expired ones revoked upstream: their places are free
    assert engine.revoked
    broker.issue(credential, "s", now=NOW + 1, ttl=1)


def test_routine_rotations_never_publish_more_keys_than_a_jwks_holds(tmp_path: Path) -> None:
    """Each routine rotation keeps the retired key published for `MAX_LEASE_TTL`: an operator
    rotating hourly published a JWKS of more than `MAX_JWKS_KEYS` keys within three days,
    which `Jwks.parse` (the broker client's `jwks()`, any troth relying party) refuses: no
    token of the broker validated there any more. A routine rotation past the bound is refused
    (a compromised one, which withdraws every older key, is not); what was published stays."""
    world = make_world(NOW)
    first, _second = _pair(tmp_path, world)
    at = NOW
    for _ in range(limits.MAX_JWKS_KEYS - 1):
        at += 3600
        first.keys.rotate_signing_key(at)
    published = first.jwks(at).to_json()
    assert len(Jwks.parse(published).keys) == limits.MAX_JWKS_KEYS
    with pytest.raises(SecretError) as refused:
        first.keys.rotate_signing_key(at + 3600)
    assert refused.value.reason is SecretFailure.CONFIG_INVALID
    assert first.jwks(at + 3600).to_json() == published
    first.keys.rotate_signing_key(at + 3600, compromised=True)
    assert len(Jwks.parse(first.jwks(at + 3600).to_json()).keys) == 1
    # once the oldest retired key is published no more, a routine rotation is allowed again
    oldest = NOW + 3600 + limits.MAX_LEASE_TTL + 1
    later = max(oldest, at + 7200)
    first.keys.rotate_signing_key(later)
    assert len(Jwks.parse(first.jwks(later).to_json()).keys) <= limits.MAX_JWKS_KEYS


class _Source:
    """A lease source whose every lease lives an hour (gate 3 keeps each one it hands out)."""

    def issue(self, credential: Any, need: SecretNeed, now: int) -> Any:
        return SimpleNamespace(lease=SimpleNamespace(expires_at=now + 3600))

    def live(self, issued: Any, now: int) -> bool:
        return True

    def forward(self, credential: Any, lease_id: Any, request: Any, now: int) -> Any:
        raise AssertionError("no forward")


def test_gate3_keeps_no_chain_of_the_leases_it_holds() -> None:
    """Gate 3 keeps up to 1,024 leases for reuse, keyed by the caller's chain: the key held the
    chain itself, up to `limits.MAX_CHAIN_BYTES` (128 KiB) each, so callers with large chains
    (a member's delegates are free) made it hold 128 MiB. It keys them by the chain's hash."""
    leases = ToolLeases(_Source(), {})
    need = SecretNeed("payments")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(64):
            chain = n.to_bytes(4, "big") * (limits.MAX_CHAIN_BYTES // 4)
            caller = SimpleNamespace(actor=SimpleNamespace(digest=b"a" * 32), chain=chain)
            leases._obtain(caller, need, NOW)  # type: ignore[arg-type]  # (private: the cache)
            del chain, caller
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 1 << 20, held
