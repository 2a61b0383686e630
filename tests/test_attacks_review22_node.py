"""Review 22's attacks on the newest node code (shares of node-wide pools, to_the_end, the
policy push, the storage thread):

2. a request cancelled while it waits for the storage thread is not taken off the thread's
   queue: `StoreWorker` is a ThreadPoolExecutor, and cancelling a future there only marks it —
   the work item (the call and its arguments) stays queued until the thread reaches it. While
   the storage thread is busy (a trace batch, a sweep, a checkpoint), a member that pushes a
   1 MiB argument as a policy bundle (`push` hands the raw bytes to the thread before anything
   reads them), closes its channel and does it again piles megabyte after megabyte in the
   node's memory: closing the channel frees the request's place in every bound (per member,
   per connection, node-wide), but not what it queued. docs/protocols.md says "one it had not
   taken up is dropped with its request, so pushing and closing queues nothing", and
   `StoreWorker.submit` "cancelling it before it started takes it off the queue". The same
   holds for every request whose handler awaits `worker.run` (a trace submission's batch);
5. a co-trusted authority's bundles pile up in the node's memory: `distribute` spawns one push
   task per subscriber for every new bundle of its authority, and the tasks wait for one of
   the MAX_POLICY_PUSHES (16) places, each holding its bundle (up to 768 KiB), however many
   newer ones follow. Globex signs revisions for free and any of its members pushes them; one
   of its members subscribed to them that reads nothing holds each push for the call timeout
   (10 s; 16 at a time: 1.6 bundles a second go), so every revision pushed faster than that
   stays in memory — without bound — and acme's pushes wait behind them (its members learn
   of its bundles only at their next pull);
6. one authority's refresh failing stops the node's refresh of every credential after it:
   `refresh_credentials` calls `_refresh_from` for each authority in turn with no error
   caught per authority (unlike `refresh_feeds`), so a co-trusted authority whose node is
   down, refuses, or answers too late — every round: it picks its credentials' lifetime, so
   they always need refreshing — leaves the credentials of the authorities enrolled after it
   to expire; the node then shows no acme credential and every acme peer refuses it.

Each test asserts the secure behaviour (each was a strict xfail until its fix).
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only):
# - read: troth.node.shares: a place counts against the roots of the caller's verified chains
#   only (a stranger, an anchor, a local caller: STRANGERS); no peer can count against an
#   authority that did not issue (or whose member did not delegate) a chain to it; `room`
#   refuses at 2 x bound whatever `trusted()` says, so no pool passes twice its bound; take and
#   release pair up (Admission: the lane kept with the task's done callback; trace: `_slot`'s
#   finally; MCP sessions, relay names, policy subscriptions: counted from their tables each
#   time, so nothing can leak). A local caller never takes a running-request place (source
#   None runs inline); in the trace pool STRANGERS is shared by local callers and anchors only
#   (MembersOnly), one anchor per authority and 2 submissions each: no stranger crowds it.
# - read: relay `create` under to_the_end: the name is in memory before the save starts (no
#   await between the check and the write); one save per name that changes owner, bounded by
#   the names' quota and grace; the snapshot is taken when the save task starts, in order.
# - read: feedsync: the bound covers the page calls and the storage steps; pages are verified
#   before stored, the generator holds no transaction across a yield, an abandoned one is
#   harmless. The channel open before it (10 s handshake) and the policy pull (10 s call) are
#   outside it: a hostile co-trusted authority costs a round about 60 + 30 s, within
#   FEED_STALENESS for one such authority (by that arithmetic three or more would pass it;
#   not run).
# - ran: on PostgreSQL 15 a lease's session cannot GRANT its own role to a template (must have
#   admin option): check_templates cannot be poisoned that way.
# - read: the admin's queries read catalogs only and resolve in pg_catalog first; functions and
#   operators are never looked up in pg_temp; DROP OWNED and REVOKE run no user code (event
#   triggers need a superuser).
# - read: identity rotation without change rows: a cut history always has rows from change 0
#   (`_archive` from `first_index` when none exist); `history_window` is read only across a
#   gap, which only a cut history makes; `attested_by_store` / `window_around` fall back to the
#   history row; a database the old code wrote has change_rows > 0 after its first rotation.
# - read: the outbox lets one member's allowed operations fill it (main has the test, bce672a).

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import re
import threading
from concurrent.futures.thread import _WorkItem
from pathlib import Path

import pytest

from tests.support.gates import TOOLS
from tests.support.nodes import HUB, MemNet, globex_over_tcp, route, run_memnet
from tests.test_attacks_review21_node import _never_drain
from tests.test_attacks_review21_shares import _ask, _globex_member
from tests.test_gates_distribution import READ, revision_of, until
from troth import limits
from troth.errors import TrothError
from troth.gates import create_bundle
from troth.node.runtime import NodeRuntime
from troth.node.services import call
from troth.node.services.policy import POLICY, PolicyService

# -- 2. cancelled requests keep what they queued on the storage thread ---------------------------

CYCLES = 4  # pushes, each on a channel of its own closed while it waits
JUNK = b"\0" * (512 * 1024)  # what a member pushes as a bundle: read only on the storage thread


def _held_pushes() -> int:
    """Calls held for the storage thread with a pushed JUNK argument: the `functools.partial`
    `StoreWorker.submit` queues (and a thread pool's work item, what an executor would hold),
    found among every object the collector tracks. The test sees each push held before its
    channel closes, so this cannot be blind to one."""
    return sum(
        1
        for item in gc.get_objects()
        if isinstance(item, functools.partial | _WorkItem)
        and any(
            isinstance(a, bytes) and a == JUNK
            for a in getattr(item, "args", ()) + getattr(getattr(item, "fn", None), "args", ())
        )
    )


def _hub(net: MemNet) -> NodeRuntime:
    assert net.hub is not None
    return net.hub


def test_pushes_cancelled_while_the_storage_thread_is_busy_queue_nothing(tmp_path: Path) -> None:
    """The hub's storage thread is busy. A member pushes a 512 KiB argument to the policy
    service and closes its channel while the push waits for the thread, CYCLES times. Each push
    is cancelled (its request gone from the hub); none may stay queued on the storage thread."""

    async def test(net: MemNet) -> None:
        hub = _hub(net)
        pusher = await net.member("pusher")
        gate = threading.Event()
        busy = asyncio.ensure_future(hub.worker.run(gate.wait, 30))  # the storage thread
        try:
            for _ in range(CYCLES):
                end = await pusher.channel_to(route(HUB))
                pushing = asyncio.ensure_future(
                    call(pusher.router, (end.enc, POLICY), "push", [JUNK], timeout=10)
                )
                while not _held_pushes():  # the push waits for the thread
                    await asyncio.sleep(0.01)
                # the hub's end of this channel (the pusher's link reconnects meanwhile, over a
                # channel of its own whose sync may wait on the thread too): one handshake hash
                (theirs,) = [
                    e
                    for e in hub.channels.ends.values()
                    if e.channel.handshake_hash == end.channel.handshake_hash
                ]
                await end.close()
                while theirs.requests:  # the hub cancelled the push: its request is gone
                    await asyncio.sleep(0.01)
                # refused naming this channel: closed, or its worker gone
                closed, worker = re.escape(end.name), re.escape(str(end.enc))
                gone = rf"{closed} closed|no worker or transport for {worker}"
                with pytest.raises(TrothError, match=gone):
                    await pushing
            # what still runs is the requests of channels still open (the link's, if its
            # reconnect is waiting on the thread): none holds a place for a gone push
            assert hub.host.running == sum(
                len(e.requests) for e in hub.channels.ends.values() if not e.forgotten
            )
            assert _held_pushes() == 0  # nothing of the gone pushes is held
        finally:
            gate.set()
            await busy

    run_memnet(test, tmp_path / "home")


# -- 5. a co-trusted authority's bundles pile up waiting to be pushed -------------------------


def test_a_co_trusted_authoritys_revisions_do_not_pile_up_behind_a_silent_subscriber(
    tmp_path: Path,
) -> None:
    """The hub trusts acme and globex. A globex member subscribes to globex's bundles and reads
    nothing more; another pushes MAX_POLICY_PUSHES + 8 revisions of globex's bundle, each
    signed by globex. The hub takes them all; what it keeps waiting to push to the subscriber
    stays within MAX_POLICY_PUSHES (a subscriber needs only the newest)."""
    revisions = limits.MAX_POLICY_PUSHES + 8

    async def test(net: MemNet) -> None:
        hub = _hub(net)
        globex_node, globex, ticket = await globex_over_tcp(net)
        await hub.enroll(ticket, "hub")
        service = hub.host.services["policy"]
        assert isinstance(service, PolicyService)
        authority = globex.identifier
        silent = await _globex_member(net, globex, "silent")
        await _ask(silent, POLICY, "get", [authority.digest, 0])
        assert (net.identifier(silent), authority) in service.subscriptions
        stuck = _never_drain(hub, {net.identifier(silent)})
        pusher = await _globex_member(net, globex, "pusher")
        try:
            for revision in range(1, revisions + 1):
                now = net.clock.now()
                data = create_bundle(
                    globex_node.node.identities.signer("globex", now=now),
                    authority=authority,
                    policies=READ,
                    schema="",
                    tools=TOOLS,
                    services={"orders": ["read"]},
                    revision=revision,
                    now=now,
                    ttl=3600,
                )
                await _ask(pusher, POLICY, "push", [data])
            await until(lambda: revision_of(hub, authority) == revisions)
            assert len(service._tasks) <= limits.MAX_POLICY_PUSHES
        finally:
            stuck.set()

    run_memnet(test, tmp_path / "home", budget=120)


# -- 6. one authority's failed refresh stops the refresh of the others ----------------------------


def test_an_unreachable_authority_holds_back_no_other_authoritys_refresh(tmp_path: Path) -> None:
    """A node enrolled with globex, then with acme (the hub). Globex's node stops. Both
    credentials are due (a refresh margin past their expiry): the maintenance round must
    still refresh the acme credential."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        globex_node, globex, ticket = await globex_over_tcp(net)
        await agent.enroll(ticket, "agent")
        await agent.enroll(net.ticket(), "agent")
        acme = net.authority.identifier
        assert next(iter(agent.trust.routes)) == globex.identifier  # globex's is refreshed first
        await globex_node.stop()
        net.runtimes.remove(globex_node)

        def acme_held() -> int:
            return sum(1 for h in agent.node.wallet.held("agent") if h.authority == acme.digest)

        before = acme_held()
        with contextlib.suppress(TrothError):
            await agent.refresh_credentials(margin=10**9)
        assert acme_held() == before + 1

    run_memnet(test, tmp_path / "home", budget=120)
