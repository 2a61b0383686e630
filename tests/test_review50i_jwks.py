"""Review 50i, token keys (JWKS ownership).

- JWKS 1: `BrokerKeys.jwks` published every row of node.db's token-key table, whatever key
  it named: a writer of node.db without the vault's key (docs/vault.md) planted a retired row
  pointed at another signing key of the vault (an identity's), or pointed the current row at
  one (the broker opening over it retires it, a routine rotation, and kept publishing it),
  and tokens signed with that key validated wherever the JWKS was fetched (key confusion,
  validation side). An unowned key signs nothing (review 48r, 50c); it is published for
  nothing now either: no ownership tag opens for it, so no token it signed validates.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from troth.crypto import KeyType
from troth.errors import SecretError
from troth.secrets import AllowListPolicy
from troth.secrets.broker import Broker, IssuedLease
from troth.secrets.jwt import ALGORITHMS, canonical_json, encoded_header
from troth.secrets.lease import b64url
from troth.secrets.store import SigningKeyRecord
from troth.vault import KeyHandle, KeyPurpose

TOKEN_CONFIG = {"scopes": ["x", "y"], "ttl": 120, "max_ttl": 600, "audience": "payments"}


def _token_broker(path: Path, world: LeaseWorld, now: int) -> Broker:
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(path, now=now, policy=policy)
    if not broker.secrets():
        broker.put_secret("payments", "token", TOKEN_CONFIG, b"", now=now)
    return broker


def _plant(broker: Broker, now: int, *, retired_at: int | None) -> KeyHandle:
    """A writer of node.db without the vault key adds a token-key row named "planted",
    pointed at another signing key of the vault (an identity's, say); returns its handle."""
    handle = broker.vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    with broker.store.transaction():
        broker.store.add_signing_key(SigningKeyRecord("planted", str(handle), now, retired_at))
    return handle


def _forge(broker: Broker, genuine: IssuedLease, handle: KeyHandle) -> str:
    """The claims of a genuine token (its lease is live), signed with the planted key: what
    whoever gets that key to sign (the identity's holder) passes off as the broker's."""
    token = str(genuine.credential.reveal()["token"])
    claims = token.split(".")[1]
    body = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    signing_input = (
        f"{encoded_header(ALGORITHMS[handle.key_type], 'planted')}.{b64url(canonical_json(body))}"
    )
    signature = broker.vault.sign(handle, signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


def test_a_planted_retired_token_key_is_not_published(tmp_path: Path) -> None:
    """JWKS 1: a retired row pointed at another vault key was published, and a token it
    signed validated (the broker's own validation, and a relying party's with the JWKS)."""
    world = make_world(NOW)
    broker = _token_broker(tmp_path / "node.db", world, NOW)
    genuine = broker.issue(world.credential_a(), "payments", now=NOW)
    handle = _plant(broker, NOW - 10, retired_at=NOW + 5)
    with pytest.raises(SecretError):
        broker.validate_token(_forge(broker, genuine, handle), audience="payments", now=NOW + 1)
    assert "planted" not in broker.jwks(NOW + 1).keys
    broker.validate_token(  # the broker's own key's tokens still validate
        str(genuine.credential.reveal()["token"]), audience="payments", now=NOW + 1
    )


def test_a_planted_current_token_key_is_not_published_after_the_rotation(
    tmp_path: Path,
) -> None:
    """JWKS 1: a current row pointed at another vault key is retired by the broker opening
    over it (review 50c), and was then published as a retired key of the broker's."""
    world = make_world(NOW)
    broker = _token_broker(tmp_path / "node.db", world, NOW)
    genuine = broker.issue(world.credential_a(), "payments", now=NOW)
    handle = _plant(broker, NOW + 1, retired_at=None)
    broker.close()
    again = _token_broker(tmp_path / "node.db", world, NOW + 2)
    with pytest.raises(SecretError):
        again.validate_token(_forge(again, genuine, handle), audience="payments", now=NOW + 2)
    assert "planted" not in again.jwks(NOW + 2).keys
    again.validate_token(
        str(genuine.credential.reveal()["token"]), audience="payments", now=NOW + 2
    )
