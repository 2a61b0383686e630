"""Review 68n (revoke: 68c's compromised rotation revoking its leases before announcing it).

revoke 1 (low: a misleading message on a real path) `troth identity rotate --compromised` on a
   broker node whose revocation failed (its engine down: `the secret engine failed`) still
   announced the rotation (68c's `finally`), then reported the revocation's error alone, exit
   1: nothing said the rotation was committed and announced, nor what came of the
   announcements, nor that the leases stay due (the broker revokes them at its next start or
   maintenance round). An operator read a failed rotation and ran it again: a second
   compromised rotation. Now the error is reported after a warning saying all that, and each
   announcement that failed is warned of as on success; the exit code is the revocation's.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests import test_review67f_secrets as review67f
from tests.support.public_api import Agents
from tests.test_review67l_refuted import leased
from troth.cli import identity_cmds
from troth.cli.main import cli
from troth.errors import SecretError, SecretFailure
from troth.identity import VerifiedIdentity

world = review67f.world  # the fixture: acme's hub brokering `payments` to its members


def _failing(node_name: str, rotated: VerifiedIdentity) -> int:
    raise SecretError(SecretFailure.ENGINE_FAILED, "the database is down")


@pytest.mark.parametrize("as_json", [False, True])
def test_revoke1_a_failed_revocation_says_the_rotation_is_committed_and_announced(
    world: Agents, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    leased(world, (world.agents, "support"))
    monkeypatch.setattr(identity_cmds, "_revoke_rotated", _failing)
    name, before = world.hub.name, world.hub.identity.changes
    args = ["identity", "rotate", name, "--compromised", "--node", name]
    rotated = CliRunner().invoke(cli, [*args, "--json"] if as_json else args)
    assert rotated.exit_code == 1  # the revocation's failure: not a success
    assert world.hub.identity.changes > before  # committed
    if as_json:
        shown = json.loads(rotated.stdout)
        assert shown["error"] == "SecretError"
        assert shown["rotation"]["changes"] == world.hub.identity.changes
        text = " ".join(shown["warnings"])
    else:
        text = rotated.stderr
        assert str(world.hub.identity.identifier) in text  # what `rotate` shows, on stderr
    assert "the database is down" in (rotated.stdout + rotated.stderr)
    assert "the rotation is committed" in text
    assert "announced" in text
    assert "stay due" in text
    assert "do not rotate again" in text
