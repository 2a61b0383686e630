"""Review 50c, secrets broker.

- Batches 1: a feed's (or an operator's) revocation batch tried every lease's upstream
  revocation in turn, however long that took: a server that stopped answering cost the
  broker's single thread a connect timeout per lease (N leases x 10 s), every agent's issue
  queued behind it. A batch now has a budget of engine time; the leases it did not try stay
  REVOKING (committed before any engine call), due for the sweep's first attempts.
- Not before 1: the broker never read a credential's `not_before`, so a delegation dated
  ahead leased up to the verifier's clock skew early. The broker judges the window as it does
  the expiry: a chain valid only thanks to the skew (`VerifiedCredential.within_skew`) is
  refused.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, RemoteStub, make_world, open_broker
from tests.test_review49e_secrets import CONNECT_TIMEOUT, _Clock
from troth.crypto import KeyType
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.broker import Broker, IssuedLease
from troth.secrets.engine import SecretSpec
from troth.secrets.lease import Lease, SecretValue
from troth.secrets.store import SigningKeyRecord
from troth.secrets.sweep import BATCH_REVOKE_SECONDS
from troth.vault import KeyPurpose


class _Dead(RemoteStub):
    """A remote engine whose server stops answering when `down`: each revocation then costs
    `CONNECT_TIMEOUT` of `clock` and fails."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock
        self.down = False
        self.attempts = 0

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        self.attempts += 1
        if self.down:
            self.clock.now += CONNECT_TIMEOUT
            raise OSError("connection timed out")
        super().revoke(spec, ref, upstream)


def _leases(tmp_path: Path, count: int) -> tuple[Broker, _Dead, _Clock, LeaseWorld, list[Lease]]:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    clock = _Clock()
    broker.monotonic = clock
    engine = _Dead(clock)
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    agent = world.credential_a()
    leases = [broker.issue(agent, "s", now=NOW).lease for _ in range(count)]
    return broker, engine, clock, world, leases


def _state(broker: Broker, lease: Lease) -> LeaseState | None:
    found = broker.book.lease(lease.handle)
    return None if found is None else found.state


@pytest.mark.parametrize("by", ["feed", "operator"])
def test_a_revocation_batch_against_a_dead_server_is_bounded_and_nothing_is_lost(
    tmp_path: Path, by: str
) -> None:
    """Batches 1: 40 leases on a server that stopped answering are revoked by the feed (or an
    operator): the batch spends at most its budget and one connect timeout, not 40 of them;
    every lease is REVOKING (none live), and once the server answers the sweeps revoke each
    one, those the batch never tried included."""
    broker, engine, clock, world, leases = _leases(tmp_path, 40)
    engine.down = True
    if by == "feed":
        feed = world.feed_revoking([(2, world.agent_a.identifier.digest)], now=NOW + 1)
        ended = broker.revoke_for_feed(feed, now=NOW + 1)
    else:
        ended = broker.revoke_identity(world.agent_a.identifier, now=NOW + 1)
    assert len(ended) == 40
    assert clock.now <= BATCH_REVOKE_SECONDS + CONNECT_TIMEOUT, clock.now
    assert {lease.state for lease in ended} == {LeaseState.REVOKING}
    engine.down = False
    for n in range(2, 200):
        broker.sweep(NOW + 3600 * n)
        if all(_state(broker, lease) is LeaseState.REVOKED for lease in leases):
            break
    assert sorted(map(str, engine.revoked)) == sorted(str(lease.engine_ref) for lease in leases)


def test_the_leases_a_batch_left_are_due_after_a_restart(tmp_path: Path) -> None:
    """Batches 1, crash safety: the leases a batch did not try are REVOKING in node.db before
    any engine call, so a broker opened afresh (the process killed after the batch) revokes
    them at its first sweeps."""
    broker, engine, _clock, world, leases = _leases(tmp_path, 20)
    engine.down = True
    broker.revoke_identity(world.agent_a.identifier, now=NOW + 1)
    assert engine.attempts < 20
    broker.close()
    _db, again = open_broker(tmp_path / "node.db", now=NOW + 2)
    fresh = _Dead(_Clock())
    again.engines[fresh.kind] = fresh
    again.recover(NOW + 2)
    for n in range(3, 100):
        if not again.sweep(NOW + 3600 * n).deferred:
            break
    for lease in leases:
        assert _state(again, lease) is LeaseState.REVOKED


def test_a_chain_dated_ahead_leases_nothing_before_its_not_before(tmp_path: Path) -> None:
    """Not before 1: a delegation valid from NOW + 30 verifies at NOW (within the verifier's
    60 s skew); the broker refuses it a lease until NOW + 30, as it refuses one past its
    expiry."""
    world = make_world(NOW + 30)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.engines[RemoteStub.kind] = RemoteStub()
    broker.put_secret("s", RemoteStub.kind, {"scopes": ["x"]}, b"admin", now=NOW)
    early = world.credential_a(now=NOW)
    assert early.not_before == NOW + 30
    with pytest.raises(SecretError) as refused:
        broker.issue(early, "s", now=NOW)
    assert refused.value.reason is SecretFailure.DENIED
    assert "not valid before" in refused.value.detail
    assert broker.leases(early) == []
    issued = broker.issue(early, "s", now=NOW + 30)
    assert issued.lease.issued_at == NOW + 30


TOKEN_CONFIG = {"scopes": ["x"], "ttl": 120, "max_ttl": 600, "audience": "payments"}


def _token_broker(path: Path, world: LeaseWorld, now: int) -> Broker:
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(path, now=now, policy=policy)
    if not broker.secrets():
        broker.put_secret("payments", "token", TOKEN_CONFIG, b"", now=now)
    return broker


def _plant(broker: Broker, now: int) -> str:
    """A writer of node.db without the vault key points the current token key's record at
    another key of the vault (here a fresh signing key: an identity's, say); returns its
    handle."""
    vault = broker.vault
    handle = str(vault.generate(KeyType.ED25519, KeyPurpose.SIGNING))
    with broker.store.transaction():
        broker.store.add_signing_key(SigningKeyRecord("planted", handle, now, None))
    return handle


def _kid(token_lease: IssuedLease) -> str:
    header = str(token_lease.credential.reveal()["token"]).split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_a_token_key_record_pointed_at_another_key_signs_nothing(tmp_path: Path) -> None:
    """Token keys 1: a record of node.db pointed at a vault key the broker did not make (no
    ownership tag opens for it) made it the broker's current token key: every token was
    signed with it (key confusion: an identity's key signing JWTs). The running broker now
    refuses to sign with it (CONFIG_INVALID), and a broker opened over that database makes
    a key of its own, current from then on."""
    world = make_world(NOW)
    broker = _token_broker(tmp_path / "node.db", world, NOW)
    broker.issue(world.credential_a(), "payments", now=NOW)  # (the broker's own key, cached)
    _plant(broker, NOW + 1)
    with pytest.raises(SecretError) as refused:
        broker.issue(world.credential_a(), "payments", now=NOW + 2)
    assert refused.value.reason is SecretFailure.CONFIG_INVALID, refused.value
    broker.close()
    again = _token_broker(tmp_path / "node.db", world, NOW + 3)
    issued = again.issue(world.credential_a(), "payments", now=NOW + 3)
    assert _kid(issued) != "planted"
    again.validate_token(str(issued.credential.reveal()["token"]), audience="payments", now=NOW + 4)


def test_a_current_token_key_without_its_tag_is_rotated_and_its_tokens_no_longer_validate(
    tmp_path: Path,
) -> None:
    """Token keys 1, a key made before review 48r (no ownership tag): a broker opened over
    the database makes a key of its own (a routine rotation). The old key is not published
    (review 50i, jwks 1: an untagged row is no different from one a writer of node.db
    pointed at another key of the vault), so the tokens it signed are refused: their holders
    lease again."""
    world = make_world(NOW)
    broker = _token_broker(tmp_path / "node.db", world, NOW)
    old = broker.issue(world.credential_a(), "payments", now=NOW)
    (record,) = broker.store.signing_keys()
    with broker.store.transaction():
        broker.store.drop_meta("token-key:" + record.handle)
    broker.close()
    again = _token_broker(tmp_path / "node.db", world, NOW + 1)
    new = again.issue(world.credential_a(), "payments", now=NOW + 1)
    assert _kid(new) != _kid(old) == record.kid
    again.validate_token(str(new.credential.reveal()["token"]), audience="payments", now=NOW + 2)
    with pytest.raises(SecretError) as refused:
        again.validate_token(
            str(old.credential.reveal()["token"]), audience="payments", now=NOW + 2
        )
    assert refused.value.reason is SecretFailure.JWT_UNKNOWN_KEY, refused.value
    assert record.kid not in again.jwks(NOW + 2).keys
