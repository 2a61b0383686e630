"""The public face of a node: its identities, what they hold, enrollment, delegation,
revocation, and (troth._api.network) serving and connecting."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from troth import limits
from troth._api.arguments import (
    check_attributes,
    check_chain,
    check_clock,
    check_credential,
    check_flag,
    check_home,
    check_identity,
    check_key_type,
    check_link_reason,
    check_listen,
    check_name_text,
    check_peer,
    check_pin,
    check_seconds,
    check_short_text,
    check_text,
    check_texts,
    check_whole,
)
from troth._api.authority import AttributesLike, Authority
from troth._api.handle_runtime import HandleRuntime
from troth._api.policies import Policies
from troth._api.results import Credential, Identity
from troth._api.secrets import Secrets
from troth._api.traces import Traces
from troth.authority.core import DEFAULT_CREDENTIAL_TTL, DEFAULT_DELEGATION_DEPTH
from troth.clock import Clock, SystemClock
from troth.credentials import VerifiedFeed
from troth.enrollment import check_over_copy
from troth.errors import (
    ArgumentError,
    ConfigError,
    ConflictError,
    NotFound,
    StorageError,
    TrothError,
)
from troth.identity import Identifier
from troth.kinds import check_kind
from troth.node.authorities import (
    announce_here,
    enroll_locally,
    home_of,
    is_local,
    local_authority,
    parse_ticket,
    sync_local_feed,
)
from troth.node.home import check_kept_dirs, check_not_taken_over, troth_home
from troth.node.node import DEFAULT_NODE, init_node, node_dir, open_node
from troth.node.node import Node as StoredNode
from troth.node.rotation import rotate_local
from troth.node.rotation_revoke import done as revocation_done
from troth.node.traces import (
    delegate_recorded,
    record_revocation,
    revoke_link_recorded,
    tell_local_nodes,
    tell_running,
)
from troth.node.trust import FEED_STALENESS, extends_held, read_hosted
from troth.secrets.wire import BROKER

if TYPE_CHECKING:
    from troth._api.network import Channel, RunningNode, Service

__all__ = [
    "ChainLink",
    "Identities",
    "IdentityRef",
    "Link",
    "Node",
    "PeerRef",
    "revoke_link",
    "run_sync",
]

IdentityRef = str | Identity
"""A local identity: its name (or identifier text) on the node, or an `Identity`."""
PeerRef = Identifier | Identity | str
"""Another identity: an `Identifier`, an `Identity`, identifier text, or a local name."""

T = TypeVar("T")


class Link(Protocol):
    """What a link's revocation names: a `Credential` (its last link), or a `ChainLink`."""

    @property
    def chain(self) -> bytes:
        """A chain holding the link: proves who issued what upstream of it."""

    @property
    def id(self) -> bytes:
        """The link's id (the credential id a revocation names)."""

    @property
    def authority(self) -> Identifier:
        """The authority the chain is rooted at: the one that revokes."""


@dataclass(frozen=True, slots=True)
class ChainLink:
    """Link `id` anywhere in `chain` (not only its last), rooted at `authority`."""

    chain: bytes
    id: bytes
    authority: Identifier


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to completion from synchronous code (RuntimeError inside an event
    loop: there, await the async form instead)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise RuntimeError(
        "this synchronous call needs the network and an event loop is running: use the async "
        "form inside `async with node.serve() as running` (running.enroll, running.revoke, "
        "node.connect)"
    )


def _ref(identity: IdentityRef, stored: StoredNode, call: str, parameter: str = "identity") -> str:
    """The local identity `identity` names, as the layers beneath take it (its name). An
    `Identity` is found by its identifier, never its name alone: another node's identity of
    the same name is NotFound, not this node's (review 35d, identities 1). Anything else is an
    ArgumentError naming `call`'s `parameter`."""
    check_identity(call, parameter, identity)
    if not isinstance(identity, Identity):
        return identity
    record = stored.identities.find(str(identity.identifier))
    return record.name or str(identity.identifier)


_OPENED: Final = "an open troth.node.Node (use troth.Node.open(name))"
"""What the API's classes wrap, as an ArgumentError says it (review 54n, api 15)."""


class Identities:
    """The identities whose keys a node's vault holds (`Node.identities`)."""

    def __init__(self, node: Node) -> None:
        self._node = check_kind("Identities", "node", node, Node, "a Node (use node.identities)")

    def create(self, name: str, *, key_type: str = "ed25519") -> Identity:
        """Create an identity named `name` (keys generated inside the node's vault);
        ConflictError if the name is taken."""
        stored = self._node._stored
        check_name_text("Identities.create", "name", name, "identity name")
        kind = check_key_type("Identities.create", "key_type", key_type)
        created = stored.identities.create(now=self._node._clock.now(), name=name, key_type=kind)
        return Identity._of(created.name, created.identity)

    def get(self, identity: IdentityRef) -> Identity:
        """The local identity named `identity` (or with that identifier); NotFound if none."""
        local = self._node._stored.identities.get(
            _ref(identity, self._node._stored, "Identities.get"), now=self._node._clock.now()
        )
        return Identity._of(local.name, local.identity)

    def all(self) -> list[Identity]:
        """Every local identity of the node: once the node has recorded a trace (a delegation,
        a revocation), one without a name among them, its trace log's (docs/traces.md)."""
        records = list(self._node._stored.identities.list_local())
        return [self.get(r.name or str(Identifier(r.identifier))) for r in records]

    def rotate(
        self, identity: IdentityRef, *, key_type: str | None = None, compromised: bool = False
    ) -> Identity:
        """Replace the identity's primary key by the one its history committed to (the
        identifier stays), retire its purpose keys, and announce the new history to the
        authorities on this machine it is a member of (authorities reached over the network
        hear of it when the node next runs: `serve`). Chains the identity signed before stop
        verifying once its authority has published that: delegate again. When it is the
        authority this node hosts, the policy bundle it signed goes out of force too: check
        it, then re-sign it (`node.policies.resign(digest)`, its `PolicyBundle.digest`).
        `compromised`: the node's keys may have been copied (a stolen backup), which hold the
        committed next key too: two changes are appended, so the new primary key is one made
        now (docs/vault.md, "Recovering from a stolen backup"), and a broker node revokes every
        lease whose chain names the identity, as `Secrets.revoke_holder` (recorded due first: a
        process killed before it leaves them to the broker's next start or round; a revocation
        that fails raises its error only once the rotation is committed and announced, the
        leases left due: do not rotate again; review 68n, revoke 1). The change
        is dated no earlier than the identity's newest record in the node's trace log (at most
        300 s after the node's clock), so the records it signed stay valid (docs/formats.md, "A
        node dates its own rotations after what they retire"). A `compromised` that is not a
        bool is an ArgumentError."""
        node = self._node
        ref = _ref(identity, node._stored, "Identities.rotate")
        check_flag("Identities.rotate", "compromised", compromised)
        kind = (
            None if key_type is None else check_key_type("Identities.rotate", "key_type", key_type)
        )
        rotated = rotate_local(  # dated no earlier than its records in the node's trace log
            node._stored,
            ref,
            clock=node._clock,
            key_type=kind,
            compromised=compromised,
        )
        try:
            if compromised and BROKER in node._stored.config.services:
                # what the copied key obtained here ends with it (review 67f, secrets 1), before
                # the announcement (review 68c, revoke 1); due until then, finished by the
                # broker if this process dies first (review 67l)
                new = rotated.identity
                node.secrets.revoke_holder(new.identifier)
                revocation_done(node._stored, new.identifier.digest, new.change_count)
        finally:  # the nodes served in this process hold its supersession (68p, cache 1)
            from troth._api.network import sync_runtimes_here

            now = node._clock.now()
            announce_here(node._stored, ref, now=now, told=partial(sync_runtimes_here, now=now))
        return Identity._of(rotated.name, rotated.identity)


class Node:
    """A node: a vault holding identities' keys, and a store of what they hold and trust.
    Open one with `Node.open`; use it as a context manager (or `close()` it)."""

    def __init__(self, stored: StoredNode, clock: Clock | None = None) -> None:
        """Wrap an open `troth.node.Node` (use `Node.open`: anything else, a node's name say,
        is an ArgumentError; review 54n, api 15). One opened by a relative home is an
        ArgumentError too: its policies, traces and leases reopen it by its path, which a
        chdir turns into another home's node (review 62l, api 3; `Node.open` makes it
        absolute)."""
        self._handle = check_kind("Node", "stored", stored, StoredNode, _OPENED)
        if not stored.path.is_absolute():
            raise ArgumentError(
                "Node",
                "stored",
                "an open troth.node.Node of an absolute home (use troth.Node.open(name))",
                f"one at the relative path {str(stored.path)!r}",
            )
        self._closed = False
        """Whether `close` closed it: `_stored` refuses from then on (review 62h, api 1)."""
        self._hosted_feed: VerifiedFeed | None = None
        """The hosted authority's feed last read (`_revocation_feed`): only what follows it is
        read next (review 63u2, feed 1: every entry, at each of a gate's decisions)."""
        self._hosted_lock = threading.Lock()
        self._clock = check_clock("Node", "clock", clock) or SystemClock()
        self._running: RunningNode | None = None
        """The runtime that runs the handle, while one does: its serve block's, or the one its
        blocks outside `serve` share."""
        self._runner = HandleRuntime()
        """Who may run the handle (one runtime at a time: review 62j)."""
        self.identities = Identities(self)
        """The node's identities: create, get, rotate."""
        self.traces = Traces(self)
        """The node's signed trace log: verify, show, prove, export."""
        self.policies = Policies(self)
        """The node's policy bundles (gates): sign, install, show, decide a tool call."""
        self.secrets = Secrets(self)
        """The node's leased secrets: store one (a broker), lease, renew, give back, revoke."""

    @classmethod
    def open(
        cls,
        name: str = DEFAULT_NODE,
        *,
        home: Path | str | None = None,
        create: bool = True,
        clock: Clock | None = None,
    ) -> Node:
        """Open node `name` in `home` (a `Path` or a str; default: `$TROTH_HOME`, else the
        platform's data directory), creating it (software vault) on first use unless
        `create` is False (then NotFound); a relative `home` (or `$TROTH_HOME`) is from the
        working directory when the node is opened. `clock` gives the time (default: the
        system clock; a reading that is no time from 1970 to `limits.LAST_CLOCK_READING` is
        an ArgumentError where a call reads it). A name not of a node name's form (1-64
        characters a-z 0-9 . _ -), a `home` that is empty or no file name (a NUL, a lone
        surrogate), or a `create` that is not a bool, is an ArgumentError. A `home` of
        another user (not root), one others can write in, or one reached through another
        user's link, is a ConfigError, as every command refuses it."""
        check_name_text("Node.open", "name", name, "node name")
        check_flag("Node.open", "create", create)
        # absolute: the node's policies, traces and leases reopen it by its path, which a
        # chdir turned into another home's node of the same name (review 62h, api 6)
        home = check_home("Node.open", "home", home) or troth_home()
        try:  # (a working directory removed: ConfigError, as before; review 62l, api 4)
            home = home.absolute()
        except OSError as exc:
            raise ConfigError(f"cannot find home {home}: {exc.strerror or exc}") from None
        if home.exists():  # refused as every command refuses it (review 62h, api 2)
            check_kept_dirs(home)
            check_not_taken_over(home)
        clock = check_clock("Node.open", "clock", clock)
        if create and not (node_dir(home, name) / "node.json").is_file():
            try:
                init_node(name, home=home)
            except ConfigError:
                if not (node_dir(home, name) / "node.json").is_file():
                    raise  # not "another process created it first"
        return cls(open_node(name, home=home), clock or SystemClock())

    @property
    def _stored(self) -> StoredNode:
        """The open node beneath; StorageError once `close` closed it: `node.policies` opens
        the node again by its path, and kept installing and showing bundles through a closed
        handle (review 62h, api 1)."""
        if self._closed:
            name = self._handle.name
            raise StorageError(f"node {name!r} is closed: open it again (a new handle)")
        return self._handle

    @property
    def name(self) -> str:
        """The node's name; its own identity has the same name."""
        return self._handle.name

    @property
    def identity(self) -> Identity:
        """The node's own identity (named like the node, created on first use): the one it
        speaks as on secure channels, and that `enroll` enrolls by default."""
        try:
            return self.identities.get(self.name)
        except NotFound:
            try:
                return self.identities.create(self.name)
            except ConflictError:  # another process made it first
                return self.identities.get(self.name)

    # -- authorities ---------------------------------------------------------------------------

    def create_authority(
        self,
        *,
        credential_ttl: int = DEFAULT_CREDENTIAL_TTL,
        delegation_depth: int = DEFAULT_DELEGATION_DEPTH,
    ) -> Authority:
        """Make this node host an authority whose identity is the node's own (named like the
        node: the identity its tickets name and its channels present). Member credentials (and
        their VC exports) last `credential_ttl` seconds, never past the authority's signing
        key, and allow `delegation_depth` further links. Create it
        before the node first runs (ConflictError once the node's identity exists, or once it
        hosts its authority: `Node.authority` opens that one). A
        `credential_ttl` not from 1 to `limits.MAX_TTL`, or a `delegation_depth` not from 0 to
        `limits.MAX_DELEGATION_LINKS`, is an ArgumentError."""
        call = "Node.create_authority"  # out of range refused here too (review 56c, api 1)
        check_whole(
            call, "credential_ttl", credential_ttl, low=1, high=limits.MAX_TTL, unit=" of seconds"
        )
        check_whole(
            call, "delegation_depth", delegation_depth, low=0, high=limits.MAX_DELEGATION_LINKS
        )
        hosted = self._stored.hosted_authority()
        if hosted is not None:  # an AuthorityError REQUEST_INVALID (review 59e, api 5)
            raise ConflictError(
                f"node {self.name!r} already hosts authority {hosted.identifier}: open it with "
                "node.authority()"
            )
        try:
            hosted = self._stored.create_authority(
                self.name,
                now=self._clock.now(),
                credential_ttl=credential_ttl,
                delegation_depth=delegation_depth,
            )
        except ConflictError:
            raise ConflictError(
                f"node {self.name!r} already has its own identity, so it cannot become an "
                "authority's: create the authority on a new node"
            ) from None
        return Authority(hosted, self._stored, self._clock)

    def authority(self) -> Authority:
        """The authority this node hosts (NotFound if none)."""
        return Authority(self._stored.authority(), self._stored, self._clock)

    # -- credentials ---------------------------------------------------------------------------

    def enroll(
        self,
        ticket: str,
        *,
        identity: IdentityRef | None = None,
        authority_pin: str | None = None,
        over_copy: bool = False,
    ) -> Credential:
        """Redeem `ticket` for `identity` (default: the node's own): the authority makes it a
        member and issues its credential, which it holds; the node then trusts that authority
        and holds its revocation feed. An authority on this machine (`node:NAME` tickets) is
        reached directly; any other over a secure channel to the ticket's route.
        `authority_pin`: `IDENTIFIER:KEY`, the authority's identifier and current public key
        (hex) as `troth authority list` prints them, confirmed with its operator; required when
        the ticket gives an authority this node has never seen from a checkpoint (one past 64
        changes), and checked whenever given. `over_copy`: the operator's explicit word, for
        this enrollment only, that the ticket's authority history is the authority's over a
        stored copy only another authority attests that it conflicts with (COPY_CONFLICT
        without it; `troth enroll --over-copy`), only with `authority_pin` (ArgumentError)."""
        check_text("Node.enroll", "ticket", ticket)
        check_pin("Node.enroll", "authority_pin", authority_pin)
        check_flag("Node.enroll", "over_copy", over_copy)
        check_over_copy("Node.enroll", over_copy, authority_pin)
        ref = (
            _ref(identity, self._stored, "Node.enroll")
            if identity is not None
            else self.identity.name or self.name
        )
        parsed = parse_ticket(ticket)
        if not is_local(parsed.address):
            return run_sync(self._enroll_over_network(ticket, ref, authority_pin, over_copy))
        done = enroll_locally(
            self._stored,
            parsed,
            ref,
            clock=self._clock,
            authority_pin=authority_pin,
            over_copy=over_copy,
        )
        return Credential._of(done.enrolled.credential)

    async def _enroll_over_network(
        self, ticket: str, ref: str, key: str | None, over_copy: bool
    ) -> Credential:
        async with self.serve() as running:
            return await running.enroll(
                ticket, identity=ref, authority_pin=key, over_copy=over_copy
            )

    def credentials(self, identity: IdentityRef | None = None) -> list[Credential]:
        """The chains `identity` (default: the node's own, made on first use as by
        `Node.identity`) holds."""
        ref = (
            _ref(identity, self._stored, "Node.credentials")
            if identity is not None
            else self.identity.name or self.name  # not made yet: NotFound (review 64n, api 1)
        )
        wallet, now = self._stored.wallet, self._clock.now()
        return [Credential._of(wallet.inspect(h.chain, now=now)) for h in wallet.held(ref)]

    def delegate(
        self,
        identity: IdentityRef,
        *,
        to: PeerRef,
        attributes: AttributesLike,
        ttl: int,
        purpose: str,
        caveats: Sequence[str] = (),
        depth: int | None = None,
    ) -> Credential:
        """Delegate part of what local `identity` holds to `to` for `ttl` seconds: the
        attributes must be a subset of a held chain's, the expiry no later than its own
        (CredentialError AMPLIFIED otherwise). `caveats` are conditions (Cedar expressions)
        every use must meet; `depth` limits further delegation (default: one less). Returns
        the extended chain: hand `.chain` to its holder (`Node.hold`). A ttl that is not a
        whole number of seconds from 1 to `troth.limits.MAX_TTL`, or a `depth` not from 0 to
        `limits.MAX_DELEGATION_LINKS`, is an ArgumentError (a ValueError), as is any argument
        of another type."""
        call = "Node.delegate"
        ref = _ref(identity, self._stored, call)
        check_peer(call, "to", to)
        granted = check_attributes(call, "attributes", attributes)
        # refused first, naming ttl: it failed deep inside, or made a link expired at birth
        # (review 44c, API 1)
        check_whole(call, "ttl", ttl, low=1, high=limits.MAX_TTL, unit=" of seconds")
        check_short_text(call, "purpose", purpose, "MAX_PURPOSE_TEXT")
        if len(check_texts(call, "caveats", caveats)) > limits.MAX_CAVEATS:  # (63j, api 4)
            said = f"{len(caveats)} caveats"
            raise ArgumentError(call, "caveats", f"at most {limits.MAX_CAVEATS} caveats", said)
        if depth is not None:  # a negative one was "AMPLIFIED" (review 56c, api 1)
            check_whole(call, "depth", depth, low=0, high=limits.MAX_DELEGATION_LINKS)
        chain = delegate_recorded(
            self._stored,
            ref,
            to=self._identifier_of(to),
            attributes=granted,
            ttl=ttl,
            purpose=purpose,
            caveats=caveats,
            depth=depth,
            clock=self._clock,
        )
        return Credential._of(self._stored.wallet.inspect(chain, now=self._clock.now()))

    def hold(self, identity: IdentityRef, chain: Credential | bytes) -> Credential:
        """Keep a chain delegated to local `identity`, so it can present it and delegate
        further (CredentialError if the chain is not for it or does not check out)."""
        ref = _ref(identity, self._stored, "Node.hold")
        check_chain("Node.hold", "chain", chain)
        data = chain.chain if isinstance(chain, Credential) else chain
        held = self._stored.wallet.hold(ref, data, now=self._clock.now())
        return Credential._of(held)

    def feed(self, authority: PeerRef) -> VerifiedFeed | None:
        """The revocation feed of `authority` (an `Identifier`, an `Identity`, identifier text
        or a local name) as this node's decisions read it: the hosted authority's from its
        store, a copy of another's synced first when that authority is on this machine and the
        copy is not fresh. None when the node holds none, or while a revocation made on this
        machine left it due a sync (deny: it may predate the revocation). What a
        `troth.gates` decision point takes (`DecisionPoint(store, node.feed)`, docs/policy.md,
        "The tool gate"; review 63u, docs 3: only private attributes reached it)."""
        check_peer("Node.feed", "authority", authority)
        identifier = self._identifier_of(authority)
        now = self._clock.now()
        if self._feed_due(identifier, now=now):
            return None
        return self._revocation_feed(identifier, now=now)

    def revoke(self, credential: Credential, *, by: IdentityRef, reason: str = "") -> int:
        """Local identity `by` revokes `credential`'s last link, which it (or an identity
        upstream of it) issued, with the authority at the chain's root: every chain holding
        the link stops verifying, sibling delegations stay valid. Returns the feed entry's
        number, once this node's copy of the authority's feed holds it and the running node
        refuses the link: served in this process, through this handle or another (inside
        `serve`, with an authority reached over the network, await `RunningNode.revoke`
        there); a daemon running this node (`troth node start`), told as `troth revoke link`
        tells it. A sync of that copy that
        fails (the authority over the network, or on this machine), or a daemon that cannot be
        told, raises StorageError saying the link is revoked and its feed entry: the revocation
        stands, and the node's (or the daemon's) next feed refresh takes it
        (docs/credentials.md, "Revocation is real")."""
        check_credential("Node.revoke", "credential", credential)
        ref = _ref(by, self._stored, "Node.revoke", "by")
        check_short_text("Node.revoke", "reason", reason, "MAX_REVOCATION_REASON")
        by_id = self._stored.identities.find(ref).identifier
        check_link_reason("Node.revoke", reason, by=by_id, authority=credential.authority)
        return self._revoke(credential, ref, reason)

    def _revoke(self, link: Link, ref: str, reason: str) -> int:
        """`revoke` of `link`: over the network when this node trusts its authority at a
        network address, else with the authority on this machine."""
        address = self._stored.wallet.trusted().get(link.authority)
        if address is not None and not is_local(address):
            return run_sync(self._revoke_over_network(link, ref, reason))
        return self._revoke_here(link, ref, reason, address)

    def _revoke_here(self, link: Link, ref: str, reason: str, address: str | None) -> int:
        """`revoke` with the authority on this machine (at `address`, or wherever it is)."""
        from troth._api.network import sync_runtimes_here

        home = home_of(self._stored)
        with local_authority(home, link.authority, hint=address, beside=self._stored) as host:
            # recorded, and the feed this node holds synced: the CLI's call (review 47k); the
            # nodes served in this process that trust it (review 49a, revocation 1) synced
            # before the daemons here are asked (review 70d, telling 4)
            seq = revoke_link_recorded(
                self._stored,
                ref,
                host,
                link.id,
                chain=link.chain,
                reason=reason,
                clock=self._clock,
                told=lambda taken: sync_runtimes_here(taken, now=self._clock.now()),
            )
        self._tell_runtimes_here()
        return seq

    def _revoked_remotely(
        self,
        link: Link,
        ref: str,
        reason: str,
        seq: int,
        not_held: StorageError | None,
    ) -> int:
        """Record the revocation an authority over the network took as entry `seq` (this
        node's copy of its feed synced up to it, else `not_held` says why not), then tell a
        daemon running this node (review 48c, revnet 1: it went on admitting the link), then
        those running the other nodes here: its own daemon first, so that telling the others
        raising does not leave it untold (review 49l, revtell 1)."""
        try:
            try:
                record_revocation(
                    self._stored,
                    ref,
                    "link",
                    link.id.hex(),
                    authority=link.authority,
                    reason=reason,
                    seq=seq,
                    clock=self._clock,
                    chain=link.chain,
                )
            except StorageError:  # the revocation stands: a daemon learns it all the same
                if not_held is None:
                    with contextlib.suppress(TrothError):
                        tell_running(self._stored, seq)
                raise
            if not_held is not None:  # the link is revoked and recorded: the error says so
                raise not_held
            self._tell_runtimes_here()
            tell_running(self._stored, seq)
        finally:  # the other nodes running here sync it (review 48c, revocation 2)
            tell_local_nodes(self._stored, link.authority)
        return seq

    def _tell_runtimes_here(self) -> None:
        """Every runtime of this node in this process re-reads the feeds the node holds, so
        that its decisions see a revocation at once: served through this handle or another
        (review 49a, handles 2: a second handle's revocation went unheard)."""
        from troth._api.network import runtimes_here

        for runtime in runtimes_here(self):
            runtime.trust.learn_held()

    async def _revoke_over_network(self, link: Link, ref: str, reason: str) -> int:
        async with self.serve() as running:
            return await running._revoke(link, ref, reason)

    # -- the network (troth._api.network) --------------------------------------------------------

    def serve(
        self, *, listen: tuple[str, int] | None = None, services: Iterable[Service] = ()
    ) -> contextlib.AbstractAsyncContextManager[RunningNode]:
        """Run the node while the `async with` block lasts: answer secure channels, serve its
        configured services and `services`, listen on `listen` (host, port; port 0 picks one)
        if given, relay, keep feeds and credentials fresh. The running node speaks as the
        node's own identity. A `listen` that is not a (host, port) pair of a port 0 to 65535, or
        `services` that are not `Service`s, are an ArgumentError; `serve` of this `Node` while
        it serves, or while it runs for `connect` blocks or leases outside `serve`, is a
        RuntimeError (another handle of the node serves beside it)."""
        from troth._api.network import Service

        check_listen("Node.serve", "listen", listen)
        if isinstance(services, str | bytes) or not isinstance(services, Iterable):
            got = type(services).__name__
            raise ArgumentError("Node.serve", "services", "an iterable of Service", got)
        served = tuple(services)
        for service in served:
            if not isinstance(service, Service):
                raise ArgumentError(
                    "Node.serve",
                    "services",
                    "an iterable of Service",
                    f"an item of type {type(service).__name__}",
                )
        return self._runner.serve(self, listen, served)

    @contextlib.asynccontextmanager
    async def connect(self, route: str, *, expect: PeerRef | None) -> AsyncIterator[Channel]:
        """A secure channel to the node at `route` (e.g. `/tcp/127.0.0.1:4000`, or through a
        relay `/tcp/127.0.0.1:4000/relay/agent-b`), closed when the block ends (blocks of one
        running node to one route and peer share it: the last one to end closes it). `expect`
        is the identity you trust to answer there: anyone else is refused, and it is admitted
        even without a credential from an authority this node trusts (unless a feed this node
        holds revokes it). None admits whoever this node's trust admits, even while another
        block holds a channel to `route` pinned to a peer it would refuse (ChannelError
        PEER_NOT_ALLOWED). Outside `serve`, the node runs for the block's duration: the
        blocks (and leases) of this `Node` open at once share one runtime, stopped when the
        last of them ends."""
        check_text("Node.connect", "route", route)
        if expect is not None:
            check_peer("Node.connect", "expect", expect)
        async with (
            self._runner.running(self) as running,
            running.connect(route, expect=expect) as channel,
        ):
            yield channel

    def call(
        self,
        route: str,
        service: str,
        method: str,
        arguments: Any = None,
        *,
        expect: PeerRef | None,
        timeout: float = 10.0,
    ) -> Any:
        """Synchronous `connect` + `Channel.call`: open a channel to `route`, call `method` of
        `service` there with `arguments` (an answer within `timeout` seconds, as
        `Channel.call`'s: review 63j, api 2), close the channel, return the answer."""
        check_text("Node.call", "route", route)
        check_text("Node.call", "service", service)
        check_text("Node.call", "method", method)
        seconds = check_seconds("Node.call", "timeout", timeout)
        if expect is not None:
            check_peer("Node.call", "expect", expect)

        async def call() -> Any:
            async with self.connect(route, expect=expect) as channel:
                return await channel.call(service, method, arguments, timeout=seconds)

        return run_sync(call())

    # -- helpers ---------------------------------------------------------------------------------

    def _identifier_of(self, peer: PeerRef) -> Identifier:
        """An identifier from an Identifier, an Identity, identifier text or a local name."""
        if isinstance(peer, Identifier):
            return peer
        if isinstance(peer, Identity):
            return peer.identifier
        if Identifier.looks_like(peer):
            return Identifier.parse(peer)
        return Identifier(self._stored.identities.find(peer).identifier)

    def _revocation_feed(self, authority: Identifier, *, now: int) -> VerifiedFeed | None:
        """The feed of `authority` this node holds (hosted: read from its store), brought up to
        date first when the authority is on this machine and the copy is not fresh. The
        Verifier asks `_feed_due` of every source first (a due copy is none)."""
        hosted = self._stored.hosted_authority()
        if hosted is not None and hosted.identifier == authority:
            if hosted.restore_hold() is not None:  # the copy's line (review 65o, feed 2)
                return None
            # (a `previous` the store no longer holds, restored say, is read in full again;
            # its index grows in place: one call at a time, the lock inside the transaction
            # as the authority's own view takes its own)
            with hosted.store.transaction(), self._hosted_lock:
                previous = self._hosted_feed
                held = hosted.held_feed(now=now, previous=previous)
                if previous is None or extends_held(hosted, previous, held):
                    self._hosted_feed = held
                    return held
            # the store may have gone back: a line not the held one's is taken once what it
            # forgot is revoked again, in a transaction of its own (review 65c, feed 2: this
            # handle's decisions admitted the members the held feed revoked)
            again = read_hosted(hosted, previous, now)
            with self._hosted_lock:
                if again is not None and self._hosted_feed is previous:
                    self._hosted_feed = again
                if again is None and hosted.restore_hold() is not None:
                    self._hosted_feed = None  # held: no feed (review 65z, hold 1)
                return self._hosted_feed
        wallet = self._stored.wallet
        feed = wallet.held_feed(authority)
        address = wallet.trusted().get(authority)
        stale = feed is None or not feed.complete or now - feed.issued_at > FEED_STALENESS // 2
        if stale and address is not None and is_local(address):
            feed = sync_local_feed(self._stored, authority, address=address, now=now)
        return feed

    def _feed_due(self, authority: Identifier, *, now: int) -> bool:
        """Whether a link revocation made here left `authority`'s feed to sync
        (`CredentialWallet.sync_due`, tried now): the held copy may predate it, so this node
        vouches for no copy of it, as its own decisions wait (review 58e, feeds 2: a Verifier
        fed by this node took the authority's chains; a hosted authority's feed is its own,
        due only while a restore of node.db holds it: review 65o, feed 2)."""
        hosted = self._stored.hosted_authority()
        if hosted is not None and hosted.identifier == authority:
            return hosted.restore_hold() is not None
        return self._stored.wallet.sync_due(authority, now=now)

    def close(self) -> None:
        """Close the node's vault and store: every later call through it (or its
        `Authority`, or a `Verifier` it feeds) is a StorageError (open the node again). Closed
        inside a `serve` block, the running node refuses every request (Denied) and every use
        (ConfigError) until the block ends."""
        self._closed = True
        if self._running is not None:  # it answers nothing from now on (review 62h, api 7)
            self._running._closed()
        self._handle.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Node({self.name!r})"


def revoke_link(
    node: StoredNode,
    ref: str,
    link: bytes,
    *,
    chain: bytes,
    authority: Identifier,
    reason: str,
    clock: Clock,
) -> int:
    """`Node.revoke` of link `link` of `chain` (any of its links) by local identity `ref`,
    with `authority`, on this machine or reached over the network as the node trusts it: the
    one call of `troth revoke link` (review 48p, cligaps 1: the CLI reached only authorities
    on this machine). The same outcome as `Node.revoke`: the feed entry's seq once this
    node's copy of the feed holds it, the revocation recorded, a daemon running `node` told;
    else StorageError saying the link is revoked. `node` stays open."""
    return Node(node, clock)._revoke(ChainLink(chain, link, authority), ref, reason)
