"""Review 61j: attacks on `Node.policies`, `Node.secrets` and the `troth policy` / `troth
secret` commands after their logic moved (review 61g) that did not work (each a real attempt
that fails if the defence breaks)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import troth
from tests.support.cli import run
from tests.support.gates import POLICIES
from tests.support.policy_world import TOOLS, WRITE, writer_world
from tests.support.public_api import Agents
from troth.clock import FixedClock
from troth.limits import DEFAULT_FEED_STALENESS_SECONDS

SMALL, LARGE = {"order_id": "1", "amount": 5}, {"order_id": "1", "amount": 50}


@pytest.fixture
def world() -> Iterator[Agents]:
    """acme's hub and the agents node holding revision 1 of POLICIES; `writer` holds read
    and write."""
    with writer_world() as made:
        yield made


def test_a_caveated_delegation_and_its_revocation_decide_as_the_gates(world: Agents) -> None:
    """`writer` delegates refunds to `sub` with a caveat (amount at most 10): the presented
    `Credential` and the local identity get the same answers (the caveat forbids a larger
    refund), and once `writer` revokes the link, both are denied."""
    agents = world.agents
    link = agents.delegate(
        "writer",
        to=world.sub,
        attributes=WRITE,
        ttl=600,
        purpose="refunds",
        caveats=["context.args.amount <= 10"],
    )
    held = agents.hold(world.sub, link)
    for who in (held, "sub"):
        assert agents.policies.decide(who, "refund", SMALL).allowed
        assert not agents.policies.decide(who, "refund", LARGE).allowed
    agents.revoke(held, by="writer", reason="done")
    for who in (held, "sub"):
        decision = agents.policies.decide(who, "refund", SMALL)
        assert (decision.allowed, decision.outcome) == (False, troth.Outcome.CREDENTIAL)


def test_an_expired_credential_and_a_stale_feed_are_denied(world: Agents) -> None:
    """The same node read with a clock past the credential's expiry and its feed's staleness:
    the Credential and the local identity both denied, and a newer bundle refused there."""
    (held,) = world.agents.credentials("writer")
    later = FixedClock(held.expires_at + DEFAULT_FEED_STALENESS_SECONDS + 1)
    newer = world.hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=2)
    with troth.Node.open("agents", clock=later) as agents:
        for who in (held, "writer"):
            assert not agents.policies.decide(who, "refund", SMALL).allowed
        with pytest.raises(troth.PolicyError):
            agents.policies.install(newer)
    assert [b.revision for b in world.agents.policies.show()] == [1]


def test_a_credential_made_by_hand_of_junk_is_denied(world: Agents) -> None:
    """A `Credential` whose chain is junk (its other fields a real one's), or another
    identity's chain claimed by `writer`: denied, never allowed, never a crash."""
    (held,) = world.agents.credentials("writer")
    (other,) = world.agents.credentials(world.support)
    for forged in (
        dataclasses.replace(held, chain=b"\xa1junk"),
        dataclasses.replace(other, holder=held.holder),
    ):
        decision = world.agents.policies.decide(forged, "lookup_order", {"order_id": "1"})
        assert (decision.allowed, decision.outcome) == (False, troth.Outcome.CREDENTIAL)


def test_a_lease_call_as_another_nodes_identity_is_refused_before_connecting(
    world: Agents,
) -> None:
    """`agents.secrets` asked to act as the hub's identity (an `Identity` of another node):
    NotFound, before any channel is opened."""

    async def main() -> None:
        with pytest.raises(troth.NotFound):
            await world.agents.secrets.leases(holder=world.hub.identity, broker="/tcp/127.0.0.1:9")
        with pytest.raises(troth.NotFound):
            await world.agents.secrets.lease("payments", holder="acme", broker="/tcp/127.0.0.1:9")

    asyncio.run(main())


def test_a_secret_value_is_in_no_answer_nor_error(world: Agents) -> None:
    """The upstream value never comes back: not in `StoredSecret`, nor in the SecretError of
    a configuration refused."""
    value = b"s3cret-upstream-value"
    config = {
        "scopes": ["read"],
        "ttl": 60,
        "max_ttl": 120,
        "upstream": "https://api.example/v1",
        "header": "Authorization",
        "rules": [{"methods": ["GET"], "path": "/v1/*"}],
    }
    with pytest.raises(troth.TrothError) as refused:
        world.hub.secrets.put("api", engine="http-inject", config={"ttl": "x"}, value=value)
    assert "s3cret" not in str(refused.value) + repr(refused.value)
    stored = world.hub.secrets.put("api", engine="http-inject", config=config, value=value)
    assert stored.engine == "http-inject"
    assert "s3cret" not in repr(stored) + str(stored)


def test_the_cli_refuses_a_bad_services_file_and_server_as_before(
    world: Agents, tmp_path: Path
) -> None:
    """After the move (review 61g): `troth policy bundle create --services` of a service not
    mapped to a list fails with the message it had (b176b582), and `troth policy test
    --server` of a bad name is a usage error naming --server."""
    files = {"p": POLICIES, "t": json.dumps({}), "s": json.dumps({"orders": "status"})}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    made = run(
        *("policy", "bundle", "create", "--policies", str(tmp_path / "p")),
        *("--tools", str(tmp_path / "t"), "--services", str(tmp_path / "s")),
        *(
            "--revision",
            "5",
            "--node",
            "acme",
            "--as",
            "acme",
            "--authority",
            "acme",
            "--out",
            str(tmp_path / "b"),
        ),
        code=1,
    )
    assert "services: each service maps to a list of method names" in made.stderr
    tested = run(
        *("policy", "test", "--bundle", str(tmp_path / "b"), "--chain", str(tmp_path / "c")),
        *("--tool", "refund", "--server", "bad name!", "--authority", "acme"),
        code=2,
    )
    assert "--server" in tested.stderr
