"""Authorities as a node reaches them (docs/protocols.md, "Nodes"): the one it hosts, one
hosted by another node on this machine (address `node:NAME`), or a remote one (a route, over
a secure channel: the runtime). One implementation of each step — finding a local authority,
a ticket's address, enrolling, refreshing, syncing a feed, announcing a rotation — used by the
CLI, the runtime and the demo.

Everything here is synchronous storage work: async code runs it off the event loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from troth.authority import Authority, Ticket
from troth.authority.client import (
    enroll_request,
    refresh_request,
    rotated_request,
    ticket_authority,
)
from troth.credentials import VerifiedCredential, VerifiedFeed
from troth.credentials.wallet import Announcement
from troth.errors import ConfigError, DecodeError, NotFound, TrothError
from troth.identity import Identifier
from troth.node.config import NodeConfig
from troth.node.home import read_private_file
from troth.node.node import Node, list_nodes, node_dir, open_node

__all__ = [
    "LOCAL_PREFIX",
    "announce_here",
    "announce_locally",
    "enroll_locally",
    "home_of",
    "is_local",
    "local_authority",
    "parse_ticket",
    "refresh_locally",
    "sync_local_feed",
    "ticket_address",
]

LOCAL_PREFIX: Final = "node:"
"""The address of an authority hosted by a node on this machine: `node:NAME`."""


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
    The node hosting it stays open inside the `with` block."""
    if beside is not None:
        with contextlib.suppress(NotFound):
            if (authority := beside.authority()).identifier == identifier:
                yield authority
                return
    names = [c.name for c in list_nodes(home) if beside is None or c.name != beside.name]
    if hint:
        first = hint[len(LOCAL_PREFIX) :] if is_local(hint) else hint
        names.sort(key=lambda n: n != first)
    for name in names:
        with contextlib.ExitStack() as stack:
            node = stack.enter_context(open_node(name, home=home))
            try:
                authority = node.authority()
            except NotFound:
                continue
            if authority.identifier == identifier:
                yield authority
                return
    raise NotFound(f"no node on this machine hosts authority {identifier}")


def enroll_locally(node: Node, ticket: Ticket, identity: str, *, now: int) -> VerifiedCredential:
    """Redeem `ticket` (address `node:NAME`) for local `identity` with the authority on this
    machine: hold the credential, trust the authority and hold its feed."""
    authority_id = ticket_authority(ticket, now=now)
    _local_name(ticket.address)
    request = enroll_request(node.identities, identity, ticket, now=now)
    with local_authority(home_of(node), authority_id, hint=ticket.address, beside=node) as host:
        chain = host.enroll(request, now=now)
        held = node.wallet.hold(identity, chain.encode(), now=now)
        node.wallet.trust(authority_id, ticket.address, now=now)
        node.wallet.sync_feed(authority_id, lambda since: host.feed(now=now, since=since), now=now)
    return held


def refresh_locally(
    node: Node, identity: str, authority: Identifier, *, address: str | None, now: int
) -> VerifiedCredential:
    """A fresh member credential for `identity` from `authority` on this machine (held)."""
    request = refresh_request(node.identities, identity, authority, now=now)
    with local_authority(home_of(node), authority, hint=address, beside=node) as host:
        chain = host.refresh(request, now=now)
    return node.wallet.hold(identity, chain.encode(), now=now)


def sync_local_feed(node: Node, authority: Identifier, *, address: str, now: int) -> VerifiedFeed:
    """Bring the held feed of `authority` on this machine up to date (stored page by page)."""
    with local_authority(home_of(node), authority, hint=address, beside=node) as host:
        return node.wallet.sync_feed(
            authority, lambda since: host.feed(now=now, since=since), now=now
        )


def announce_locally(
    node: Node, ref: str, authority: Identifier, *, address: str | None, now: int
) -> int | None:
    """Announce `ref`'s rotated history to `authority` on this machine: its supersession's seq."""
    request = rotated_request(node.identities, ref, authority, now=now)
    with local_authority(home_of(node), authority, hint=address, beside=node) as host:
        return host.rotated(request, now=now)


def announce_here(node: Node, ref: str, *, now: int) -> tuple[list[Announcement], list[Identifier]]:
    """Announce `ref`'s rotated history to the authorities on this machine it has not told yet;
    the outcomes, and the authorities reached only over the network (still pending)."""
    changes, authorities = node.wallet.unannounced(ref)
    routes = node.wallet.trusted()
    done: list[Announcement] = []
    remote: list[Identifier] = []
    for authority in authorities:
        address = routes.get(authority)
        try:
            seq = announce_locally(node, ref, authority, address=address, now=now)
            done.append(node.wallet.mark_announced(ref, authority, changes, seq))
        except NotFound:
            if address is not None and not is_local(address):
                remote.append(authority)
            else:
                done.append(Announcement(ref, authority, changes, error="no route to it is known"))
        except TrothError as exc:
            done.append(Announcement(ref, authority, changes, error=str(exc)))
    return done, remote
