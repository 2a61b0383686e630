"""Review 47a, defaults: the other lifetimes a caller leaves to a default, tried for the
failure the policy bundle's had (a default longer than what it must end with, refused by
construction: review 47a, defaults 1). Refuted: each is capped, not refused.

- A lease asked for without a ttl gets the secret's ttl, capped by the presented credential's
  expiry: an agent whose credential has 30 s left gets a 30 s lease, not a refusal.
- A resigned bundle keeps its lifetime from now within the authority's signing key.
- A delegation has no default ttl (`--ttl` is required; `Node.delegate(ttl=)` too), and one
  past its parent is refused with the ttl that fits (tests/test_cli_errors.py)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.gates import POLICIES, TOOLS
from tests.support.gates import make_world as gates_world
from tests.support.leases import make_world, open_broker
from troth.gates import create_bundle, decode_bundle, resign_bundle
from troth.secrets import AllowListPolicy

CONFIG = {"scopes": ["refunds:write"], "ttl": 120, "max_ttl": 600, "audience": "payments"}


def test_a_default_lease_ends_with_the_credential_instead_of_being_refused(
    tmp_path: Path,
) -> None:
    world = make_world(NOW, chain_ttl=300)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    late = NOW + 270  # 30 s of the credential left, under the secret's 120 s ttl
    issued = broker.issue(world.credential_a(late), "payments", now=late)
    assert (issued.lease.issued_at, issued.lease.expires_at) == (late, NOW + 300)


def test_a_resigned_bundle_ends_with_the_authoritys_key() -> None:
    world = gates_world()
    signer = world.authority.signer
    lifetime = 20 * 86_400
    now = signer.expires_at - lifetime - 60
    data = create_bundle(
        signer,
        authority=world.authority.identifier,
        policies=POLICIES,
        schema="",
        tools=TOOLS,
        revision=1,
        now=now,
        ttl=lifetime,
    )
    later = now + 86_400  # the same lifetime from here would outlive the key by a day
    again = decode_bundle(resign_bundle(data, signer, now=later))
    assert (again.issued_at, again.expires_at) == (later, signer.expires_at)
