"""Review 58d (secrets): attacks on the broker and its leases that did not work. Each test is a
real attempt that would pass if the defence it names broke.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world
from tests.support.secret_checks import lease_state, refusal, token_broker
from troth.errors import SecretFailure
from troth.secrets import Broker, validate_token
from troth.secrets.lease import LEASE_ID_SIZE, LOCATOR_SIZE, LeaseHandle, LeaseId, LeaseState

AUDIENCE = "payments"
CONFIG: dict[str, object] = {
    "scopes": ["refunds", "read"],
    "ttl": 120,
    "max_ttl": 600,
    "audience": AUDIENCE,
}


def _broker(path: Path, world: LeaseWorld) -> Broker:
    holders = [world.agent_a.identifier, world.user.identifier]
    return token_broker(path, holders, CONFIG, now=NOW)


def test_a_lease_id_forged_from_the_public_jti_acts_on_nothing(tmp_path: Path) -> None:
    """The token's `jti` (the public handle) starts with the lease id's 8-byte locator. A lease
    id with that locator and any other 24 bytes — even sent by the holder's own credential —
    renews, revokes and reveals nothing: the handle's hash and the proof must both match."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    handle = LeaseHandle.parse(str(issued.lease.handle))
    for _ in range(3):
        forged = LeaseId(handle.digest[:LOCATOR_SIZE] + os.urandom(LEASE_ID_SIZE - LOCATOR_SIZE))
        assert forged.handle.locator == handle.locator
        for call in (
            lambda f=forged: broker.renew(world.credential_a(), f, now=NOW + 1),
            lambda f=forged: broker.revoke(world.credential_a(), f, now=NOW + 1),
        ):
            assert refusal(call) is SecretFailure.NO_SUCH_LEASE
    assert lease_state(broker, issued.lease.handle) is LeaseState.ACTIVE
    text = issued.lease_id.text()  # the same bytes spelt otherwise: an unused low bit set
    assert text[-1] in "AEIMQUYcgkosw048"  # 32 bytes: 43 characters, the last has 2 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelt = text[:-1] + alphabet[alphabet.index(text[-1]) + 1]
    assert refusal(lambda: LeaseId.parse(respelt)) is SecretFailure.NO_SUCH_LEASE
    broker.close()


def test_a_token_secret_repointed_at_another_audience_keeps_no_old_token(
    tmp_path: Path,
) -> None:
    """The operator re-points the secret's audience (`put_secret`, same engine: its leases stay
    open). The broker takes the tokens minted for the old audience neither for it nor for the
    new one; a renewal mints for the new audience only."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    old = str(issued.credential.reveal()["token"])
    broker.put_secret("payments", "token", {**CONFIG, "audience": "ledger"}, b"", now=NOW + 1)
    assert refusal(lambda: broker.validate_token(old, audience=AUDIENCE, now=NOW + 2)) is (
        SecretFailure.JWT_NOT_OF_LEASE
    )
    assert refusal(lambda: broker.validate_token(old, audience="ledger", now=NOW + 2)) is (
        SecretFailure.JWT_WRONG_AUDIENCE
    )
    _lease, made = broker.renew(world.credential_a(), issued.lease_id, now=NOW + 3)
    new = str(made.reveal()["token"])
    assert broker.validate_token(new, audience="ledger", now=NOW + 4).audience == "ledger"
    assert refusal(lambda: broker.validate_token(new, audience=AUDIENCE, now=NOW + 4)) is (
        SecretFailure.JWT_WRONG_AUDIENCE
    )
    broker.close()


def test_a_far_ahead_now_for_the_jwks_or_published_states_moves_no_lease_end(
    tmp_path: Path,
) -> None:
    """The JWKS and the published lease states are read with the reader's `now`: one far ahead
    (a relying party's clock, a value it was handed) ends nothing at the broker (unlike
    `Broker.validate_token`: test_review58d_secrets, secrets 1)."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    token = str(issued.credential.reveal()["token"])
    ahead = NOW + 10**7
    jwks, states = broker.jwks(ahead), broker.revoked_leases()
    assert refusal(
        lambda: validate_token(token, jwks, audience=AUDIENCE, now=ahead, revoked=states)
    ) is (SecretFailure.EXPIRED)
    assert broker.clock.seen() < ahead
    assert validate_token(token, jwks, audience=AUDIENCE, now=NOW + 1, revoked=states).jti
    broker.close()


def test_an_operators_revocation_of_a_delegate_reaches_no_delegator_above_it(
    tmp_path: Path,
) -> None:
    """Review 58d, secrets 2 made `revoke_identity` end the leases of the chains an identity
    delegated. Revoking agent a (the end of user -> orchestrator -> a) must not climb: the
    user's own lease, under its member credential, stays."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    by_a = broker.issue(world.credential_a(), "payments", now=NOW)
    by_user = broker.issue(world.member_credential(world.user), "payments", now=NOW)
    revoked = broker.revoke_identity(world.agent_a.identifier, now=NOW + 1)
    assert [lease.handle for lease in revoked] == [by_a.lease.handle]
    assert lease_state(broker, by_user.lease.handle) is LeaseState.ACTIVE
    broker.close()
