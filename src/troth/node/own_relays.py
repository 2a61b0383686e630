"""The relay names a node created at other nodes (`relay create`), kept across its own restarts
(docs/protocols.md, "Reconnecting"; review 44d, relays 1).

A node without a listening port is reachable only through the relay names it created. Its
links create them again whenever a channel to their relay node comes back; kept in memory
only, they were lost with the process: a member killed or restarted came back with no relay
anywhere, and the relay node freed the names once their grace period ran out. They are kept in
`<node dir>/own-relays.json`, an identifier book (troth.node.books) mapping each relay's full
route (`/tcp/hub:4000/relay/b`) to the identity its link expects at the relay node (its pin),
written before `relay create` answers; on start each kept name goes back into its link, pinned
as before, and the link connects and creates it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from troth import limits
from troth.errors import ConfigError, RoutingError, StorageError
from troth.identity import Identifier
from troth.node.books import IdentifierBook
from troth.node.links import Links
from troth.routing import format_route, parse_route

__all__ = ["OwnRelays", "kept_relays", "resume_relays"]


def _relay_route(text: str) -> str:
    """The normal text of a route ending in /relay/NAME (RoutingError otherwise)."""
    route = parse_route(text)
    if len(route) < 2 or route[-1].kind != "relay":
        raise RoutingError(f"{text!r} must end with /relay/NAME after the route to a node")
    return format_route(route)


class OwnRelays(IdentifierBook):
    """`<node dir>/own-relays.json`: {"version": 1, "relays": {relay route: pinned identifier}}."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            field="relays",
            what="book of own relays",
            max_entries=limits.MAX_OWN_RELAYS,
            max_bytes=limits.MAX_OWN_RELAYS_FILE_BYTES,
            key=_relay_route,
        )

    def save(self, entries: Mapping[str, Identifier]) -> None:
        """Keep `entries` (StorageError naming the file when it cannot be written: a full
        disk, a read-only home; the relay works until the node stops, but is not kept)."""
        try:
            super().save(entries)
        except OSError as exc:
            raise StorageError(
                f"cannot keep the relay names in {self.path}: {exc} (they are not created "
                "again after a restart until it can be written)"
            ) from exc


def kept_relays(links: Links, *, adding: str | None = None) -> dict[str, Identifier]:
    """What the book keeps for `links`: each relay name of a link with a pin. `adding` (a relay
    route about to be created): RoutingError when it is not a route the book reads back (a
    valid name, at most MAX_ROUTE_LENGTH hops: a link at MAX_ROUTE_LENGTH hops made one more,
    a name no sender could address, kept in a book the node then refused at its start: review
    45h, relays 1); ConfigError when it would make more than the book holds."""
    if adding is not None:
        _relay_route(adding)
    kept = {
        f"{link.route}/relay/{name}": pin
        for link in links.links.values()
        if (pin := link.pin) is not None
        for name in link.relays
    }
    if adding is not None and adding not in kept and len(kept) >= limits.MAX_OWN_RELAYS:
        raise ConfigError(
            f"this node keeps {len(kept)} relay names, the most it keeps "
            f"(limits.MAX_OWN_RELAYS): {adding} is not created"
        )
    return kept


def resume_relays(links: Links, kept: dict[str, Identifier]) -> None:
    """Put each kept name back into its link, pinned as before, and have every link that holds
    one and is idle connect (it creates its relays again, then reconnects on its own)."""
    for text, pin in kept.items():
        relay = parse_route(text)
        link = links.link(format_route(relay[:-1]))
        link.relays.add(relay[-1].value)
        if link.pin is None:
            link.peer = pin  # a link only to relays: the identity that answered there first
    for key, link in list(links.links.items()):
        if link.relays:
            links.resume(key)
