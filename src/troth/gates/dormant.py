"""The node services declared by the bundles a store's table holds but that did not load
(docs/policy.md, "Services"; review 57a, gates 1).

A service a bundle declares is decided by Cedar and its built-in rule; one no bundle declares
by the rule alone. A table's bundle that did not load at a reload — expired or not yet valid by
the clock, its policies not checked (PolicyNotChecked: the validating child did not start), or
refused by this troth — is not active, so it declared nothing: a node restarted then let every
member call, on its built-in rule alone, a service the bundle governed (and denied before the
restart). Its services stay declared instead, so they stay under Cedar, which denies while no
bundle of its authority is in force; deny when in doubt, as for a bundle held back (review
54p). Read from the bundle's claims (the node's own table: verified when stored). Not for a
bundle of an authority the node no longer trusts: that one speaks for nothing here.
"""

from __future__ import annotations

from troth.errors import PolicyError
from troth.gates.bundles import bundle_claims

__all__ = ["DormantServices"]


class DormantServices:
    """Per authority (its identifier's digest), the services its table bundle, not loaded,
    declares."""

    __slots__ = ("_declared",)

    def __init__(self) -> None:
        self._declared: dict[bytes, frozenset[str]] = {}

    def note(self, authority: bytes, data: bytes, *, trusted: bool = True) -> None:
        """The table's bundle `data` of `authority` did not load: its services stay declared
        (not when it was refused for its authority, no longer `trusted`)."""
        try:
            services = frozenset(bundle_claims(data).services)
        except PolicyError:  # no claims to read: it declares nothing anyone can say
            services = frozenset()
        if services and trusted:
            self._declared[authority] = services
        else:
            self._declared.pop(authority, None)

    def drop(self, authority: bytes) -> None:
        """`authority`'s table bundle loaded, or another took its place."""
        self._declared.pop(authority, None)

    def declares(self, service: str, authority: bytes | None = None) -> bool:
        """Whether a bundle not loaded (of `authority`; None: of any) declares `service`."""
        if authority is not None:
            return service in self._declared.get(authority, ())
        return any(service in services for services in list(self._declared.values()))
