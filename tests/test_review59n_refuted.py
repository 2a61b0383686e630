"""Review 59n, refuted: attacks on review 59g's issue path (an engine with reads_upstream =
False is handed an empty upstream value) and review 59h's room kept for the answers given at
once (troth.integrations.mcp.room) that did not work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import NOW
from tests.support.leases import CANARY, make_world, open_broker
from tests.test_review47m_mcp_cancel import Blocking, outcomes
from tests.test_review58f_mcp import _settle, offer, pinged, served
from tests.test_review58j_refuted import _answers
from tests.test_review59h_mcp import Client, _call, _long_id, _ping
from tests.test_secrets_tokens import CONFIG
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp.channel import _WAITING
from troth.secrets import AllowListPolicy
from troth.secrets.engine import Grant, LocalEngine
from troth.secrets.engines.http_inject import HttpInjectEngine
from troth.secrets.lease import LeaseCredential, SecretValue

INJECT = {
    "scopes": ["orders:read"],
    "ttl": 120,
    "max_ttl": 600,
    "upstream": "https://api.example.com",
    "header": "Authorization",
    "rules": [{"methods": ["GET"], "path": "/v1/orders/*", "scope": "orders:read"}],
}


class _Reading(HttpInjectEngine):
    """An operator's engine that reads the upstream value as it issues (no flag declared)."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: list[bytes] = []

    def issue(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        self.handed.append(upstream.reveal())
        return LeaseCredential({"secret": grant.spec.name}, grant.handle.digest)


class _DuckTyped(_Reading):
    """The same, standing for an engine not derived from LocalEngine (no such attribute)."""

    def __getattribute__(self, name: str) -> Any:
        if name == "reads_upstream":
            raise AttributeError(name)
        return super().__getattribute__(name)


@pytest.mark.parametrize("engine", [_Reading, _DuckTyped])
def test_an_engine_that_declares_nothing_is_handed_the_stored_value(
    tmp_path: Path, engine: type[_Reading]
) -> None:
    """An engine put in place of a kind (an operator's own, a subclass), declaring no
    `reads_upstream`, is handed the value stored, as re-stored from a token secret."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    reading = broker.engines[HttpInjectEngine.kind] = engine()
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    broker.issue(world.credential_a(), "payments", now=NOW)
    broker.put_secret("payments", HttpInjectEngine.kind, INJECT, CANARY.encode(), now=NOW)
    broker.issue(world.credential_a(), "payments", now=NOW)
    assert reading.handed == [CANARY.encode()]
    assert isinstance(broker.engines["token"], LocalEngine)
    assert HttpInjectEngine.reads_upstream is True  # its forwards look the value up as sent
    broker.close()


FULL = _WAITING - limits.MCP_AT_ONCE_FRAMES + 1
"""Pings whose answers, unread, leave a call no room (the first on its way out, uncounted)."""


async def _call_behind_pings(client: Client, inbound: Any) -> None:
    """`client` stops reading, pings FULL times, then asks a call (id 1000) of the upstream."""
    client.reading = False
    assert len(await pinged(inbound, FULL)) == FULL
    await _settle()
    assert offer(inbound, _call(1000, "lookup_order", order_id="o1"))


def test_pings_that_use_up_the_room_kept_make_a_call_wait_until_the_client_reads() -> None:
    """A client that does not read and sends pings until only the frames kept for answers
    given at once are free: its call waits, undecided (never at the upstream), rather than
    take that room; once the client reads, the call runs and is answered, the session on."""
    upstream, client, recorder = Blocking(), Client(), ListRecorder()
    seen: list[Any] = []

    async def main() -> None:
        async with served(client.way_back, upstream, recorder, client.release) as (
            inbound,
            ending,
        ):
            await _call_behind_pings(client, inbound)
            for _ in range(4):
                await _settle()
            seen.append((upstream.started.is_set(), len(recorder.records)))
            client.reading = True
            client.release.set()
            with anyio.fail_after(5):
                await upstream.started.wait()
            upstream.release.set()
            with anyio.fail_after(5):
                while 1000 not in [a.get("id") for a in _answers(client.frames)]:
                    await anyio.sleep(0.01)
            seen.append(list(ending))

    anyio.run(main)
    assert seen == [(False, 0), []]
    assert len(recorder.records) == 1


def test_pings_past_the_room_kept_end_the_session_a_call_waiting() -> None:
    """The same client goes on pinging with its call waiting for room: the session ends (as
    fallen behind), the waiting call holding nothing up."""
    upstream, client, recorder = Blocking(), Client(), ListRecorder()
    ended: list[bool] = []

    async def main() -> None:
        async with served(client.way_back, upstream, recorder, client.release) as (
            inbound,
            ending,
        ):
            await _call_behind_pings(client, inbound)
            await pinged(inbound, 2 * limits.MCP_AT_ONCE_FRAMES)
            client.release.set()  # the client reads: its end frame goes out (or the call runs)
            with anyio.fail_after(5):
                while not ending:
                    await anyio.sleep(0.01)
            ended.extend(ending)

    anyio.run(main)
    assert ended == [True]
    assert not upstream.started.is_set()
    assert recorder.records == []


def test_a_call_whose_id_fills_its_frame_is_told_and_recorded_unanswered() -> None:
    """Review 59h, mcp 2 from the trace's side: a tools/call whose id fills its frame runs
    (allowed); the gate's error in place of its result is over a frame too, and the channel's
    shorter error goes back in its place: the client is told, the call recorded as not answered
    (never served), the session on."""
    client, recorder = Client(), ListRecorder()
    ended: list[bool] = []

    async def main() -> None:
        async with served(client.way_back, Blocking(), recorder, client.release) as (
            inbound,
            ending,
        ):
            assert offer(inbound, _long_id(_call(1, "refund", order_id="o1", amount=1)))
            with anyio.fail_after(5):
                while len(client.frames) < 2:
                    await anyio.sleep(0.01)
            await client.asked(inbound, _ping(2))
            ended.extend(ending)

    anyio.run(main)
    assert ended == []
    told = _answers(client.frames)[1]
    assert told["error"]["message"] == f"the message is over the {limits.MAX_MCP_FRAME}-byte limit"
    assert [a["id"] for a in _answers(client.frames)][::2] == [0, 2]
    assert outcomes(recorder) == [("refund", "allowed"), ("refund", "unanswered")]
