"""Review 48f, the secrets broker's tokens and leases.

1. A token key another process retired kept signing here: a broker reads the current key again
   only every `limits.TOKEN_KEY_RECHECK_SECONDS`, so for up to 10 s after a rotation made by
   another broker over the same database (the daemon, a CLI command) it minted tokens with the
   retired key, dated after the retirement, which `Broker.validate_token` then refuses ("a
   token signed by a retired key must predate its retirement"): a lease handed out ACTIVE with
   a token no broker takes. After a compromised rotation, the key it signed with was withdrawn
   from the JWKS: a token nobody takes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.test_secrets_tokens import AUDIENCE, CONFIG
from troth.secrets import AllowListPolicy, Broker


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
