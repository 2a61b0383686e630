"""Review 63q, limits: a forward through a served broker, past what one service message holds.

1. `BrokerClient.forward` refuses a request past a size the broker forwards before sending it
   (`check_forward_size`: body, headers, target; review 63k, limits 2), but not its method,
   which nothing bounds: a method of a million characters (with a body within its limit) made a
   request past MAX_SERVICE_MESSAGE, so the call failed as a channel's (not the broker's
   FORBIDDEN_REQUEST refusal, which the broker in a process gives: no rule allows the method).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.brokers import PAYMENTS, POLICIES, client, hub_bundle, install_bundle, run_broker
from tests.support.nodes import MemNet
from tests.test_review63k_limits import counting_upstream  # noqa: F401 (a fixture)
from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.secrets import HttpRequest


def test_a_forward_whose_method_is_past_a_message_is_refused_typed(
    tmp_path: Path,
    counting_upstream: tuple[str, list[int]],  # noqa: F811
) -> None:
    url, seen = counting_upstream
    config = {
        "scopes": ["write"],
        "upstream": url,
        "header": "X-Api-Key",
        "rules": [{"methods": ["POST"], "path": "/orders"}],
    }
    policies = POLICIES + (
        '@id("orders-api") permit(principal, action == Action::"lease", '
        'resource == Secret::"orders-api");\n'
    )

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        await install_bundle(net.hub, hub_bundle(net.hub, revision=2, policies=policies))
        desk = await net.node("desk")
        desk.node.identities.create(now=net.clock.now(), name="agent")
        await desk.enroll(net.ticket(**{"agents.team": "support"}), "agent")
        agent = client(desk, "agent")
        issued = await agent.issue("orders-api")
        over = HttpRequest("P" * limits.MAX_SERVICE_MESSAGE, "/orders")
        with pytest.raises(SecretError) as refused:
            await agent.forward(issued.lease_id, over)
        assert refused.value.reason is SecretFailure.FORBIDDEN_REQUEST
        assert seen == []

    run_broker(
        test,
        tmp_path,
        secrets={
            "payments": ("token", PAYMENTS, b""),
            "orders-api": ("http-inject", config, b"k" * 16),
        },
    )
