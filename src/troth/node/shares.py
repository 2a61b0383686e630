"""Each authority's share of a node-wide pool (docs/protocols.md, "Shares of node-wide pools";
review 21): the requests running, a published MCP server's sessions, the trace submissions in
progress, the relay names, the policy subscriptions and the bytes of incomplete fragmented
messages (a pool counted in bytes: `size`; review 23b) are bounded node-wide, and an authority
the node trusts mints members for free, so first come, first served would let one authority's
members take a whole pool and leave every other authority's members refused.

A place counts against the authorities at the roots of its holder's chains (`authorities_of`;
a peer showing no chain — a stranger, an anchor itself — counts against one pseudo-authority,
`STRANGERS`, and a local caller against another, `LOCAL`, so strangers filling a pool leave
the node's operator its share). A pool takes one more place while it holds fewer than its
bound; at or past it, only for a holder one of whose authorities holds fewer than its share:
the bound split evenly between the authorities the node trusts, the strangers and the local
callers. So whoever fills a pool first fills at most its bound, every other authority's
members still find their share, and a pool holds at most twice its bound (each place past it
is within the share of an authority: n shares of bound // n; no place is taken past twice the
bound). The per-member and
per-connection bounds of each pool apply as before.

Sans-IO: a pool either keeps a `Shares` and takes and releases its places (places that come
and go with requests), or counts the places it holds when one more is asked for (`counted`:
places kept in a table of its own).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Final

from troth.node.access import Caller, PeerCaller

__all__ = ["LOCAL", "STRANGERS", "Shares", "authorities_of"]

STRANGERS: Final = b""
"""The pseudo-authority of a peer showing no chain (a stranger, an anchor)."""
LOCAL: Final = b"local"
"""The pseudo-authority of a local caller (no authority digest is 5 bytes long)."""
_PSEUDO: Final = 2  # the shares of STRANGERS and LOCAL


def authorities_of(caller: Caller) -> frozenset[bytes]:
    """The authorities (digests) at the roots of a caller's verified chains; {STRANGERS} when
    a peer shows none (dropped, untrusted chains name none), {LOCAL} for a local caller."""
    if not isinstance(caller, PeerCaller):
        return _LOCAL
    roots = frozenset(c.authority.digest for c in caller.peer.credentials)
    return roots or _STRANGERS


_LOCAL: Final = frozenset({LOCAL})
_STRANGERS: Final = frozenset({STRANGERS})


class Shares:
    """The places of one pool and how many each authority holds (module docstring). `trusted`
    is the number of authorities the node trusts now."""

    def __init__(self, trusted: Callable[[], int]) -> None:
        self.trusted = trusted
        self.places = 0
        """Places held now, in all."""
        self._held: dict[Hashable, int] = {}  # (a dict: Counter's missing key and delete are
        # Python calls, made for each fragment a node reassembles: review 55h, bulk)

    @classmethod
    def counted(cls, trusted: Callable[[], int], held: Iterable[frozenset[bytes]]) -> Shares:
        """The shares of a pool whose places are held by `held` (each place's authorities;
        none: a place that counts against no authority, such as a name kept across a restart)."""
        shares = cls(trusted)
        for authorities in held:
            shares.take(authorities)
        return shares

    def room(self, authorities: Iterable[Hashable], bound: int, size: int = 1) -> bool:
        """Whether a holder counting against `authorities` may take `size` more places of a
        pool bounded by `bound`: within the bound, anyone; past it, one of whose authorities
        stays within its share (module docstring). A place is 1 (a request, a name); a pool
        of bytes (the node's reassembly memory, troth.node.channels) takes `size` at once."""
        after = self.places + size
        if after <= bound:
            return True
        if after > 2 * bound:  # the most any pool holds (when the authorities trusted
            return False  # change, or places are held by none: names kept across a restart)
        share = self.share(bound)
        held = self._held
        return any(held.get(authority, 0) + size <= share for authority in authorities)

    def share(self, bound: int) -> int:
        """Each authority's share of a pool bounded by `bound`: the bound split evenly between
        the authorities trusted, the strangers and the local callers (at least 1)."""
        return max(1, bound // (self.trusted() + _PSEUDO))

    def held(self, authority: Hashable) -> int:
        """The places `authority` holds now."""
        return self._held.get(authority, 0)

    def take(self, authorities: Iterable[Hashable], size: int = 1) -> None:
        """`size` places are taken, counting against `authorities`."""
        self.places += size
        held = self._held
        for authority in authorities:
            held[authority] = held.get(authority, 0) + size

    def release(self, authorities: Iterable[Hashable], size: int = 1) -> None:
        """`size` places taken with `authorities` are given back (counts at zero are
        forgotten)."""
        self.places -= size
        held = self._held
        for authority in authorities:
            left = held.get(authority, 0) - size
            if left > 0:
                held[authority] = left
            else:
                held.pop(authority, None)

    def holders(self) -> int:
        """How many authorities hold places now (what the counts keep)."""
        return len(self._held)
