"""Review 67f, the secret broker's leases.

secrets 1: an identity rotated with `--compromised` (`Identities.rotate(..., compromised=True)`,
`troth identity rotate --compromised`) kept every lease its old key obtained at its node's
broker: a thief holding a copy of the vault leases, the owner rotates as compromised, and the
thief's leases (and every lease under a chain the stolen key signed: an authority's members')
ran to their expiry, up to 30 days, a PostgreSQL role's open session keeping its privileges.
docs/secrets.md promised only that a rotation ends nothing (`troth lease revoke --holder` was
left to the operator). A compromised rotation at a node that is a broker now revokes there,
as `--holder` does, every lease whose chain names the identity (a broker elsewhere cannot
tell a compromised rotation from a routine one: revoke there with `--holder`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

import troth
from tests.support.brokers import PAYMENTS
from tests.support.public_api import Agents, acme_and_agents
from troth.cli.main import cli

LEASES = """\
@id("support-refunds") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("orders.access") && ["refunds"].containsAll(context.scope) };
"""


@pytest.fixture
def world() -> Iterator[Agents]:
    """acme's hub (its authority's identity the node's own) brokering `payments`."""
    with acme_and_agents() as made:
        made.hub.secrets.put("payments", engine="token", config=PAYMENTS)
        made.hub.policies.publish(policies=LEASES, tools={}, revision=1)
        yield made


def _lease_then_rotate(world: Agents, *, compromised: bool) -> list[str]:
    """`support` leases at the hub, the hub rotates its own (the authority's) identity; the
    states of support's leases then."""
    secrets = world.agents.secrets
    states: list[str] = []

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            issued = await secrets.lease(
                "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
            )
            world.hub.identities.rotate(world.hub.identity, compromised=compromised)
            with pytest.raises(troth.SecretError):  # its chain is superseded either way
                await secrets.renew(issued.lease_id.text(), holder="support", broker=at)
            # still live, --holder revokes it now; revoked already, it revokes nothing
            ended = world.hub.secrets.revoke_holder(world.support)
            states.extend(lease.state.name for lease in ended)

    asyncio.run(main())
    return states


def test_a_compromised_rotation_revokes_the_leases_its_chains_obtained(world: Agents) -> None:
    assert _lease_then_rotate(world, compromised=True) == []


def test_a_routine_rotation_still_ends_no_lease(world: Agents) -> None:
    """The promise kept for a routine rotation: the lease runs on, `--holder` ends it."""
    assert _lease_then_rotate(world, compromised=False) == ["REVOKED"]


def test_the_cli_rotation_as_compromised_revokes_too(world: Agents) -> None:
    secrets = world.agents.secrets

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            await secrets.lease(
                "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
            )

    asyncio.run(main())
    name = world.hub.name
    rotated = CliRunner().invoke(
        cli, ["identity", "rotate", name, "--compromised", "--node", name, "--json"]
    )
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.stdout)["leases_revoked"] == 1
    assert world.hub.secrets.revoke_holder(world.support) == []
