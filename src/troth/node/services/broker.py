"""The secrets broker as a node service (`/service/broker`, docs/protocols.md "Broker service"),
and its client for agents on other nodes (troth.node.services.broker_client, re-exported here).

Every request passes the node's decision point first (issue, renew, revoke, list, jwks and
forward: any authenticated identity; revoke-identity: local callers and holders of
troth.broker=admin from the authority the node hosts, when it hosts one). The broker then
decides on the caller's *current* credentials — the chains it presented on the channel,
re-verified against the feeds the node holds at that request — and its lease policy
(`GatesLeasePolicy`: the node's active policy bundle; none: deny). Broker work runs on the
broker's own thread (SQLite, signing, the token and postgres engines' calls), never on the
event loop; a forward's upstream call runs in the forward pool (`ForwardPool`: bounded,
refusing beyond its limits), after its checks and audit on the broker's thread, so no upstream
holds back the broker's other work.

Upkeep (docs/secrets.md, "The served broker"):
- at start, `recover` (expired and unfinished leases revoked, orphans swept), then the feeds the
  node holds are installed: both call upstream, so start waits for them at most
  `START_RECOVERY_SECONDS` and they run on past it; until they finished, issue, renew and
  forward are refused (review 49p, broker 1: an unreachable upstream held the node's start past
  the daemon's START_TIMEOUT); a failed recovery is tried again at the next sweep;
- every `SWEEP_SECONDS`, `sweep`: an expired lease — and its database sessions — lives at most
  that long past its expiry, unless more leases expired at once than a sweep's budget of first
  revocations takes (troth.secrets.sweep): the rest wait for the next sweeps, in turn across
  accounts;
- whenever the node installs a feed with more entries, `revoke_for_feed`: the leases it revokes
  are revoked within the time the node takes to see the feed (the hosted authority's: within
  HOSTED_FEED_POLL, at once for a revocation made on this machine: review 63u, revocation 1;
  another authority's: its next feed refresh, MAINTENANCE_SECONDS) plus the
  engines' revocation; when it fails, the next sweep tries it again (review 49p, broker 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from troth import limits
from troth.clock import Clock
from troth.credentials import Attributes, VerifiedFeed
from troth.encoding.ijson import load_json
from troth.errors import (
    ConfigError,
    DecodeError,
    NotFound,
    RemoteError,
    SecretError,
    TrothError,
)
from troth.identity import Identifier
from troth.node.access import (
    AnyAuthenticated,
    LocalCaller,
    PeerCaller,
    RequireAttributes,
)
from troth.node.config import NodeConfig, update_config
from troth.node.node import Node
from troth.node.rotation_revoke import due_identities, finish_due
from troth.node.services.base import Method, RequestContext
from troth.node.services.broker_client import (
    BROKER_ADDRESS,
    BrokerClient,
    RemoteLeases,
    broker_route,
)
from troth.node.services.broker_client import (
    MAX_UNANSWERED_REQUESTS as MAX_UNANSWERED_REQUESTS,
)
from troth.node.services.forwards import ForwardPool
from troth.node.services.node_policies import NodePolicies
from troth.node.trust import NodeTrust, own_authorities
from troth.node.worker import StoreWorker
from troth.secrets import Broker
from troth.secrets.audit import AuditSink
from troth.secrets.book import lease_account
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.members import IDENTITY_MEMBER, chain_members
from troth.secrets.policy import GatesLeasePolicy, LeasePolicy
from troth.secrets.wire import (
    BROKER,
    ForwardArgs,
    encode_response,
    raise_refusal,
    refusal,
)
from troth.vault import SealingVault

if TYPE_CHECKING:
    from troth.node.runtime import NodeRuntime

__all__ = [
    "ADMIN_ATTRIBUTE",
    "BROKER_ADDRESS",
    "REFUSED_UNTIL_READY",
    "START_RECOVERY_SECONDS",
    "SWEEP_SECONDS",
    "BrokerClient",
    "BrokerService",
    "RemoteLeases",
    "broker_route",
    "enable_broker",
    "local_broker",
    "open_broker",
    "put_secret",
]

log = logging.getLogger("troth.node.broker")
T = TypeVar("T")

SWEEP_SECONDS: Final = 5
"""How often the served broker sweeps: an expired lease (a database role and its open
sessions) is revoked at most this long after it expired (a burst past a sweep's budget of first
revocations, `MAX_SWEEP_FIRST_ATTEMPTS` and `SWEEP_FIRST_SECONDS`, over the next sweeps)."""
START_RECOVERY_SECONDS: Final = 5.0
"""How long the served broker's start waits for its recovery and the held feeds' revocations
(upstream calls: the daemon's START_TIMEOUT bounds a node's whole start); the rest runs on."""
REFUSED_UNTIL_READY: Final = frozenset({"issue", "renew", "forward"})
"""The methods refused until the broker recovered and revoked what the held feeds revoke (deny
while in doubt: an aborted issue's lease, a revoked holder's lease, may still be live)."""
DUE_RETRY_MAX_SECONDS: Final = 300
"""The longest wait between tries of a compromised rotation's revocation that failed (from
SWEEP_SECONDS, doubling); its identity is refused meanwhile (review 69j, gaps 2)."""
ADMIN_ATTRIBUTE: Final = Attributes({"troth.broker": "admin"})
"""A peer whose credential carries it may revoke every lease of an identity (local callers
always may)."""


def _vault(node: Node) -> SealingVault:
    vault = node.vault
    if not isinstance(vault, SealingVault):
        raise ConfigError(f"node {node.name!r}: its vault cannot seal secrets")
    return vault


def open_broker(node: Node, *, now: int, policy: LeasePolicy | None = None) -> Broker:
    """The broker over node `node`'s database and vault (its tables and keys made on first
    use). Without `policy`, every lease is denied (the served broker uses the node's bundle)."""
    return Broker(node.db, _vault(node), now=now, policy=policy)


def enable_broker(node: Node) -> bool:
    """Add `broker` to the services node.json names (whether it was added: a running node
    serves it once restarted)."""
    if BROKER in node.config.services:
        return False
    added = False

    def add(config: NodeConfig) -> NodeConfig:
        nonlocal added
        if BROKER in config.services:
            return config
        added = True
        return dataclasses.replace(config, services=(*config.services, BROKER))

    node.config = update_config(node.path / "node.json", add)  # review 44d, config 1
    return added


def put_secret(
    node: Node,
    name: str,
    engine: str,
    config: bytes,
    value: bytes,
    *,
    now: int,
    grantable_by: tuple[Identifier, ...] = (),
) -> dict[str, Any]:
    """Store upstream secret `name` on node `node` (sealed by its vault) and make the node a
    broker: what was stored (never the value) and whether node.json changed.

    `grantable_by` names the authorities whose policy bundles may grant leases of it, with
    those its configuration names (docs/secrets.md, "Whose bundles grant a secret"). Naming
    none: on a node hosting an authority, that one (the served broker's default); on a node
    hosting none that trusts exactly one, that one is recorded (it keeps granting once the node
    enrolls with another); otherwise none is recorded, and the served broker's default decides
    at each lease: the one authority the node trusts when it trusts exactly one (on a node that
    trusted none at the put, its first enrollment's: review 38a, broker 1), else none."""
    config = _with_grantors(node, config, grantable_by)
    broker = open_broker(node, now=now)
    try:
        spec = broker.put_secret(name, engine, config, value, now=now)
    finally:
        broker.close()
    return {
        "secret": spec.name,
        "engine": spec.engine,
        "scopes": list(spec.scopes),
        "ttl": spec.ttl,
        "max_ttl": spec.max_ttl,
        "grantable_by": [str(authority) for authority in spec.grantable_by],
        "service_added": enable_broker(node),
    }


def _with_grantors(node: Node, config: bytes, named: tuple[Identifier, ...]) -> bytes:
    """`config` with `named` added to its `grantable_by` (see `put_secret`); a malformed one
    is left for the broker to refuse (CONFIG_INVALID)."""
    try:
        loaded = load_json(config, max_bytes=limits.MAX_SECRET_CONFIG_BYTES, what="config")
    except DecodeError:
        return config
    if not isinstance(loaded, dict) or not isinstance(loaded.get("grantable_by", []), list):
        return config
    listed: list[Any] = loaded.get("grantable_by", [])
    if not named and not listed and not _hosts_authority(node):
        named = tuple(own_authorities(None, frozenset(node.wallet.trusted())))
    if not named:
        return config
    loaded["grantable_by"] = [*listed, *(str(authority) for authority in named)]
    return json.dumps(loaded).encode()


def _hosts_authority(node: Node) -> bool:
    return node.hosted_authority() is not None


def rotate_token_key(node: Node, *, compromised: bool, now: int) -> dict[str, Any]:
    """Rotate node `node`'s token signing key (`BrokerKeys.rotate_signing_key`): the new kid,
    the kids withdrawn (a compromised rotation: every older key), and the kids the JWKS
    publishes now. A running broker over the same database signs its next token with the new
    key and publishes what the store holds at once."""
    broker = open_broker(node, now=now)
    try:
        before = {k.kid for k in broker.store.signing_keys()}
        kid = broker.keys.rotate_signing_key(now, compromised=compromised)
        kept = {k.kid for k in broker.store.signing_keys()}
        published = sorted(broker.jwks(now).keys)
    finally:
        broker.close()
    # and the withdrawn keys an earlier rotation, killed after its commit, left in the vault
    # (review 47f, token keys 1)
    with contextlib.suppress(TrothError):
        node.identities.forget_retired()
    return {"kid": kid, "withdrawn": sorted(before - kept), "published": published}


class BrokerService:
    """The broker served by a node (see the module docstring)."""

    name = BROKER
    oneway: Method | None = None

    def __init__(
        self,
        node: Node,
        trust: NodeTrust,
        clock: Clock,
        *,
        policies: NodePolicies,
        audit: AuditSink | None = None,
    ) -> None:
        self.node = node
        self.trust = trust
        self.clock = clock
        self.audit = audit  # None: the audit table in the node's database
        self.bundles = policies
        """The node's policy bundles (`troth policy push` and the policy service activate a
        revision for the broker at once, as for every other gate of the node)."""
        # whose bundles grant a secret naming none (docs/secrets.md, "Whose bundles grant a
        # secret"; review 37c, broker 1: each trusted authority's bundle granted the secrets)
        self.policy = GatesLeasePolicy(policies.decision_point(), grantors=trust.own_authorities)
        self.broker: Broker | None = None
        self.endpoint: BrokerEndpoint | None = None
        self._thread = StoreWorker("troth-broker")
        """The broker's thread (its vault's calls): a daemon, abandoned by `close`, so a call
        stuck in it (an HSM that never answers) holds no process exit (review 63v2, stop 3:
        a ThreadPoolExecutor's thread was joined at the interpreter's exit, for ever)."""
        self.forwards = ForwardPool()
        """Where forwards' upstream calls run (never the broker's thread)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._feed_counts: dict[Identifier, tuple[int, bytes]] = {}
        self._failed_feeds: dict[Identifier, VerifiedFeed] = {}  # retried at the next sweep
        self._recovery: asyncio.Task[None] | None = None
        self._recovered = False
        self._due: frozenset[Identifier] | None = frozenset()
        """The identities whose compromised rotation's revocation failed, refused `issue`,
        `renew` and `forward` (theirs and their delegates') until it is done; None: which is
        unknown (the store could not be read), every caller refused (review 69j, gaps 2)."""
        self._due_retry = (0, SWEEP_SECONDS)  # when the next try is due, and the wait after it
        self._due_seen: int | None = None  # node.db's data version when the rows were read
        self._due_reading: asyncio.Future[frozenset[Identifier]] | None = None  # that read
        self.ready = False
        """Whether the broker recovered and revoked what the feeds held at start revoke (until
        then `REFUSED_UNTIL_READY` are refused)."""
        self._closed = False
        self.sweeps = 0
        # The broker's operators are the admins of the authority the node hosts: a node trusts
        # every authority it enrolls with, each may grant troth.broker=admin (review 36b,
        # broker 1; docs/secrets.md, "The served broker"). A node hosting none has no own
        # authority: each trusted one's admins act for it only (`_caller`'s `operator_of`).
        hosted = trust.hosted.identifier if trust.hosted is not None else None
        anyone = AnyAuthenticated()
        operators = RequireAttributes(ADMIN_ATTRIBUTE, authority=hosted)
        self.operators = operators
        """The rule of `revoke-identity` for peers (local callers always pass)."""
        self.methods: Mapping[str, Method] = {
            "issue": Method(functools.partial(self._handle, "issue"), anyone),
            "renew": Method(functools.partial(self._handle, "renew"), anyone),
            "revoke": Method(functools.partial(self._handle, "revoke"), anyone),
            "list": Method(functools.partial(self._handle, "list"), anyone),
            "jwks": Method(functools.partial(self._handle, "jwks"), anyone),
            "forward": Method(functools.partial(self._handle, "forward"), anyone),
            "revoke-identity": Method(
                functools.partial(self._handle, "revoke-identity"), operators
            ),
        }
        trust.feed_hooks.append(self._feed_installed)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the broker; recover and install the held feeds, waiting for that at most
        `START_RECOVERY_SECONDS` (it runs on past them); start sweeping."""
        self._loop = asyncio.get_running_loop()
        await self._run(self._open)
        self._recovery = self._loop.create_task(self._recover())
        self._tasks.add(self._recovery)
        self._recovery.add_done_callback(self._tasks.discard)
        await asyncio.wait({self._recovery}, timeout=START_RECOVERY_SECONDS)
        self._spawn(self._sweeping())

    async def _recover(self) -> None:
        """`Broker.recover`, then the feeds held now installed (their leases revoked); ready
        once both succeeded. A failure leaves the broker refusing `REFUSED_UNTIL_READY`: the
        next sweep tries again."""
        broker = self.broker
        if broker is None:
            return
        feeds = list(self._failed_feeds.values())  # recovered: those that failed since
        if not self._recovered:
            try:
                report = await self._run(broker.recover, self.clock.now())
            except TrothError as exc:
                log.warning("broker recovery (tried again at the next sweep): %s", exc)
                return
            if report.expired or report.revoked or report.orphans:
                log.info("broker recovered: %s", report.to_json())
            self._recovered = True
            feeds = list(self.trust.feeds.values())
            await self._finish_due(self.clock.now())
        for feed in feeds:
            await self._revoke_for_feed(feed)
        self.ready = not self._failed_feeds

    async def _finish_due(self, now: int) -> None:
        """Revoke what a compromised rotation whose process died before its revocation left
        due (troth.node.rotation_revoke; review 67l, rotate 1). A failure is tried again at the
        sweeps, waiting longer each time (up to DUE_RETRY_MAX_SECONDS), and until it succeeds
        the identities due are refused (`_refused_while_due`): the broker got ready with the
        due leases of a stolen key live, and leased and forwarded for it until the next
        maintenance round (review 69j, gaps 2)."""
        broker = self.broker
        if broker is None:
            return
        try:
            finished = await self._run(finish_due, self.node, broker, now)
        except Exception as exc:  # any: it must not keep the broker from serving the others
            log.warning("broker: a compromised rotation's revocation (tried again): %s", exc)
            try:
                self._due = await self._run(due_identities, self.node)
            except Exception as read:  # which identities: unknown, every one refused
                log.warning("broker: the revocations due: %s", read)
                self._due = None
            wait = self._due_retry[1]
            self._due_retry = (now + wait, min(2 * wait, DUE_RETRY_MAX_SECONDS))
            return
        self._due, self._due_retry = frozenset(), (0, SWEEP_SECONDS)
        if finished:
            log.warning("broker: revoked the leases of %d compromised rotation(s)", finished)

    async def _due_noticed(self) -> None:
        """The rows a compromised rotation in another process left due since the broker last
        read them (its revocation failed, or the process was killed before it) taken as a
        failed revocation is: their identities refused until it is done, tried at the next
        sweep. The running broker read them only at its start and rounds (when its own
        revocation failed): it leased and forwarded for a stolen key's identity until its next
        round, its status showing none due (review 69o, wave1c 2). One `PRAGMA data_version`
        on the loop; the rows read (on a thread of their own) only when node.db changed, a
        request arriving while they are read waiting for that read (one was served on the set
        from before the change: review 69v, wave4a 4)."""
        if self._due is None:
            return  # every caller refused already
        try:
            version = self.node.db.data_version()
            reading = self._due_reading
            if version != self._due_seen:
                self._due_seen = version  # first: a commit while they are read is seen next
                # read on a thread of its own, not the broker's: a request waited there behind
                # a revocation or a sweep, and a forward took its place in the pool only after
                # it (test_attacks_review21_traces_secrets, forward pool; lead)
                reading = asyncio.ensure_future(asyncio.to_thread(due_identities, self.node))
                reading.add_done_callback(_retrieved)  # its awaiters all cancelled: no noise
                self._due_reading = reading
            if reading is None or reading.done():
                return  # read, and taken, already
            due = await asyncio.shield(reading)  # a caller's cancel ends not the others' read
        except Exception as exc:  # which identities: unknown, every one refused
            log.warning("broker: the revocations due: %s", exc)
            self._due, self._due_retry = None, (0, SWEEP_SECONDS)
            return
        known = self._due
        if known is not None and not due <= known:
            self._due, self._due_retry = known | due, (0, SWEEP_SECONDS)

    def _refused_while_due(self, method: str, caller: BrokerCaller) -> None:
        """RemoteError if `method` is one refused until ready and `caller` (or a chain it
        presents) names an identity whose compromised rotation's revocation is not done."""
        due = self._due
        if method not in REFUSED_UNTIL_READY or caller.identity is None or due == frozenset():
            return
        if due is not None:
            named = {IDENTITY_MEMBER + caller.identity.digest}
            for credential in caller.credentials:
                named.update(chain_members(credential))
            if not any(IDENTITY_MEMBER + identity.digest in named for identity in due):
                return
        raise RemoteError(
            "the broker is revoking the leases of a compromised rotation naming this caller: "
            "try again"
        )

    def started(self) -> Broker:
        """The broker this service serves (RemoteError before the node started it)."""
        if self.broker is None:
            raise RemoteError("the broker is starting: try again")
        return self.broker

    def _open(self) -> None:
        now = self.clock.now()
        self.bundles.reload(now=now)
        broker = Broker(
            self.node.db, _vault(self.node), now=now, policy=self.policy, audit=self.audit
        )
        self.broker, self.endpoint = broker, BrokerEndpoint(broker)

    async def close(self) -> None:
        """Stop sweeping; close the broker's upstream connections and its thread (abandoned
        however the close ends: calls after it refused, those queued dropped)."""
        self._closed = True
        with contextlib.suppress(ValueError):
            self.trust.feed_hooks.remove(self._feed_installed)
        for task in list(self._tasks):
            task.cancel()
        self.forwards.close()
        try:
            with contextlib.suppress(Exception):
                await self._run(self._close)
        finally:  # however it ends: cut short behind a stuck call, nothing runs after it
            self._thread.abandon()  # (review 63y2, broker 1)

    def _close(self) -> None:
        if self.broker is not None:
            self.broker.close()

    async def _sweeping(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            await self.sweep()

    async def sweep(self) -> None:
        """One sweep now (expired leases revoked, failed revocations retried, orphans)."""
        broker = self.broker
        if broker is None or (self._recovery is not None and not self._recovery.done()):
            return  # the recovery (a sweep of its own) is still running
        if not self.ready:
            await self._recover()  # or the held feeds' revocations that failed
            return
        for feed in list(self._failed_feeds.values()):  # review 49p, broker 2
            await self._revoke_for_feed(feed)
        with contextlib.suppress(RemoteError):  # (stopped meanwhile)
            await self._due_noticed()  # status shows them within a sweep (69o, wave1c 2)
        if self._due != frozenset() and self.clock.now() >= self._due_retry[0]:
            await self._finish_due(self.clock.now())  # review 69j, gaps 2
        try:
            await self._run(broker.sweep, self.clock.now())
            self.sweeps += 1
        except TrothError as exc:
            log.warning("broker sweep: %s", exc)

    async def maintain(self, now: int) -> None:
        """Re-read the stored policy bundles (a bundle another process stored); forget the
        leases that ended more than ENDED_LEASE_RETENTION ago (`Broker.prune`)."""
        await self._run(lambda: self.bundles.reload(now=now))
        broker = self.broker
        if broker is None:
            return
        await self._finish_due(now)
        try:
            pruned = await self._run(broker.prune, now)
        except TrothError as exc:
            log.warning("broker prune: %s", exc)
            return
        if pruned:
            log.info("broker: %d ended leases forgotten", pruned)

    def status(self) -> dict[str, Any]:
        """What `node status` shows of the broker."""
        broker = self.broker
        if broker is None:
            return {"ready": False}
        return {
            "ready": True,
            "recovering": not self.ready,
            "secrets": len(broker.store.secrets()),
            "sweeps": self.sweeps,
            # REVOKING leases whose upstream revocation failed (up to MAX_STUCK_REPORTED)
            "stuck_revocations": len(broker.stuck_revocations()),
            # identities whose compromised rotation's revocation failed, refused until it is
            # done (None: which is unknown, every caller refused; review 69j, gaps 2)
            "revocations_due": None if self._due is None else len(self._due),
        }

    # -- revocation through the feed ----------------------------------------------------------

    def _feed_installed(self, feed: VerifiedFeed) -> None:
        """NodeTrust hook (any thread): a feed was installed."""
        loop = self._loop
        if loop is None or self._closed:
            return  # start() installs the feeds held then; a closed broker has none to revoke
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._feed_task, feed)

    def _feed_task(self, feed: VerifiedFeed) -> None:
        if not self._closed:
            self._spawn(self._revoke_for_feed(feed))

    async def _revoke_for_feed(self, feed: VerifiedFeed) -> None:
        # its count and head: the same count with another head is the store restored, then
        # grown again by other revocations (review 63w2, relay 1: counted only, they were missed)
        if self._feed_counts.get(feed.authority) == (feed.count, feed.head) or self.broker is None:
            return
        self._feed_counts[feed.authority] = (feed.count, feed.head)
        broker = self.broker
        try:
            revoked = await self._run(lambda: broker.revoke_for_feed(feed, now=self.clock.now()))
        except TrothError as exc:
            self._feed_counts.pop(feed.authority, None)  # tried again at the next sweep
            failed = self._failed_feeds.get(feed.authority)
            if failed is None or failed.count <= feed.count:
                self._failed_feeds[feed.authority] = feed
            log.warning("broker: revocations of a feed of %s: %s", feed.authority, exc)
            return
        failed = self._failed_feeds.get(feed.authority)
        if failed is not None and failed.count <= feed.count:
            del self._failed_feeds[feed.authority]  # this feed revokes all that one did
        if revoked:
            log.info("broker: the feed of %s revoked %d leases", feed.authority, len(revoked))

    # -- requests -----------------------------------------------------------------------------

    async def _handle(self, method: str, arguments: Any, context: RequestContext) -> Any:
        endpoint = self._endpoint_for(method)
        caller = self._caller(method, context)
        if method in REFUSED_UNTIL_READY and caller.identity is not None:
            await self._due_noticed()
        self._refused_while_due(method, caller)
        try:
            if method == "forward":
                return await self._forward(endpoint, arguments, caller)
            return await self._run(endpoint.handle, method, arguments, caller, context.now)
        except DecodeError as exc:
            raise RemoteError(f"a malformed broker request: {exc}") from None

    async def _forward(self, endpoint: BrokerEndpoint, arguments: Any, caller: BrokerCaller) -> Any:
        """A forward: a place in the forward pool (refused beyond its limits, and to a caller
        with no current credential, which holds no lease to forward under), then on the
        broker's thread — queued behind whatever it has to do, revocations included — the
        lease, the credential and the rules checked and the use audited, at the time it runs;
        then the upstream call on a pool thread, within the secret's timeout."""
        args = ForwardArgs.from_wire(arguments)
        if not caller.operator and not caller.credentials:  # no credential, no lease: no place
            # in the pool either (a stranger's new keys would each take a share), answered at
            # once; its audit record written on the broker's thread (review 61e, secrets 1)
            answer, record = endpoint.refuse_forward(args, caller, self.clock.now())
            if record is not None:
                self._spawn(self._audit_refusal(record))
            return answer
        try:
            slot = self.forwards.admit(_forward_account(caller))
        except SecretError as exc:
            return refusal(exc)
        try:
            prepared = await self._run(
                lambda: endpoint.prepare_forward(args, caller, self.clock.now())
            )
        except SecretError as exc:
            slot.release()
            return refusal(exc)
        except BaseException:
            slot.release()
            raise
        try:
            return encode_response(await self.forwards.run(slot, prepared.send))
        except SecretError as exc:
            return refusal(exc)

    async def _audit_refusal(self, record: Callable[[], None]) -> None:
        try:
            await self._run(record)
        except (TrothError, RuntimeError) as exc:  # the sink refused it; the broker closed
            log.warning("broker: a refusal's audit record: %s", exc)

    def _caller(self, method: str, context: RequestContext) -> BrokerCaller:
        caller = context.caller
        if isinstance(caller, LocalCaller):
            return BrokerCaller(None, operator=True)
        if not isinstance(caller, PeerCaller):
            raise RemoteError(f"an unknown kind of caller: {caller}")
        standing = self.trust.standing(caller.peer, context.now)
        why = (
            f"{caller.identifier} holds no current credential from an authority "
            f"{self.node.name} trusts"
        )
        if standing.dropped:
            why += f" ({'; '.join(standing.dropped)})"
        operator = method == "revoke-identity"  # the decision point's rule allowed it
        return BrokerCaller(
            caller.identifier,
            standing.credentials,
            operator=operator,
            refused=why,
            operator_of=frozenset(
                credential.authority
                for credential in standing.credentials
                if not credential.caveats
                and (self.operators.authority in (None, credential.authority))
                and ADMIN_ATTRIBUTE.first_excess_over(credential.attributes) is None
            )
            if operator
            else None,
        )

    async def local(self, method: str, arguments: Any) -> Any:
        """`method(arguments)` as a local caller (the control socket): its answer."""
        endpoint = self._endpoint_for(method)
        caller = BrokerCaller(None, operator=True)
        if method == "forward":
            answer = await self._forward(endpoint, arguments, caller)
        else:
            answer = await self._run(endpoint.handle, method, arguments, caller, self.clock.now())
        return raise_refusal(answer)

    # -- internals ----------------------------------------------------------------------------

    def _endpoint_for(self, method: str) -> BrokerEndpoint:
        """The endpoint, when `method` may be served now (RemoteError otherwise)."""
        endpoint = self.endpoint
        if endpoint is None:
            raise RemoteError("the broker is starting: try again")
        if method in REFUSED_UNTIL_READY and not self.ready:
            raise RemoteError("the broker is recovering: try again")
        return endpoint

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the broker's thread: RemoteError once the broker is closed (a
        request served while the node stops: its channels close after its services; review
        63y2, broker 2: the thread's RuntimeError was answered as an internal error, a bug's
        traceback logged)."""
        try:
            future = self._thread.submit(function, *args)
        except RuntimeError:
            raise RemoteError("the broker is stopped") from None
        return await asyncio.wrap_future(future)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A read's failure is its awaiters' to log (none left: the next request reads again)."""
    if not future.cancelled():
        future.exception()


def local_broker(runtime: NodeRuntime) -> BrokerService:
    """The broker `runtime` serves (NotFound if it serves none)."""
    service = runtime.host.services.get(BROKER)
    if not isinstance(service, BrokerService):
        raise NotFound(
            f"node {runtime.name!r} serves no broker: store a secret on it first "
            f"(troth secret put NAME --engine ENGINE --config FILE --node {runtime.name})"
        )
    return service


def _forward_account(caller: BrokerCaller) -> Hashable:
    """Whose share of the forward pool a forward takes: the members at the roots of the caller's
    chains (`lease_account`), so the delegates a member mints for free share its share."""
    accounts = frozenset(lease_account(credential) for credential in caller.credentials)
    return accounts or caller.identity
