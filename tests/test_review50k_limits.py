"""Review 50k, limits 1: the node's timing limits MAINTENANCE_SECONDS and HOSTED_FEED_POLL are
named in `troth.limits` (the one place hard limits are named), and troth.node.upkeep (and
troth.node.runtime, which tests and callers read them from) take the very objects."""

from __future__ import annotations

from troth import limits
from troth.node import runtime, upkeep


def test_the_maintenance_round_and_hosted_feed_poll_are_troth_limits() -> None:
    assert limits.MAINTENANCE_SECONDS == 30
    assert limits.HOSTED_FEED_POLL == 1.0
    assert upkeep.MAINTENANCE_SECONDS is limits.MAINTENANCE_SECONDS
    assert runtime.MAINTENANCE_SECONDS is limits.MAINTENANCE_SECONDS
    assert upkeep.HOSTED_FEED_POLL is limits.HOSTED_FEED_POLL
    assert runtime.HOSTED_FEED_POLL is limits.HOSTED_FEED_POLL
    # the longest wait of a mark's sync is the maintenance round's period
    assert limits.DUE_RETRY_MAX == limits.MAINTENANCE_SECONDS
