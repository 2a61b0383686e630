"""Review 30, links 1: `node status` did not show a link's quick losses (`Link.flaps`, review
28a, links 1): a link a peer keeps closing as soon as it is back is `connected` between two
losses, with 0 failed attempts, and its growing waits came from nowhere a person could see
(docs/protocols.md, "Reconnecting").

Was a strict xfail until `LinkRow` carried `flaps` (its JSON too) and its line for people
said "lost at once N times" when N > 0.
"""

from __future__ import annotations

from tests.test_review28a_links import flap
from troth.node.links import LinkRow, LinkState


def test_status_shows_a_links_quick_losses() -> None:
    _, row = flap(3)
    assert (row.state, row.attempts) == (LinkState.CONNECTED, 0)
    assert row.to_json()["flaps"] == 3
    assert LinkRow.from_json(row.to_json()) == row
    assert "lost at once 3 times" in row.describe()


def test_a_steady_link_says_nothing_of_losses() -> None:
    _, row = flap(0)
    assert row.to_json()["flaps"] == 0
    assert "lost" not in row.describe()
