"""The bundles a store's table holds that did not load at a reload (docs/policy.md, "Bundles on
a node" and "Services"; review 57a, gates 1-3): refused for the time (expired, or not yet valid,
by the clock), their policies not checked (PolicyNotChecked: the validating child did not
start), or refused by this troth. Deny when in doubt, as for a bundle held back (review 54p):

- the node services such a bundle declares stay declared, so they stay under Cedar, which
  denies while no bundle of its authority is in force (gates 1: a node restarted then found
  nothing declaring them, and every member met the built-in rule alone: a call the bundle
  forbade, denied before the restart, was allowed after it);
- a revision higher than the one active, stored by another process (`troth policy push`), puts
  the active one out of force (gates 2: the node went on deciding by the older revision, which
  the table says the newer one replaced, for as long as the newer could not be checked), and a
  node hands it to no one (gates 3: it answered other nodes' pulls with it, and they decided
  by it).

Read from the bundle's claims and the table's stamp (the node's own table: verified when
stored). Not for a bundle of an authority the node no longer trusts: it speaks for nothing
here.
"""

from __future__ import annotations

from troth.crypto import sha256
from troth.errors import PolicyError, PolicyFailure
from troth.gates.bundles import bundle_claims

__all__ = ["DormantBundles"]


class DormantBundles:
    """Per authority (its identifier's digest), its table bundle that did not load: the
    services it declares, its revision, its digest and why it did not load."""

    __slots__ = ("_declared", "_stored")

    def __init__(self) -> None:
        self._declared: dict[bytes, frozenset[str]] = {}
        self._stored: dict[bytes, tuple[int, bytes, PolicyFailure]] = {}

    def note(self, authority: bytes, data: bytes, revision: int, why: PolicyFailure) -> None:
        """The table's bundle `data` of `authority`, at `revision` (its stamp's), did not load
        for `why` (UNTRUSTED_AUTHORITY: it is forgotten)."""
        if why is PolicyFailure.UNTRUSTED_AUTHORITY:
            self.drop(authority)
            return
        try:
            services = frozenset(bundle_claims(data).services)
        except PolicyError:  # no claims to read: it declares nothing anyone can say
            services = frozenset()
        self._declared[authority] = services
        self._stored[authority] = (revision, sha256(data), why)

    def drop(self, authority: bytes) -> None:
        """`authority`'s table bundle loaded, or another took its place."""
        self._declared.pop(authority, None)
        self._stored.pop(authority, None)

    def declares(self, service: str, authority: bytes | None = None) -> bool:
        """Whether a bundle not loaded (of `authority`; None: of any) declares `service`."""
        if authority is not None:
            return service in self._declared.get(authority, ())
        return any(service in services for services in list(self._declared.values()))

    def ahead(self, authority: bytes, revision: int, digest: bytes) -> bool:
        """Whether `authority`'s table holds a bundle that did not load in place of the active
        one (of `revision` and `digest`): of a higher revision, or of that revision and another
        digest (the lower, which every node keeps: review 57j, gates 2, it left the one it
        replaced deciding). The active one is replaced, decides nothing and is handed to no one
        (gates 3: a node answered pulls with it)."""
        stored = self._stored.get(authority)
        return stored is not None and (
            stored[0] > revision or (stored[0] == revision and stored[1] != digest)
        )

    def unloaded(self) -> list[tuple[bytes, PolicyFailure]]:
        """Each authority whose table bundle did not load, and why (gates 4: `troth policy
        show` listed the loaded ones only, and said the node held none)."""
        return [(authority, stored[2]) for authority, stored in list(self._stored.items())]

    def check_active(self, authority: bytes, revision: int, digest: bytes) -> None:
        """PolicyError (why the stored one did not load) when `authority`'s table holds a
        bundle that did not load in place of the active one, of `revision` and `digest`
        (`ahead`)."""
        stored = self._stored.get(authority)
        if stored is not None and self.ahead(authority, revision, digest):
            raise PolicyError(
                stored[2],
                f"revision {stored[0]} of digest {stored[1].hex()} is stored in place of "
                f"revision {revision} and did not load here: the one it replaced decides nothing",
            )
