"""A node's policy bundles and the policy service (`/service/policy`) that distributes them
(docs/policy.md, "Distribution"; docs/protocols.md, "Policy service").

    push [bundle (bytes)]                  -> {"authority": text, "revision": n, "accepted": bool}
    get  [authority (32 bytes), revision, digest (32 bytes)?]
                                           -> bundle (bytes) newer than `revision`, or of
                                              `revision` with a lower SHA-256 than `digest`,
                                              unexpired, or null (revision 0: any bundle
                                              held in force)

Both are open to members (and trust anchors), and each authority's bundles are its own
members' (docs/policy.md, "Distribution"; review 36f, policy 1-3): a caller gets, is pushed and
may push the bundles of the authorities it speaks for only — those at the roots of its
credentials without caveats (its delegates' chains included: the `MembersOnly` reading), itself
when it is a trust anchor, every one for a local caller. A `get` of another authority's bundle
is answered null, as for one the node does not hold (no oracle), and subscribes nothing; a
`push` of one is refused (`Denied`) before anything held is looked at. A bundle is
self-authenticating (its signature, its signer's chain and the held feed decide,
`BundleStore.accept`), so the rule only bounds who can make the node verify one and who reads
it. A `get` also subscribes the channel it came on to that authority's later bundles: a node
that activates a new bundle (a higher revision, or one replacing a bundle no longer in force)
pushes it once to each subscriber over its open channel, the subscriber's standing checked
again first (at most MAX_POLICY_SUBSCRIBERS subscriptions, past it only within the
subscriber's authority's share, troth.node.shares; one per peer and authority this node
trusts, so one peer holds at most one per trust anchor; MAX_POLICY_PUSHES in flight). A bundle
installed on a node that does not host its authority is pushed on to that authority's node
(`PolicyService.upstream`; review 54h, bundles 3), and a node asked for a revision above
the one it holds asks the requester back for it (`PolicyService._ask_back`; review 54h,
bundles 8). A node
pulls from each trusted authority's node when it starts and on every maintenance round, so a
missed push costs one round; a node whose bundle is no longer in force for good (its signer
revoked or superseded) pulls with revision 0, so a replacement of any revision reaches it, and
a node whose bundle has expired with the revision below its own, so the bundle of its revision
still in force (or a newer one) reaches it, whatever its digest (review 43b, bundles 3); a node
never answers a bundle expired at its clock; it takes from that node a bundle of the authority
it asked for only. Otherwise a node pulls with the digest of the bundle it holds: of two
different bundles of one revision the lower digest wins on every node (`BundleStore.accept`),
so the node answers its own when it is that one, and the fleet converges (review 41d, bundles
2).

`NodePolicies` (troth.node.services.node_policies, with the feeds and credential sources
beside it) is what every gate of a node decides with (the runtime's service
requests, the MCP gates, `troth policy show`): the node's `BundleStore` over its own table,
trusting the node's anchors, and the `DecisionPoint` on the feeds held now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from troth import limits
from troth.authority.core import ROLE
from troth.channel import ChannelState, VerifiedPeer
from troth.clock import Clock
from troth.credentials import Attributes
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import (
    DecodeError,
    Denied,
    NotFound,
    PolicyError,
    PolicyFailure,
    RemoteError,
    StorageError,
    TrothError,
    cut_text,
)
from troth.gates import (
    POLICY_ADMIN,
    SqliteBundleTable,
    VerifiedBundle,
    bundle_claims,
    create_bundle,
    default_bundle_ttl,
    resign_bundle,
)
from troth.identity import Identifier
from troth.node.access import Caller, MembersOnly, PeerCaller, Standing, member_accounts
from troth.node.authorities import home_of, is_local
from troth.node.node import Node, open_node
from troth.node.services.base import Method, RequestContext, call, service_address
from troth.node.services.node_policies import NodeFeeds, NodePolicies
from troth.node.services.policy_hold import SIGNING_HOLD_ENDED, check_may_sign, clear_hold
from troth.node.shares import Shares, authorities_of
from troth.node.worker import StoreWorker
from troth.routing import Route, Router, parse_route


class _ChannelTo(Protocol):
    """An open channel to the node at `route`, refused unless `expect` answers there."""

    def __call__(self, route: Route, *, expect: Identifier | None = None) -> Awaitable[Any]: ...


__all__ = [
    "POLICY",
    "PolicyService",
    "admin_chain",
    "install_bundle",
    "sign_bundle_as",
    "stored_bundles",
]

log = logging.getLogger("troth.node.policy")
_OLD_GET: Final = "get arguments: expected 2 elements"
"""How a node from before review 42b refuses a `get` with a digest (it is asked again without)."""
POLICY: Final = service_address("policy")
_P = PolicyFailure


# -- distribution ---------------------------------------------------------------------------


@dataclass
class _Subscription:
    channel: str
    peer: VerifiedPeer  # who subscribed: its standing is checked again before each push
    sent: bytes = b""  # the digest of the bundle it was last sent (or is pulling)
    authorities: frozenset[bytes] = frozenset()  # whose share it counts in (authorities_of)
    waiting: bytes | None = None  # the newest bundle not pushed yet (one: it replaces the rest)
    pushing: bool = False  # a push task runs for it


@dataclass
class _Pulls:
    """How a node's pulls of an authority's bundles go: when one last succeeded, and since
    when they fail and why (review 54h, bundles 7: only the log said so)."""

    succeeded_at: int | None = None
    failing_since: int | None = None
    error: str | None = None

    def ended(self, now: int, error: str | None) -> None:
        if error is None:
            self.succeeded_at, self.failing_since, self.error = now, None, None
            return
        if self.failing_since is None:
            self.failing_since = now
        self.error = error

    def to_json(self) -> dict[str, Any]:
        return {
            "succeeded_at": self.succeeded_at,
            "failing_since": self.failing_since,
            "error": self.error,
        }


def _bundle_argument(arguments: Any) -> bytes:
    try:
        (data,) = cbor.expect_array(arguments, "push arguments [bundle]", 1)
        return cbor.expect_bytes(data, "bundle")
    except DecodeError as exc:
        raise RemoteError(str(exc)) from None


def _get_arguments(arguments: Any) -> tuple[Identifier, int, bytes | None]:
    """`[authority, revision]` or `[authority, revision, digest]` (the requester's bundle of
    that revision: review 41d, bundles 2)."""
    try:
        value = cbor.expect_array(arguments, "get arguments")
        if len(value) not in (2, 3):
            raise DecodeError("get arguments: expected [authority, revision, digest?]")
        authority = Identifier(cbor.expect_bytes(value[0], "authority", 32))
        digest = None if len(value) == 2 else cbor.expect_bytes(value[2], "digest", 32)
        return authority, cbor.expect_int(value[1], "revision"), digest
    except DecodeError as exc:
        raise RemoteError(str(exc)) from None


def _answers(revision: int, digest: bytes, asked: int, asked_digest: bytes | None) -> bool:
    """Whether a held bundle of `revision` and `digest` answers a `get` of `asked` (and
    `asked_digest`): a higher revision, or the same one of a lower digest (the one every node
    keeps: docs/policy.md, "Bundles on a node")."""
    if revision != asked:
        return revision > asked
    return asked_digest is not None and digest < asked_digest


def _names_answer(revision: int, digest: bytes | None, asked: list[Any]) -> bool:
    """Whether a `get` of `revision` (and `digest`) names a bundle that would answer this
    node's own `get` (`asked`: `PolicyService._asked`), so replace the one it holds
    (`_ask_back`)."""
    if digest is None and revision == asked[1]:
        return False
    return _answers(revision, digest or b"", asked[1], asked[2] if len(asked) > 2 else None)


class PolicyService:
    """Answers pushes and pulls of bundles; pulls from trusted authorities' nodes and pushes
    new revisions to subscribers (module docstring)."""

    name = "policy"
    oneway: Method | None = None

    def __init__(
        self,
        policies: NodePolicies,
        worker: StoreWorker,
        *,
        router: Router,
        routes: Callable[[], Mapping[Identifier, str]],
        hosted: Callable[[], Identifier | None],
        channel_to: _ChannelTo,
        find_channel: Callable[[str], Any],
        clock: Callable[[], int],
        standing: Callable[[VerifiedPeer, int], Standing],
    ) -> None:
        self.policies = policies
        self.standing = standing
        self.worker = worker
        self.router = router
        self.routes = routes
        self.hosted = hosted
        self.channel_to = channel_to
        self.find_channel = find_channel
        self.clock = clock
        self.subscriptions: dict[tuple[Identifier, Identifier], _Subscription] = {}
        self.pulls: dict[Identifier, _Pulls] = {}
        """Per trusted authority, how this node's pulls of its bundles go (`status`)."""
        self.pushed = 0
        self._pushing = asyncio.Semaphore(limits.MAX_POLICY_PUSHES)
        self._tasks: set[asyncio.Task[None]] = set()
        self._asks_back = asyncio.Semaphore(limits.MAX_POLICY_ASKS_BACK)  # not `_pushing`'s
        self._asking: set[tuple[frozenset[bytes], Identifier]] = set()  # `_ask_back`s: per
        # member (its delegates' included) and authority, in flight or waiting
        members = MembersOnly()
        self.methods: Mapping[str, Method] = {
            "push": Method(self.push, members),
            "get": Method(self.get, members),
        }

    def speaks_for(self, caller: Caller, now: int) -> frozenset[Identifier] | None:
        """The authorities whose bundles `caller` may get, be pushed and push (module
        docstring; review 36f, policy 1-3): those at the roots of its credentials without
        caveats that verify now (a member's, a delegate's), itself when it is a trust anchor;
        none when its identity is revoked or superseded; None (every one) for a local
        caller. Read on the event loop: the standing reads memory only."""
        if not isinstance(caller, PeerCaller):
            return None
        return self._speaks_for(caller.peer, now)

    def _speaks_for(self, peer: VerifiedPeer, now: int) -> frozenset[Identifier]:
        standing = self.standing(peer, now)
        if standing.problem is not None:
            return frozenset()
        # the MembersOnly reading: a caveated credential's caveats are Cedar conditions no
        # built-in rule evaluates (fail closed); an anchor speaks for itself
        own = {c.authority for c in standing.credentials if not c.caveats}
        if standing.is_anchor:
            own.add(peer.identifier)
        return frozenset(own)

    async def push(self, arguments: Any, context: RequestContext) -> dict[str, Any]:
        """A bundle pushed to this node: verified, stored, activated, then distributed; only
        a bundle of an authority the caller speaks for (`speaks_for`), another refused
        (`Denied`) before anything held is looked at. A push cancelled (its channel closed)
        before the storage thread took it up leaves nothing to do; once taken up, the bundle
        is stored and distributed all the same (`_accepted`)."""
        data = _bundle_argument(arguments)
        own = self.speaks_for(context.caller, context.now)
        why = f"{self.policies.node.name} refused {context.caller}"
        sender = context.caller.peer.identifier if isinstance(context.caller, PeerCaller) else None
        job = self.worker.submit(self._accept_from, data, own, why, now=context.now, sender=sender)
        loop = asyncio.get_running_loop()
        job.add_done_callback(lambda done: _call_soon(loop, self._accepted, done))
        verified, new = await asyncio.wrap_future(job)
        body = verified.body
        return {"authority": str(body.authority), "revision": body.revision, "accepted": new}

    def _accept_from(
        self,
        data: bytes,
        own: frozenset[Identifier] | None,
        why: str,
        *,
        now: int,
        sender: Identifier | None = None,
    ) -> tuple[VerifiedBundle, bool]:
        """`NodePolicies.accept`, for a bundle of one of the authorities `own` only (None:
        any); else `Denied` (`why`: who refused whom), decided on the bundle's claimed
        authority alone, so the answer says nothing of what the node holds (review 36f,
        policy 3). On the storage thread: it decodes the bundle. The bytes held back (a
        restored copy's) are confirmed by a local caller's, or the authority's node's
        (`sender` None: a pull's answer; or the authority itself), or, on the authority's own
        node, a member's (none knows better); not by another member's copy on a member's node,
        as stale as the restored one or kept on purpose (review 54t, policy 1)."""
        authority = bundle_claims(data).authority
        if own is not None and authority not in own:
            raise Denied(
                (
                    f"{why}: a bundle of {authority} is taken only from its own members, the "
                    "authority itself and local callers",
                )
            )
        confirms = sender is None or sender == authority or authority == self.hosted()
        return self.policies.accept(data, now=now, confirms=confirms)

    async def get(self, arguments: Any, context: RequestContext) -> bytes | None:
        """The bundle of an authority newer than the requester's revision, or of that revision
        with a lower digest than the requester's (or null; a requester whose bundle is no
        longer in force for good asks with revision 0, one whose bundle expired with the
        revision below it: `_asked`); never one expired at `context.now` nor one this
        node's feed says is no longer in force, nor one of an authority the requester does
        not speak for (`speaks_for`: null, as for a bundle the node does not hold, and no
        subscription; review 36f, policy 1-2). The requester's channel is subscribed to
        later bundles. A requester naming a bundle that would replace the one held (a higher
        revision, or the same of a lower digest; any, the one held out of force for good) is
        asked for it in turn (`_ask_back`)."""
        authority, revision, digest = _get_arguments(arguments)
        own = self.speaks_for(context.caller, context.now)
        if own is not None and authority not in own:
            return None
        held = self.policies.offered(authority)  # not one its table replaced (57a, gates 3)
        if held is not None and self.policies.held_back(authority):
            held = None  # a restored copy's: handed to no one, any requester asked back (54p)
        if isinstance(context.caller, PeerCaller):
            self._subscribe(context.caller, authority)
            # what it names would answer this node's own get (66e, askback 1: two held-back
            # nodes, each asking the other for the revision below its own, asked each other
            # back for good); any in force, the held one out of force for good (65w, policy 2)
            if _names_answer(revision, digest, self._asked(authority, now=context.now)):
                self._ask_back(context.caller, authority)
        if held is None:
            return None
        if not _answers(held.bundle.body.revision, held.bundle.digest, revision, digest):
            return None
        if context.now >= held.bundle.body.expires_at or self.policies.replaceable(authority):
            return None  # every node refuses it (expired: review 43b, bundles 3)
        return held.bundle.data

    def _ask_back(self, caller: PeerCaller, authority: Identifier) -> None:
        """Ask `caller`, whose `get` named a bundle of `authority` that would replace the one
        held here (a higher revision, or its revision of a lower digest), for its bundle (a
        `get` over its channel, as `pull` asks; one at a time per member, its delegates'
        included, and authority, of an authority this node trusts only; MAX_POLICY_ASKS_BACK
        in flight, apart from the pushes: review 54o, policy 1): verified and taken as any
        pulled bundle, then distributed. An authority's node restarted on a restored copy of
        its node.db (or one that missed a member's push) held an older bundle than its
        members, who pull from it only, and kept deciding by it, and handing it to new
        members, until one was installed on it again (review 54h, bundles 8)."""
        key = (member_accounts(caller.peer), authority)
        if authority not in self.policies.anchors or key in self._asking:
            return
        self._asking.add(key)
        self._spawn(self._asked_back(caller, key))

    async def _asked_back(
        self, caller: PeerCaller, key: tuple[frozenset[bytes], Identifier]
    ) -> None:
        authority, channel = key[1], caller.channel
        try:
            async with self._asks_back:
                end = self.find_channel(channel)
                if end is None or end.channel.state is not ChannelState.OPEN:
                    return
                asked = self._asked(authority, now=self.clock())
                answer = await call(self.router, (end.enc, POLICY), "get", asked)
                if answer is None:
                    return
                data = cbor.expect_bytes(answer, "bundle")
                why = f"{self.policies.node.name} refused {caller}'s answer"
                verified, fresh = await self.worker.run(
                    self._accept_from,
                    data,
                    frozenset({authority}),
                    why,
                    now=self.clock(),
                    sender=caller.peer.identifier,
                )
            if fresh:
                self.distribute(verified)
        except (TrothError, DecodeError) as exc:
            log.info("policy bundle of %s asked back from %s: %s", authority, caller, exc)
        finally:
            self._asking.discard(key)

    def _accepted(self, job: Future[tuple[VerifiedBundle, bool]]) -> None:
        """A pushed bundle's storage ended (on the loop): distribute it when it is new, whether
        the push is still waiting for its answer or not."""
        if job.cancelled() or job.exception() is not None:
            return
        verified, new = job.result()
        if new:
            self.distribute(verified)

    def _subscribe(self, caller: PeerCaller, authority: Identifier) -> None:
        if authority not in self.policies.anchors:  # else one peer could take every place
            return
        if caller.identifier == authority:  # its own node, asking back (`_ask_back`): pushed
            return  # each bundle would come back to it from every member it asked
        key = (caller.identifier, authority)
        found = self.subscriptions.get(key)
        if found is not None:
            found.channel, found.peer = caller.channel, caller.peer
            return
        authorities = authorities_of(caller)
        held = (subscription.authorities for subscription in self.subscriptions.values())
        shares = Shares.counted(lambda: len(self.policies.anchors), held)
        if shares.room(authorities, limits.MAX_POLICY_SUBSCRIBERS):
            bundle = self.policies.held(authority)
            sent = b"" if bundle is None else bundle.bundle.digest  # it pulls this one now
            self.subscriptions[key] = _Subscription(caller.channel, caller.peer, sent, authorities)

    def distribute(self, bundle: VerifiedBundle) -> None:
        """Push `bundle` (one this node just activated: a higher revision, or a replacement
        of a bundle no longer in force) once to each subscriber of its authority (over its
        open channel)."""
        body = bundle.body
        for (peer, authority), subscription in list(self.subscriptions.items()):
            if authority != body.authority or subscription.sent == bundle.digest:
                continue
            subscription.sent = bundle.digest
            subscription.waiting = bundle.data  # a newer bundle replaces one still waiting
            if not subscription.pushing:
                subscription.pushing = True
                self._spawn(self._push_to((peer, authority), subscription))

    async def _push_to(
        self, key: tuple[Identifier, Identifier], subscription: _Subscription
    ) -> None:
        """Push the subscriber's waiting bundle, and the newer one that came meanwhile, until
        none waits: one task and one bundle per subscriber, however many revisions follow
        (review 22, finding 5: a task per revision, each holding its bundle, piled up behind a
        subscriber that reads nothing). A subscriber that no longer speaks for the authority
        (its credential from it revoked or expired since it subscribed) is pushed nothing
        more and its subscription ends (review 36f, policy 4)."""
        try:
            while subscription.waiting is not None:
                async with self._pushing:
                    data, subscription.waiting = subscription.waiting, None
                    if data is None:
                        return
                    end = self.find_channel(subscription.channel)
                    gone = end is None or end.channel.state is not ChannelState.OPEN
                    if gone or key[1] not in self._speaks_for(subscription.peer, self.clock()):
                        # it subscribes again when it pulls; one made since is not this one
                        if self.subscriptions.get(key) is subscription:  # (65w, policy 3)
                            del self.subscriptions[key]
                        return
                    try:
                        await call(self.router, (end.enc, POLICY), "push", [data])
                        self.pushed += 1
                    except TrothError as exc:
                        log.info("policy push to %s: %s", key[0], exc)
        finally:
            subscription.pushing = False

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def installed(self) -> list[dict[str, Any]]:
        """Activate what `troth policy push` stored in this node's table, distribute it, and
        pass it on to its authority's node (`upstream`)."""
        loaded = await self.worker.run(lambda: self.policies.reload(now=self.clock()))
        for bundle in loaded:
            self.distribute(bundle)
            self.upstream(bundle)
        return [bundle.body.to_json() for bundle in loaded]

    def upstream(self, bundle: VerifiedBundle, *, quiet: bool = False) -> None:
        """Push `bundle`, installed on this node, to the node of its authority (unless this
        node hosts it, or that node is on this machine: it reads this node's table only when
        it pulls, which it does not), which distributes it to the fleet: else it stayed on
        this node and its subscribers, the authority's node and the other members deciding
        by the older bundle until it expired (review 54h, bundles 3). A failed push is
        logged (`quiet`: at the debug level only, for a bundle that may be older than the
        one that node holds, at a start whose pull says why that node cannot be reached); the
        bundle reaches the authority's node when it is installed there. A held-back bundle (a
        restored copy's) is passed on to no one: there a member's push confirms its own held-
        back copy (review 65w, policy 1: two restored copies confirmed each other)."""
        authority = bundle.body.authority
        address = self.routes().get(authority)
        if authority == self.hosted() or address is None or is_local(address):
            return
        if self.policies.held_back(authority):
            return
        self._spawn(self._push_upstream(authority, address, bundle.data, quiet))

    async def _push_upstream(
        self, authority: Identifier, address: str, data: bytes, quiet: bool
    ) -> None:
        async with self._pushing:
            try:
                end = await self.channel_to(parse_route(address), expect=authority)
                await call(self.router, (end.enc, POLICY), "push", [data])
                self.pushed += 1
            except TrothError as exc:
                level = logging.DEBUG if quiet else logging.WARNING
                log.log(level, "policy bundle of %s not passed on to its node: %s", authority, exc)

    async def started(self) -> None:
        """At the node's start: pull (`pull`), then pass on to its authority's node each bundle
        held (`upstream`): one installed while the node was stopped was loaded from its table
        at start and passed on nothing (review 54h, bundles 3). The authority's node takes it
        when it is newer (the bundle it holds, or an older one, is a no-op or a refusal)."""
        await self.pull()
        store = self.policies.store
        for active in [] if store is None else store.actives():
            self.upstream(active.bundle, quiet=True)

    async def pull(self) -> list[VerifiedBundle]:
        """Fetch newer bundles from every trusted authority's node (on this machine: from its
        store; else over a secure channel); the new ones are activated and distributed."""
        new: list[VerifiedBundle] = []
        hosted = self.hosted()
        routes = self.routes()
        self.pulls = {a: pulls for a, pulls in self.pulls.items() if a in routes}
        for authority, address in routes.items():
            if authority == hosted:
                continue
            pulls = self.pulls.setdefault(authority, _Pulls())
            started = self.clock()
            asked = self._asked(authority, now=started)
            try:
                if is_local(address):
                    data = await self.worker.run(
                        self._local, authority, address, *asked[1:], now=self.clock()
                    )
                else:
                    end = await self.channel_to(parse_route(address), expect=authority)
                    try:
                        answer = await call(self.router, (end.enc, POLICY), "get", asked)
                    except RemoteError as exc:  # a node from before review 42b: no digest
                        if len(asked) == 2 or _OLD_GET not in str(exc):
                            raise
                        answer = await call(self.router, (end.enc, POLICY), "get", asked[:2])
                    data = None if answer is None else cbor.expect_bytes(answer, "bundle")
                if data is None:
                    pulls.ended(started, None)
                    continue
                # a bundle of the authority asked only: its node speaks for no other here
                why = f"{self.policies.node.name} refused the node of {authority}"
                verified, fresh = await self.worker.run(
                    self._accept_from, data, frozenset({authority}), why, now=self.clock()
                )
            except (TrothError, DecodeError) as exc:
                log.warning("policy bundle of %s: %s", authority, exc)
                pulls.ended(started, cut_text(str(exc), limits.MAX_POLICY_MESSAGE_TEXT))
                continue
            pulls.ended(started, None)
            if fresh:
                self.distribute(verified)
                new.append(verified)
        return new

    def _asked(self, authority: Identifier, *, now: int) -> list[Any]:
        """The arguments of this node's `get` of `authority`'s bundle: revision 0 when none is
        held or the held one is out of force for good (any other one replaces it); the
        revision below the held one's when it has expired at `now` (a bundle of its revision
        or a higher one replaces it, whatever its digest: review 43b, bundles 3; asked as
        "newer than the one below", which every node since the first answers, and a lower
        revision, refused here as a rollback, is not sent); else the held revision and digest
        (one of that revision with a lower digest replaces it: review 41d, bundles 2). A held-
        back bundle (a restored copy's) is asked as an expired one: the same bytes answered
        let it decide (review 54p, rollback 1)."""
        held = self.policies.offered(authority)
        if held is None or self.policies.replaceable(authority):
            return [authority.digest, 0]
        body = held.bundle.body
        if now >= body.expires_at or self.policies.held_back(authority):
            return [authority.digest, body.revision - 1]
        return [authority.digest, body.revision, held.bundle.digest]

    def _local(
        self,
        authority: Identifier,
        address: str,
        revision: int,
        digest: bytes | None = None,
        *,
        now: int,
    ) -> bytes | None:
        """The bundle of `authority` stored by the node on this machine at `address`, as its
        `get` would answer (`_answers`; none expired at `now`)."""
        with open_node(address.partition(":")[2], home=home_of(self.policies.node)) as node:
            table = SqliteBundleTable(node.db)
            stamp = table.stamps().get(authority.digest)
            if stamp is None or not _answers(stamp[0], stamp[1], revision, digest):
                return None
            if authority.digest in table.held_back():  # a restored copy's (review 54p)
                return None
            data = table.load(authority.digest)
        if data is None or now >= bundle_claims(data).expires_at:
            return None
        return data

    async def maintain(self, now: int) -> None:
        """Activate (and distribute) the bundles stored in the node's table since (a `troth
        policy push` that never told this node: killed before it did, or it looked while the
        node was starting; review 34d, crash 1); pull newer bundles; forget subscriptions whose
        channel is gone."""
        for key, subscription in list(self.subscriptions.items()):
            if self.find_channel(subscription.channel) is None:
                del self.subscriptions[key]
        try:
            await self.installed()
        except TrothError as exc:  # the pull goes on
            log.warning("policy bundles stored since: %s", exc)
        await self.pull()

    def status(self) -> dict[str, Any]:
        """The active bundles' revisions, the last same-revision conflict of each authority
        (`conflicts`: two bundles signed at one revision, the lower digest kept), subscribers,
        pushes, and how this node's pulls of each authority's bundles go (`pulls`: when one
        last succeeded; while they fail, since when and why: a bundle that cannot be
        refreshed still decides until it expires)."""
        store = self.policies.store
        actives = [] if store is None else store.actives()
        return {
            "bundles": {str(a.bundle.body.authority): a.bundle.body.revision for a in actives},
            "conflicts": self.policies.conflicts(),
            "subscribers": len(self.subscriptions),
            "pushed": self.pushed,
            "pulls": {str(a): pulls.to_json() for a, pulls in self.pulls.items()},
        }

    async def close(self) -> None:
        """Stop the pushes in flight."""
        for task in list(self._tasks):
            task.cancel()
        # a cancellation of this close goes on to its caller (review 63v, stop 4)
        await asyncio.gather(*self._tasks, return_exceptions=True)


# -- on a node that is not running (the CLI) --------------------------------------------------


def _open_policies(node: Node, clock: Clock) -> NodePolicies:
    feeds = NodeFeeds(node, clock)
    policies = NodePolicies(node, feeds)
    policies.trust(feeds.anchors(), now=clock.now())
    return policies


def install_bundle(home: Path, name: str, data: bytes, *, clock: Clock) -> dict[str, Any]:
    """Verify `data` and install it on node `name` (its table): with the node running, the
    node activates it through its control socket and pushes it to its subscribers. The
    bundle's summary, whether it is new, whether a running node took it up, and whether it
    ended the signing hold of a restore (`clear_hold`: the operator's word that it is the
    fleet's newest)."""
    from troth.node.daemon import control, node_status  # asyncio and the runtime: on use only

    with open_node(name, home=home) as node:
        verified, new = _open_policies(node, clock).accept(data, now=clock.now())
        ended = clear_hold(node.db, verified.body.authority)  # the operator's word (policy_hold)
    running = bool(node_status(home, name)["running"])
    if running:
        try:
            control(home, name, "policy.reload", {})
        except (TrothError, OSError) as exc:  # its socket gone, say (review 49i, lifecycle 6)
            raise StorageError(
                f"the bundle is installed (revision {verified.body.revision}) and the node's store "
                f"holds it, but the running node {name!r} could not be told: {exc} (it takes "
                "it up at its next maintenance round)"
                + (
                    f"; {SIGNING_HOLD_ENDED}" if ended else ""
                )  # said on this path too (review 67d, hold 2)
            ) from exc
    return {**verified.to_json(), "new": new, "node_running": running, "signing_hold_ended": ended}


def held_authority_bundle(home: Path, name: str) -> tuple[Identifier, bytes] | None:
    """The authority node `name` hosts and the bundle of it the node holds, if both."""
    with open_node(name, home=home) as node:
        hosted = node.hosted_authority()
        if hosted is None:
            return None
        held = SqliteBundleTable(node.db).load(hosted.identifier.digest)
    return None if held is None else (hosted.identifier, held)


def resign_held_bundle(home: Path, name: str, *, digest: str, clock: Clock) -> dict[str, Any]:
    """The bundle node `name` holds of the authority it hosts, signed again by the authority
    under its current key (`resign_bundle`: one revision up, same policies, the same lifetime
    from now) and installed (`install_bundle`). Only the bundle whose SHA-256 is `digest`
    (hex, as `troth policy show` prints it): the operator confirms what is re-signed — the
    held bundle may be one a thief pushed with the key the rotation retired. PolicyError when
    the digest differs, the bundle expired, or there is none (NO_BUNDLE)."""
    found = held_authority_bundle(home, name)
    if found is None:
        raise PolicyError(_P.NO_BUNDLE, f"node {name!r} holds no bundle of an authority it hosts")
    authority, held = found
    with open_node(name, home=home) as node:
        check_may_sign(SqliteBundleTable(node.db), authority, now=clock.now())
    if sha256(held).hex() != digest.strip().lower():
        raise PolicyError(
            _P.MALFORMED,
            f"the held bundle's digest is {sha256(held).hex()}, not the one given: check it "
            "(troth policy show) before re-signing",
        )
    now = clock.now()
    with open_node(name, home=home) as node:
        signer = node.identities.signer(str(authority), now=now)
        data = resign_bundle(held, signer, now=now)
    return install_bundle(home, name, data, clock=clock)


def admin_chain(node: Node, signer: str, authority: Identifier, *, now: int) -> bytes:
    """The chain `signer` signs `authority`'s bundles under: the one from `authority` granting
    troth.role=policy-admin with no caveat that expires last, unexpired and revoked by no feed
    the node holds (`CredentialWallet.best`, as a delegation's parent is picked; a caveated
    one, which every verifier refuses on a bundle, passed over: review 65f, credentials 1);
    NotFound if none."""
    try:
        return node.wallet.best(
            signer,
            now=now,
            needs=Attributes({ROLE: POLICY_ADMIN}),
            authority=authority,
            uncaveated=True,
        )
    except NotFound:
        raise NotFound(
            f"{signer} holds no unexpired {ROLE}={POLICY_ADMIN} credential of {authority}"
        ) from None


def sign_bundle_as(
    node: Node,
    signer: str,
    *,
    authority: Identifier,
    policies: str,
    schema: str,
    tools: Mapping[str, Any],
    services: Mapping[str, Any],
    revision: int,
    now: int,
    ttl: int | None = None,
    fleet_holds_none: bool = False,
) -> bytes:
    """A new bundle of `authority` (`create_bundle`), signed by local identity `signer`: the
    authority itself, or a member under its policy-admin chain (`admin_chain`). It lives `ttl`
    seconds (refused past the signer's key or chain), or with `ttl` None 7 days or until the
    signer's key or chain expires, whichever is first (`default_bundle_ttl`). Refused first
    (PolicyError ROLLBACK) when the node holds a bundle of `authority` at `revision`: a new
    signature makes a different bundle of that revision, and of two such bundles only the one
    of the lower digest decides, on every node (docs/policy.md, "Bundles on a node": review
    41d, bundles 2) — which one is not the signer's choice; and RESTORED after a restore of
    node.db (`check_may_sign`; `fleet_holds_none`: the operator's word, review 66o, hold 1)."""
    signing = node.identities.signer(signer, now=now)
    is_authority = signing.identity.identifier == authority
    chain = None if is_authority else admin_chain(node, signer, authority, now=now)
    table = SqliteBundleTable(node.db)
    check_may_sign(table, authority, now=now, fleet_holds_none=fleet_holds_none)
    stamp = table.stamps().get(authority.digest)
    if stamp is not None and stamp[0] == revision:
        raise PolicyError(
            _P.ROLLBACK,
            f"node {node.name!r} already holds revision {revision} of this authority (digest "
            f"{stamp[1].hex()}): sign revision {revision + 1} (of two bundles of one revision "
            "every node keeps the one of the lower digest)",
        )
    if ttl is None:
        ttl = default_bundle_ttl(signing, authority=authority, now=now, chain=chain)
    return create_bundle(
        signing,
        authority=authority,
        policies=policies,
        schema=schema,
        tools=tools,
        services=services,
        revision=revision,
        now=now,
        ttl=ttl,
        chain=chain,
    )


def stored_bundles(home: Path, name: str, *, clock: Clock) -> list[dict[str, Any]]:
    """The bundles node `name` holds: summaries, and whether each is in force now."""
    with open_node(name, home=home) as node:
        return _open_policies(node, clock).show(now=clock.now())


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """`callback(*args)` on `loop`, from the storage thread (nothing once the loop closed)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
