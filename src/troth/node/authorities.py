"""Authorities as a node reaches them (docs/protocols.md, "Nodes"): the one it hosts, one
hosted by another node on this machine (address `node:NAME`), or a remote one (a route, over
a secure channel: the runtime). One implementation of each step — finding a local authority,
a ticket's address, enrolling, refreshing, syncing a feed, announcing a rotation — used by the
CLI, the runtime and the demo.

Everything here is synchronous storage work: async code runs it off the event loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from troth import enrollment
from troth.authority import Authority, Ticket
from troth.authority.client import refresh_request, rotated_request, ticket_authority
from troth.authority.core import NOT_ITS_OWN_MEMBER
from troth.authority.tickets import LOCAL_PREFIX, check_address
from troth.clock import Clock
from troth.credentials import VerifiedCredential, VerifiedFeed
from troth.credentials.wallet import Announcement
from troth.enrollment import Enrolled
from troth.errors import (
    AuthorityError,
    ConfigError,
    DecodeError,
    NotFound,
    StorageError,
    TrothError,
)
from troth.identity import Identifier
from troth.node.config import NodeConfig
from troth.node.forked_refusal import fork_explained, refused_as_fork
from troth.node.home import read_private_file
from troth.node.node import Node, list_nodes, node_dir, open_node
from troth.storage import PendingEnrollmentRecord

__all__ = [
    "INTERRUPTED",
    "LOCAL_PREFIX",
    "FeedOutcome",
    "LocalEnrollment",
    "LocalRefresh",
    "announce_here",
    "announce_locally",
    "drop_unusable",
    "enroll_locally",
    "home_of",
    "interrupted",
    "is_local",
    "local_authority",
    "parse_ticket",
    "refresh_locally",
    "resume_locally",
    "rotated_here",
    "sync_from",
    "sync_local_feed",
    "ticket_address",
    "unusable",
]

INTERRUPTED: Final = (
    "the enrollment was not completed; it is recorded and resumes with the same ticket or with "
    "troth credential refresh --identity {name}"
)
"""What a failed enrollment adds to its storage error: nothing is lost (docs/storage.md)."""


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """The feed sync that follows a committed enrollment or refresh. A failure is a warning:
    what was committed stays done, and the next refresh or maintenance round syncs again."""

    synced: bool
    count: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As `--json` prints it."""
        if self.synced:
            return {"synced": True, "count": self.count}
        return {"synced": False, "error": self.error}


@dataclass(frozen=True, slots=True)
class LocalEnrollment:
    """An enrollment completed with an authority on this machine, and the feed sync after it."""

    enrolled: Enrolled
    feed: FeedOutcome

    def to_json(self) -> dict[str, Any]:
        """As `--json` prints it."""
        return {**self.enrolled.to_json(), "feed": self.feed.to_json()}


@dataclass(frozen=True, slots=True)
class LocalRefresh:
    """A fresh member credential from an authority on this machine, the feed sync after it, and
    the interrupted enrollments resumed first."""

    credential: VerifiedCredential
    feed: FeedOutcome
    resumed: tuple[Enrolled, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """As `--json` prints it."""
        return {
            **self.credential.to_json(),
            "feed": self.feed.to_json(),
            "resumed": [r.to_json() for r in self.resumed],
        }


def home_of(node: Node) -> Path:
    """The troth home `node` lives in."""
    return node.path.parent.parent


def is_local(address: str) -> bool:
    """Whether `address` names a node on this machine (`node:NAME`) rather than a route."""
    return address.startswith(LOCAL_PREFIX)


def _local_name(address: str) -> str:
    if not is_local(address):
        raise ConfigError(f"address {address!r} is neither node:NAME nor a route")
    return address[len(LOCAL_PREFIX) :]


def parse_ticket(text: str) -> Ticket:
    """A ticket from its text (DecodeError saying it is not a troth ticket)."""
    try:
        return Ticket.parse(text)
    except DecodeError as exc:
        raise DecodeError(f"not a troth ticket ({exc})", exc.problem) from None


def ticket_address(home: Path, name: str) -> str:
    """The address the tickets of the authority hosted by node `name` carry: the node's
    configured address (troth.node.config), whether or not it runs."""
    path = node_dir(home, name) / "node.json"
    if not path.is_file():
        raise NotFound(f"no node {name!r} in {home} (create it with: troth node create {name})")
    return NodeConfig.from_json(read_private_file(path), path).address()


@contextlib.contextmanager
def local_authority(
    home: Path, identifier: Identifier, *, hint: str | None = None, beside: Node | None = None
) -> Iterator[Authority]:
    """The authority `identifier` hosted on this machine: by `beside` itself, by the node
    `hint` names (`node:NAME` or NAME), else by whichever node hosts it (NotFound if none).
    The node hosting it stays open inside the `with` block. A node here whose configuration
    cannot be read is passed over: it failed the search, and a damaged node.json kept every
    rotation's supersession from the authorities here (review 69k, wave1 3)."""
    if beside is not None:
        authority = beside.hosted_authority()
        if authority is not None and authority.identifier == identifier:
            yield authority
            return
    configs = list_nodes(home, unreadable={})
    names = [c.name for c in configs if beside is None or c.name != beside.name]
    if hint:
        first = hint[len(LOCAL_PREFIX) :] if is_local(hint) else hint
        names.sort(key=lambda n: n != first)
    for name in names:
        with contextlib.ExitStack() as stack:
            node = stack.enter_context(open_node(name, home=home))
            authority = node.hosted_authority()
            if authority is not None and authority.identifier == identifier:
                yield authority
                return
    raise NotFound(f"no node on this machine hosts authority {identifier}")


def interrupted(node: Node, identity: str, ticket: Ticket) -> list[PendingEnrollmentRecord]:
    """The enrollments of `identity` with this ticket that a crash interrupted (resumed by the
    next enrollment with the same ticket)."""
    return [p for p in node.wallet.pending_enrollments(identity) if p.ticket == str(ticket)]


def _send_to(host: Authority, clock: Clock) -> Callable[[bytes], bytes]:
    """Carry an enroll request to `host` (its clock read when the request arrives, as a remote
    authority's would be)."""
    return lambda request: host.enroll(request, now=clock.now()).encode()


def _synced(node: Node, host: Authority, clock: Clock) -> FeedOutcome:
    try:
        feed = sync_from(node, host, now=clock)
    except TrothError as exc:
        return FeedOutcome(False, error=str(exc))
    return FeedOutcome(True, feed.count)


def enroll_locally(
    node: Node,
    ticket: Ticket,
    identity: str,
    *,
    clock: Clock,
    authority_pin: str | None = None,
    over_copy: bool = False,
) -> LocalEnrollment:
    """Redeem `ticket` (address `node:NAME`) for local `identity` with the authority on this
    machine, recoverably (troth.enrollment): hold the credential, trust the authority, then
    sync its feed (a failed sync is reported, not raised: the enrollment committed).
    `authority_pin`, `over_copy`: see `troth.authority.client.check_ticket`."""
    authority_id = ticket_authority(ticket, now=clock.now())
    _local_name(ticket.address)
    with local_authority(home_of(node), authority_id, hint=ticket.address, beside=node) as host:
        try:
            enrolled = enrollment.enroll(
                node.identities,
                node.wallet,
                identity,
                ticket,
                clock=clock,
                send=_send_to(host, clock),
                authority_pin=authority_pin,
                over_copy=over_copy,
            )
        except StorageError as exc:
            raise StorageError(f"{exc} ({INTERRUPTED.format(name=identity)})") from None
        return LocalEnrollment(enrolled, _synced(node, host, clock))


def unusable(pending: PendingEnrollmentRecord) -> str | None:
    """Why `pending` can never complete (its ticket does not parse, or its address is neither
    `node:NAME` nor a route: what an earlier version recorded before it checked the address;
    review 45e, address 2; or it is an authority's own identity's: review 64h, enroll 3), or
    None."""
    if pending.identifier == pending.authority:
        return NOT_ITS_OWN_MEMBER
    try:
        Ticket.parse(pending.ticket)
        check_address(pending.address)
    except DecodeError as exc:
        return str(exc)
    return None


def drop_unusable(node: Node, identity: str) -> list[tuple[PendingEnrollmentRecord, str]]:
    """Forget `identity`'s pending enrollments that can never complete (`unusable`), each with
    why: `troth credential refresh` reports them dropped, as a running node's next round would
    (troth.node.membership), rather than "stays pending" (review 46, lead)."""
    dropped: list[tuple[PendingEnrollmentRecord, str]] = []
    for pending in node.wallet.pending_enrollments(identity):
        why = unusable(pending)
        if why is not None and node.wallet.forget_enrollment(pending):
            dropped.append((pending, why))
    return dropped


def resume_locally(
    node: Node,
    identity: str,
    *,
    clock: Clock,
    only: Collection[tuple[bytes, str]] | None = None,
) -> tuple[
    list[Enrolled],
    list[PendingEnrollmentRecord],
    list[tuple[PendingEnrollmentRecord, TrothError]],
]:
    """Resume `identity`'s interrupted enrollments with authorities on this machine; the
    others (remote authorities) are returned for the caller to send again over the network
    (a node's `enroll` with the same ticket resumes them). One that cannot complete now is
    returned with its error and stays pending (unless refused for good): it must not stop the
    identity's other enrollments or credentials. `only`: those records alone, by (authority
    digest, ticket) (a node's maintenance: the ones it chose this round, not those it backs
    off or gave up; review 40b, resume 3). Newest first: the records of one authority (one
    per ticket) recorded before one that completes are cleared with it and not sent; one
    refused or failing, the one before it is tried (review 61l, enrollment 1)."""
    resumed: list[Enrolled] = []
    remote: list[PendingEnrollmentRecord] = []
    failed: list[tuple[PendingEnrollmentRecord, TrothError]] = []
    completed: set[bytes] = set()  # authorities whose older records a completion cleared
    for pending in reversed(node.wallet.pending_enrollments(identity)):
        if not is_local(pending.address):
            remote.append(pending)
            continue
        if only is not None and (pending.authority, pending.ticket) not in only:
            continue
        if pending.authority in completed:
            continue
        authority = Identifier(pending.authority)
        try:
            with local_authority(
                home_of(node), authority, hint=pending.address, beside=node
            ) as host:
                resumed.append(
                    enrollment.resume(
                        node.identities,
                        node.wallet,
                        pending,
                        clock=clock,
                        send=_send_to(host, clock),
                    )
                )
            completed.add(pending.authority)
        except TrothError as exc:
            failed.append((pending, exc))
    return resumed, remote, failed


def refresh_locally(
    node: Node,
    identity: str,
    authority: Identifier,
    *,
    address: str | None,
    clock: Clock,
    resumed: tuple[Enrolled, ...] = (),
) -> LocalRefresh:
    """A fresh member credential for `identity` from `authority` on this machine (held), then
    its feed synced (reported, not raised)."""
    now = clock.now()
    request = refresh_request(node.identities, identity, authority, now=now)
    with local_authority(home_of(node), authority, hint=address, beside=node) as host:
        chain = host.refresh(request, now=clock.now())
        held = node.wallet.hold(identity, chain.encode(), now=clock.now(), authority=authority)
        return LocalRefresh(held, _synced(node, host, clock), resumed)


def sync_local_feed(
    node: Node, authority: Identifier, *, address: str, now: int | Clock
) -> VerifiedFeed:
    """Bring the held feed of `authority` on this machine up to date (stored page by page;
    with a Clock, the time is read for each page; a race with another process's sync is
    retried, not reported as a fork)."""
    with local_authority(home_of(node), authority, hint=address, beside=node) as host:
        return sync_from(node, host, now=now)


def sync_from(node: Node, host: Authority, *, now: int | Clock) -> VerifiedFeed:
    """Bring the feed `node` holds of authority `host` (open on this machine) up to date from
    it: page by page, each page verified before it is stored (`CredentialWallet.sync_feed`;
    with a Clock, the time is read for each page)."""

    def fetch(since: int) -> bytes:
        return host.feed(now=now if isinstance(now, int) else now.now(), since=since)

    return node.wallet.sync_feed(host.identifier, fetch, now=now)


def announce_locally(
    node: Node,
    ref: str,
    authority: Identifier,
    *,
    address: str | None,
    now: int,
    told: Callable[[Authority], None] | None = None,
) -> int | None:
    """Announce `ref`'s rotated history to `authority` on this machine: its supersession's seq.
    The nodes here then hold the supersession, as after a revocation: the home's other nodes
    that trust the authority are marked due a sync of its feed before its commit
    (`local_nodes_due`), then `told` (the runtimes served in this process) with the authority
    still open. They judged channels on the copy they held until their next poll or round, and
    a thief's copy of the history before the rotation leased at a running broker meanwhile
    (review 68p, cache 1). Asking the daemons running the other nodes to sync its feed
    (`tell_local_nodes`) is the caller's, once every authority here took it: a daemon that
    does not answer holds its asker 30 s (review 69d, notify 1)."""
    with local_authority(home_of(node), authority, hint=address, beside=node) as host:
        seq = rotated_here(node, host, ref, now=now)
        if seq is not None and told is not None:  # (once the marks' locks are let go)
            told(host)
    return seq


def rotated_here(node: Node, host: Authority, ref: str, *, now: int) -> int | None:
    """Announce `node`'s local identity `ref`'s rotated history to `host` (an authority open
    on this machine, `node`'s own hosted one too): its supersession's seq. The home's other
    nodes trusting it are marked due a sync of its feed before its commit
    (`local_nodes_due`; the marks cleared when it takes nothing); telling the nodes running
    is the caller's, after (`tell_local_nodes`: a daemon's from a thread of its own)."""
    from troth.node.localdue import local_nodes_due  # (it imports this module)

    request = rotated_request(node.identities, ref, host.identifier, now=now)
    with local_nodes_due(node, host.identifier, now=now) as due:
        try:
            seq = host.rotated(request, now=now)
        except AuthorityError:  # refused, or no supersession appended (its quota spent)
            due.clear()
            raise
        if seq is None:
            due.clear()
    return seq


def announce_here(
    node: Node, ref: str, *, now: int, told: Callable[[Authority], None] | None = None
) -> tuple[list[Announcement], list[Identifier]]:
    """Announce `ref`'s rotated history to the authorities on this machine it has not told yet;
    the outcomes, and the authorities reached only over the network (still pending). The
    nodes running here are told of each supersession (`announce_locally`, `told`), the daemon
    running `node` too: its feeds in memory are not the store's (review 68p, cache 1). The
    daemons are asked once every authority here took it, all at once (`tell_nodes_here`):
    asked between two authorities, each daemon not answering held the next authority's
    supersession back 30 s, ten of them five minutes, the thief's copy of the history admitted
    there meanwhile (review 69d, notify 1)."""
    from troth.node.traces import tell_nodes_here  # (it imports this module)

    changes, authorities = node.wallet.unannounced(ref)
    routes = node.wallet.trusted()
    done: list[Announcement] = []
    remote: list[Identifier] = []
    took: list[Identifier] = []
    try:
        for authority in authorities:
            address = routes.get(authority)
            try:
                seq = announce_locally(node, ref, authority, address=address, now=now, told=told)
                if seq is not None:  # (`feed.sync` of the daemons here, `node`'s too, after)
                    took.append(authority)
                done.append(node.wallet.mark_announced(ref, authority, changes, seq))
                with contextlib.suppress(TrothError):  # its feed now attests the new change
                    sync_local_feed(node, authority, address=address or "", now=now)
            except NotFound:
                if address is not None and not is_local(address):
                    remote.append(authority)
                else:
                    done.append(
                        Announcement(ref, authority, changes, error="no route to it is known")
                    )
            except TrothError as exc:
                if refused_as_fork(exc):  # review 64u, rotation 3: no retry can change it
                    # the identifier's text form, not the row's bytes (review 65j, forked 1)
                    identifier = Identifier(node.identities.find(ref).identifier)
                    error = fork_explained(exc, str(identifier))
                    done.append(Announcement(ref, authority, changes, error=error, forked=True))
                else:
                    done.append(Announcement(ref, authority, changes, error=str(exc)))
    finally:  # (the supersessions committed are told, whatever stopped the others)
        tell_nodes_here(node, took, hosting=True)
    return done, remote
