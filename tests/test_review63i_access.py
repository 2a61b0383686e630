"""Review 63i, access: the node's one decision point (troth.node.access) and the service host
(troth.node.services.host) attacked from the callers' side.

access 1: a caller refused every method of a service learned the names of its methods by
  calling made-up ones: a method the service has was answered `denied`, one it has not
  `failed` ("service echo has no method 'x'"), before the caller was decided at all. A
  stranger on a node that admits strangers (one hosting an authority or a broker: anyone may
  enroll) listed the methods of the operator's own services by name. Now a method the service
  does not have is answered "no method" only to a caller the decision point allows some
  method of that service; any other caller gets the denial a method of it gets, and a source
  that is no verified caller is refused first (`ServiceHost._no_method`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.errors import Denied, RemoteError
from troth.node.services import call, service_address


async def _strangers_channel(net: MemNet) -> tuple[Any, Any]:
    """A stranger's node and its channel to the hub (admitted: anyone may enroll there)."""
    mallory = await net.node("mallory")
    authority = net.authority.identifier
    end = await mallory.channel_to(
        route(HUB), also_trust=frozenset({authority}), expect=authority, claimed=True
    )
    return mallory, end


def test_a_stranger_cannot_tell_a_services_methods_from_made_up_names(tmp_path: Path) -> None:
    """access 1: over the channel the hub admits it to (to enroll), a stranger calls echo's
    `discard` and a name echo has not: both are refused alike, with the same reasons; a
    member calling the made-up name is still told the service has no such method."""

    async def test(net: MemNet) -> None:
        mallory, end = await _strangers_channel(net)
        echo = (end.enc, service_address("echo"))
        refusals = []
        for method in ("discard", "no-such-method"):
            with pytest.raises((Denied, RemoteError)) as refused:
                await call(mallory.router, echo, method, "x", timeout=5)
            refusals.append(refused.value)
        known, made_up = refusals
        assert isinstance(known, Denied), known
        assert isinstance(made_up, Denied), made_up
        assert made_up.reasons == known.reasons
        assert "no-such-method" not in str(made_up)
        alice = await net.member("alice")
        mine = await alice.channel_to(route(HUB))
        with pytest.raises(RemoteError, match="has no method 'no-such-method'"):
            await call(alice.router, (mine.enc, service_address("echo")), "no-such-method", 1)

    run_memnet(test, tmp_path)
