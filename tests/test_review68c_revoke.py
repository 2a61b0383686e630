"""Review 68c, a second review of 67f/67l/67q's leases revoked by a compromised rotation
(troth.node.rotation_revoke, `broker_revoke_due`).

revoke 1 (medium: what a stolen key obtained outlives the owner's rotation) `troth identity
  rotate --compromised` on a broker node committed the rotation, then announced it to every
  authority the identity holds credentials from (over the network for a remote one: a
  transient node's connection, its timeouts), and only then revoked the leases the stolen key
  obtained. An announcement that fails other than by a TrothError, or is cut short (Ctrl-C
  while a remote authority does not answer), left every such lease live (a PostgreSQL role's
  sessions with it) until the node's broker next started: on a node not running, days. The
  leases are now revoked right after the commit, before the announcement.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests import test_review67f_secrets as review67f
from tests.support.public_api import Agents
from tests.test_review67l_refuted import leased
from troth._api import node as api_node
from troth.cli import identity_cmds
from troth.cli.main import cli

world = review67f.world  # the fixture: acme's hub brokering `payments` to its members


def test_revoke1_an_announcement_cut_short_leaves_no_lease_live(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """support leases; the hub (not running) rotates its own identity as compromised, the
    announcement interrupted: support's lease, obtained under the stolen key, ended anyway."""
    leased(world, (world.agents, "support"))

    def interrupted(node_name: str, ref: str) -> list[object]:
        raise KeyboardInterrupt  # Ctrl-C while a remote authority does not answer

    monkeypatch.setattr(identity_cmds, "_announce", interrupted)
    name, before = world.hub.name, world.hub.identity.changes
    rotated = CliRunner().invoke(cli, ["identity", "rotate", name, "--compromised", "--node", name])
    assert rotated.exit_code != 0
    assert world.hub.identity.changes > before  # committed
    assert world.hub.secrets.revoke_holder(world.support) == []  # ended by the rotation


def test_revoke1_the_apis_announcement_cut_short_leaves_no_lease_live(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through `Identities.rotate(..., compromised=True)`: its announcement to the
    authorities on this machine interrupted, support's lease ended anyway."""
    leased(world, (world.agents, "support"))

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api_node, "announce_here", interrupted)
    with pytest.raises(KeyboardInterrupt):
        world.hub.identities.rotate(world.hub.identity, compromised=True)
    assert world.hub.secrets.revoke_holder(world.support) == []  # ended by the rotation
