"""Review 48c, revcrash: `troth revoke link` killed (SIGKILL) after the authority took the
revocation and the revoker recorded it, before the node's own copy of the feed was synced:
the node, restarted, must refuse the revoked link (no state where a revocation is recorded
but not enforced)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run, run_json, troth_process
from tests.test_cli_credentials import delegate, world  # noqa: F401  (the fixture)


@pytest.mark.parametrize(
    "crash",
    [
        "trace.append.after-commit",  # recorded here: enforced here
        "authority.revoke.after-commit",  # review 48m: the node syncs first (its mark)
    ],
)
def test_a_revocation_killed_before_the_sync_is_enforced_after_restart(
    world: dict[str, str],  # noqa: F811
    crash: str,
) -> None:
    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    run("credential", "import", d1, "--as", "support")
    link = run_json("credential", "show", d1)["chain"][-1]["id"]
    args = ("revoke", "link", link, "--chain", d1, "--as", "customer", "--authority", "acme")
    troth_process(*args, crash=crash)
    shown = run_json("trace", "show", "--agent", "customer")
    assert (shown[-1]["kind"] == "revocation") is (crash == "trace.append.after-commit")
    refused = delegate(world, "support", "sub", "d2", "orders.customer=4471", ttl="10m", code=2)
    assert "holds no unexpired credential" in refused.stderr
