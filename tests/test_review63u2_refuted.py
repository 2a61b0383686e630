"""Review 63u2: attacks on the merged 63u fixes (revocation 1, refresh 2, docs 3, relay 3)
that did not work.

1. relay 3: the relay service's feed hook left registered once the service closed (a node
   served again on the same handle would hear feeds twice, into a stopped service): `close`
   removes it, and a feed installed afterwards schedules nothing.
2. relay 3: a feed installed from a worker thread after the service's loop closed (a runtime
   whose `asyncio.run` ended while a sync of another thread finished): the hook swallows the
   closed loop's RuntimeError, so `set_feed` does not fail and the hooks after it (the
   broker's lease revocation) still run.
3. relay 3: the hook registered once per service (never twice for one RelayService), and the
   re-check it schedules runs on the service's own loop, not on the installing thread.
4. docs 3: `Node.feed` on a closed handle refuses (StorageError), as every other Node method
   does, rather than reading the store it closed; a wrong type is an ArgumentError.
5. refresh 2: the "revoked" wording needs the node's own verified feed to say so: a peer's
   error text claiming NOT_A_MEMBER (RemoteError) says no "revoked" when that feed revokes
   nothing; no feed held, or another refusal, is the answer as it was; a store that fails
   reading the node's identity is the answer as it was, never a crash of the refresh.
6. revocation 1: the hosting node's daemon hung (its control request times out) or its
   socket failing: `tell_hosting_node` logs, the revocation stands and is answered; the
   other daemons are still told.
7. revocation 1: the revoking process killed after the authority's store took the revocation
   and before the hosting node's runtime re-read it (nor answered): the hub's next start
   holds it, its channels refusing the revoked member (the store is the truth; the refresh
   only brings it forward).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import troth
import troth.node.daemon
import troth.node.traces
from tests.support.nodes import HUB, MemNet, run_memnet
from troth.errors import (
    ArgumentError,
    AuthorityError,
    AuthorityFailure,
    NotFound,
    RemoteError,
    StorageError,
)
from troth.node.membership import _refusal
from troth.node.services.relay import RelayService


def _relay(runtime: Any) -> RelayService:
    service = runtime.host.services["relay"]
    assert isinstance(service, RelayService)
    return service


def test_the_relay_hook_goes_with_its_service(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        relay = _relay(hub)
        hooks = hub.trust.feed_hooks
        assert hooks.count(relay._feed_installed) == 1
        ran: list[int] = []
        relay._recheck = lambda now: ran.append(now)  # type: ignore[method-assign]
        acme = net.authority.identifier
        feed = hub.trust.feeds[acme]
        await relay.close()
        assert relay._feed_installed not in hooks
        hub.trust.set_feed(acme, feed)
        await asyncio.sleep(0)
        assert ran == []
        hooks.append(relay._feed_installed)  # (as it was: the net's own stop closes it again)

    run_memnet(test, tmp_path / "home", budget=30)


def test_a_feed_installed_after_the_relays_loop_closed_fails_nothing(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        relay = _relay(hub)
        closed = asyncio.new_event_loop()
        closed.close()
        kept = relay._loop
        relay._loop = closed
        after: list[object] = []
        hub.trust.feed_hooks.append(after.append)
        acme = net.authority.identifier
        feed = hub.trust.feeds[acme]
        try:
            hub.trust.set_feed(acme, feed)  # no RuntimeError
        finally:
            relay._loop = kept
            hub.trust.feed_hooks.remove(after.append)
        assert after == [feed]  # the hooks after the relay's ran

    run_memnet(test, tmp_path / "home", budget=30)


def test_the_relay_recheck_runs_on_its_loop_not_the_installing_thread(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        b = await net.member("b", **{"troth.relay": "b"})
        await b.create_relay("b", HUB)
        relay = _relay(hub)
        threads: list[int] = []
        recheck = relay._recheck

        def spy(now: int) -> None:
            threads.append(threading.get_ident())
            recheck(now)

        relay._recheck = spy  # type: ignore[method-assign]
        acme = net.authority.identifier
        feed = hub.trust.feeds[acme]
        await asyncio.to_thread(hub.trust.set_feed, acme, feed)
        await asyncio.sleep(0)
        assert threads == [threading.get_ident()]
        assert relay.status()["b"]["state"] == "up"  # (not revoked: still forwards)

    run_memnet(test, tmp_path / "home", budget=30)


def test_node_feed_on_a_closed_handle_refuses() -> None:
    with troth.Node.open("hub") as hub:
        acme = hub.create_authority()
        assert hub.feed(acme.identifier) is not None
        with pytest.raises(ArgumentError):
            hub.feed(5)  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="closed"):
        hub.feed(acme.identifier)
    with pytest.raises(StorageError, match="closed"):
        hub.feed(str(acme.identifier))


def _runtime(feed: Any, *, identity: Any = None) -> Any:
    def find(name: str) -> Any:
        if identity is None:
            raise NotFound(f"no identity {name!r}")
        return identity

    wallet = SimpleNamespace(identities=SimpleNamespace(find=find))
    return SimpleNamespace(
        trust=SimpleNamespace(feeds={} if feed is None else {AUTHORITY: feed}),
        node=SimpleNamespace(wallet=wallet),
        name="n",
    )


AUTHORITY = troth.Identifier(bytes(range(32)))
ME = troth.Identifier(bytes(range(1, 33)))
NO_MEMBER = AuthorityError(AuthorityFailure.NOT_A_MEMBER, "not a member")


class _Feed:
    def identity_revoked(self, digest: bytes) -> bool:
        return False

    def credential_revoked(self, digest: bytes) -> bool:
        return False


def test_a_refusal_says_revoked_only_on_the_nodes_own_feed() -> None:
    me = SimpleNamespace(identifier=ME.digest)
    feed = _Feed()
    spoofed = RemoteError(f"AuthorityError: {AuthorityFailure.NOT_A_MEMBER.value} (you left)")
    for exc in (NO_MEMBER, spoofed):
        said = _refusal(_runtime(feed, identity=me), AUTHORITY, exc, [])
        assert said == str(exc)
        assert "revoked" not in said
    # no feed held: the answer as it was
    assert _refusal(_runtime(None, identity=me), AUTHORITY, NO_MEMBER, []) == str(NO_MEMBER)
    # another refusal: as it was, even when the feed revokes the identity
    revoking = SimpleNamespace(identity_revoked=lambda digest: True)
    other = AuthorityError(AuthorityFailure.QUOTA_EXCEEDED, "too many")
    assert _refusal(_runtime(revoking, identity=me), AUTHORITY, other, []) == str(other)
    # the node's identity not readable: the answer as it was, no crash
    assert _refusal(_runtime(revoking), AUTHORITY, NO_MEMBER, []) == str(NO_MEMBER)


@pytest.mark.parametrize("failure", [TimeoutError, ConnectionRefusedError])
def test_a_hung_hosting_daemon_fails_no_revocation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, failure: type[OSError]
) -> None:
    told: list[str] = []

    def status(home: object, name: str) -> dict[str, object]:
        return {"name": name, "running": True}

    def control(home: object, name: str, status: object, op: str, arguments: object) -> None:
        told.append(name)
        if name == "hub":
            raise failure("the node did not answer feed.sync within 30 s")

    with troth.Node.open("hub") as hub, troth.Node.open("orders") as orders:
        acme = hub.create_authority()
        member = orders.enroll(acme.ticket({"orders.access": "read"}))
        monkeypatch.setattr(troth.node.daemon, "node_status", status)
        monkeypatch.setattr(troth.node.traces, "_control", control)
        with caplog.at_level(logging.WARNING, logger="troth.node"):
            seq = acme.revoke(member, reason="left")
        assert seq >= 0
        feed = hub.feed(acme.identifier)
        assert feed is not None
        assert feed.count >= 1
    assert told[0] == "hub"
    assert "orders" in told
    assert any("was not told" in r.getMessage() for r in caplog.records)


def test_a_revocation_whose_process_died_before_the_refresh_holds_at_the_next_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The revoking process dies after the authority's store took the revocation, before the
    hosting node's runtime re-read it (`sync_runtimes_here` never ran) and before it answered:
    the hub's next start holds it (its channels refuse the revoked member)."""
    import troth._api.network
    import troth.node.shown_identity
    import troth.node.upkeep

    monkeypatch.setattr(troth.node.upkeep, "HOSTED_FEED_POLL", 3600.0)
    # the member shows its credential even revoked (as a thief's node would)
    monkeypatch.setattr(troth.node.shown_identity, "revokes_a_link", lambda *args: False)
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        member = agents.enroll(acme.ticket({"orders.access": "read"}))

        def died(host: object, *, now: int) -> None:
            raise KeyboardInterrupt  # (the process killed: nothing after the store's commit)

        async def main() -> None:
            async with hub.serve(listen=("127.0.0.1", 0)) as running:
                async with agents.connect(running.address, expect=None) as channel:
                    assert await channel.call("echo", "echo", "hi") == "hi"
                monkeypatch.setattr(troth._api.network, "sync_runtimes_here", died)
                with pytest.raises(KeyboardInterrupt):
                    acme.revoke(member, reason="left")
            async with hub.serve(listen=("127.0.0.1", 0)) as running:
                with pytest.raises((troth.ChannelError, troth.Denied)) as refused:
                    async with agents.connect(running.address, expect=None) as channel:
                        await channel.call("echo", "echo", "hi")
                assert "revoked" in str(refused.value)

        asyncio.run(main())
