"""What a message source may reach (docs/protocols.md, "Routing", default deny).

One type for every source, TCP connections and channel ends alike: a fixed set of addresses
(what a listener or a channel's policy grants), whole address kinds (`relay`), and a bounded
LRU of reply paths (the return addresses of what was sent through the source, and the channel
ends created for it). A reply path in use stays; the least recently used is forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Set as AbstractSet

from troth.routing.address import Address

__all__ = ["AllowSet", "AllowSetSource"]


class AllowSet:
    """Fixed addresses + address kinds + a bounded LRU of reply paths + the endpoints held
    (`hold`: the channel ends that run over a connection, never pushed out by other reply
    paths; review 41b, reply paths 1)."""

    __slots__ = ("_cut", "_fixed", "_held", "_kinds", "_replies", "max_reply_paths")

    def __init__(
        self,
        addresses: frozenset[Address] = frozenset(),
        kinds: frozenset[str] = frozenset(),
        *,
        max_reply_paths: int,
    ) -> None:
        if max_reply_paths < 1:
            raise ValueError("an allow-set keeps at least one reply path")
        self._fixed: frozenset[Address] = addresses
        self._kinds = kinds
        self._replies: OrderedDict[Address, None] = OrderedDict()
        self._held: set[Address] = set()
        self._cut: OrderedDict[Address, None] = OrderedDict()  # forgotten by `forget_each`
        self.max_reply_paths = max_reply_paths

    def allows(self, address: Address) -> bool:
        """Whether a message from this source may go to `address` (a reply path hit is
        refreshed, so paths in use are never the ones forgotten)."""
        if address in self._fixed or address in self._held:
            return True
        replies = self._replies
        if address in replies:
            replies.move_to_end(address)
            return True
        return address.kind in self._kinds

    def allow(self, address: Address) -> None:
        """Remember a reply path (the least recently used goes when the LRU is full)."""
        replies = self._replies
        if self._cut:
            self._cut.pop(address, None)
        if address in self._fixed or address in self._held:
            return
        if address in replies:
            replies.move_to_end(address)
            return
        if len(replies) >= self.max_reply_paths:
            replies.popitem(last=False)
        replies[address] = None

    def hold(self, address: Address) -> None:
        """Allow `address` until `forget` (an endpoint that lives as long as its owner says,
        such as a channel end: the LRU of reply paths does not push it out, so what others
        send cannot cut it off; its owner forgets it when it goes)."""
        self._replies.pop(address, None)
        self._cut.pop(address, None)
        self._held.add(address)

    def forget(self, address: Address) -> None:
        """Forget a reply path or an endpoint held (it is gone); fixed addresses stay."""
        self._replies.pop(address, None)
        self._held.discard(address)

    def forget_each(self, addresses: AbstractSet[Address]) -> None:
        """`forget` every one of `addresses`, going through the smaller of them and what this
        set remembers (a relay cut off: each connection of the node forgets the refused
        owners' in one call, at the cost of what it holds, not of every address cut; review
        66f, relays 3). Those it did allow, and allows no more (not fixed, nor of a kind it
        allows: review 72c, notices 1), are remembered as cut off (`cut_from`)."""
        replies, held = self._replies, self._held
        if len(addresses) <= len(replies) + len(held):
            gone = [a for a in addresses if a in replies or a in held]
            for address in gone:
                replies.pop(address, None)
                held.discard(address)
        else:
            gone = [a for a in replies if a in addresses]
            for address in gone:
                del replies[address]
            more = [a for a in held if a in addresses]
            held.difference_update(more)
            gone += more
        cut, fixed, kinds = self._cut, self._fixed, self._kinds
        for address in gone:
            if address in fixed or address.kind in kinds:  # still allowed: not cut off
                continue  # (review 72c, notices 1)
            cut[address] = None
            cut.move_to_end(address)
            if len(cut) > self.max_reply_paths:
                cut.popitem(last=False)

    def cut_from(self, address: Address) -> bool:
        """Whether `address` was allowed and `forget_each` took it (a relay's cut), leaving no
        other way this set allows it, and not allowed again since: a sender's channel still
        running through it learns its way is gone (a no-route notice, troth.node.no_route;
        review 71s, relaywait 1). At most `max_reply_paths` are kept, the oldest cut forgotten
        first."""
        return address in self._cut

    def permit(self, address: Address) -> None:
        """Add a fixed address (never forgotten by the LRU): e.g. a relayed node's listener."""
        self._fixed = self._fixed | {address}
        self._replies.pop(address, None)
        self._cut.pop(address, None)

    def grant(self, addresses: frozenset[Address]) -> None:
        """Replace the fixed addresses (a channel's access, recomputed after a refresh)."""
        self._fixed = addresses

    @property
    def reply_paths(self) -> int:
        """How many reply paths are remembered now."""
        return len(self._replies)

    @property
    def held(self) -> int:
        """How many endpoints are held now (`hold`)."""
        return len(self._held)


class AllowSetSource:
    """The Source methods of anything that keeps what it allows in an AllowSet (connections,
    channel ends): `allows`, `allow`, `hold`, `forget` and `cut_from` are the allow-set's own,
    bound once (they run for every routed message, so no extra call)."""

    allowed: AllowSet
    allows: Callable[[Address], bool]
    allow: Callable[[Address], None]
    hold: Callable[[Address], None]
    forget: Callable[[Address], None]
    cut_from: Callable[[Address], bool]

    def _use(self, allowed: AllowSet) -> None:
        self.allowed = allowed
        self.allows, self.allow, self.forget = allowed.allows, allowed.allow, allowed.forget
        self.hold, self.cut_from = allowed.hold, allowed.cut_from
