"""Review 68f, relays: a finding against the relay cut-off of reviews 67m and 67s (the test
failed before its fix).

Relays 1 (low: a revoked owner's name up again until the next round). The host decides a
request as it arrives and runs a handler that waits (`create`) in a task of its own, later: a
feed installed in between (its hook re-decides every relay at once: review 63u, relay 3)
refused the owner and cut it off, and then `create` ran on the decision made before and put
the name up again, forwarding to the revoked owner until the next maintenance round refused
it again (`MAINTENANCE_SECONDS`). An owner sending `create` again and again while its
revocation was on its way had every chance of one request landing in that gap. `create` now
decides the caller again, as a round would, and refuses it (`Denied`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review66f_relays import _not_reached
from troth.errors import Denied
from troth.node.access import AccessRequest, Decision
from troth.node.services.plugin import RequestContext
from troth.node.services.relay import NOT_FOUND


def test_a_create_decided_before_a_revocation_and_run_after_it_is_refused(
    tmp_path: Path,
) -> None:
    """Relays 1: b's `create b` decided allowed as it arrived; the revocation is installed
    before its task runs (the round it triggers refuses b and cuts it off); then the task
    runs: refused, b's name stays held, and the stranger reaches b neither by its name nor at
    its connection. Before, the name came up again and forwarded to b."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        to_b = (await net.receive()).return_route[0]
        b = net.relay.relays["b"]
        end = net.hub.channels.find(b.channel)
        assert end is not None
        assert end.caller is not None
        now = net.relay.clock()
        decided = RequestContext(end.caller, (), Decision(True, ()), now)  # as it arrived

        def decide(request: AccessRequest) -> Decision:
            return Decision(False, ("revoked",))

        net.relay.decide = decide
        net.relay._feed_grew(b.owner, 1, b"revoked")  # the feed installed: decided at once
        assert net.relay.relays["b"].refused
        with pytest.raises(Denied, match="revoked"):
            await net.relay.create("b", decided)
        assert net.relay.relays["b"].lost_at is not None
        assert net.relay.status()["b"]["state"].startswith("held")
        await _not_reached(net, to_b)
        not_found = net.relay.not_found
        net.send("/relay/b/service/channels")
        assert bytes((await net.receive()).payload) == NOT_FOUND
        assert net.relay.not_found == not_found + 1

    with_stranger(tmp_path, test)
