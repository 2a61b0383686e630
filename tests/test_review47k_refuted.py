"""Review 47k: attacks tried on the revocation sync that failed (the code was right)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.test_cli_credentials import delegate, world  # noqa: F401  (the fixture)
from troth.authority import Authority
from troth.identity import Identifier
from troth.node import open_node


def test_a_forged_feed_page_is_not_stored_by_revoke_link(
    world: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The page `troth revoke link` syncs the node's feed from is verified before it is
    stored: one whose signature does not hold is refused and the node's copy stays as it was
    (the command fails, saying the link is revoked)."""
    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    link = run_json("credential", "show", d1)["chain"][-1]["id"]
    real = Authority.feed

    def forged(self: Authority, *, now: int, since: int = 0) -> bytes:
        page = real(self, now=now, since=since)
        assert b"resolved" in page
        return page.replace(b"resolved", b"resolveD")  # the signed entry's reason

    monkeypatch.setattr(Authority, "feed", forged)
    failed = run(
        "revoke",
        "link",
        link,
        "--chain",
        d1,
        "--as",
        "customer",
        "--authority",
        "acme",
        "--reason",
        "resolved",
        code=4,
    )
    assert "the link is revoked (feed entry 0)" in failed.stderr
    with open_node("default") as node:
        held = node.wallet.held_feed(Identifier.parse(world["authority"]))
        assert held is not None
        assert held.count == 0
