"""Review 48c, memory 1: `NodeTrust.set_feed` installed whatever feed it was given. A sync
that ended before another process stored a revocation (a maintenance round's, or the local
sync `trust.reload` now does) installs its feed after `learn_held` took the newer one the
store held (the worker returns, the control op's reload runs, then the round's coroutine
resumes): the running node's memory went back to the feed without the revocation, and it
admitted the revoked link until its next round. A feed held in memory only grows."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.cli import run, run_json
from tests.test_cli_credentials import delegate, world  # noqa: F401  (the fixture)
from troth.identity import Identifier
from troth.node import open_node
from troth.node.trust import NodeTrust

NOW = int(time.time())


def test_a_feed_older_than_the_one_held_is_not_installed(world: dict[str, str]) -> None:  # noqa: F811
    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    link = bytes.fromhex(run_json("credential", "show", d1)["chain"][-1]["id"])
    authority = Identifier.parse(world["authority"])
    with open_node("default") as node:
        trust = NodeTrust(node, None)
        trust.reload(NOW)
        before = trust.feeds[authority]  # what a sync that ended just now returns
        run("revoke", "link", link.hex(), "--chain", d1, "--as", "customer", "--authority", "acme")
        trust.learn_held()  # the control op `trust.reload`
        assert trust.feeds[authority].credential_revoked(link)
        trust.set_feed(authority, before)  # the round's sync, resumed late
        assert trust.feeds[authority].credential_revoked(link)


def test_a_feed_as_long_renews_the_one_held(world: dict[str, str]) -> None:  # noqa: F811
    """The control: a feed with as many entries (a renewed snapshot) is installed."""
    authority = Identifier.parse(world["authority"])
    with open_node("default") as node:
        trust = NodeTrust(node, None)
        trust.reload(NOW)
        held = trust.feeds[authority]
        renewed = node.wallet.held_feed(authority)
        assert renewed is not None
        trust.set_feed(authority, renewed)
        assert trust.feeds[authority] is renewed
        assert renewed.count == held.count
