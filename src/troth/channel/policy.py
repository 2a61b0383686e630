"""Which authenticated peers a channel admits. Default deny: a channel has no policy unless one
is given, and `DenyAll` admits nobody. Until the gates issue, policies are allow-lists of
identifiers or required credential attributes."""

from __future__ import annotations

from dataclasses import dataclass

from troth.channel.verification import VerifiedPeer
from troth.credentials import Attributes
from troth.identity import Identifier

__all__ = ["AllowIdentifiers", "AnyAuthenticatedIdentity", "AnyOf", "DenyAll", "RequireAttributes"]


class DenyAll:
    """Admit nobody."""

    def admit(self, peer: VerifiedPeer) -> bool:
        """Whether this policy admits `peer`."""
        return False


@dataclass(frozen=True, slots=True)
class AllowIdentifiers:
    """Admit the peers with these identifiers."""

    identifiers: frozenset[Identifier]

    def admit(self, peer: VerifiedPeer) -> bool:
        """Whether this policy admits `peer`."""
        return peer.identifier in self.identifiers


@dataclass(frozen=True, slots=True)
class RequireAttributes:
    """Admit a peer holding a verified credential (from the channel's trust anchors) whose
    attributes cover `attributes`; `Attributes()` admits any member. Credentials that carry
    caveats do not count until the gates evaluate caveats: fail closed."""

    attributes: Attributes

    def admit(self, peer: VerifiedPeer) -> bool:
        """Whether this policy admits `peer`."""
        wanted = self.attributes
        return any(
            not c.caveats and wanted.first_excess_over(c.attributes) is None
            for c in peer.credentials
        )


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Admit a peer that any of `policies` admits."""

    policies: tuple[AllowIdentifiers | RequireAttributes | AnyAuthenticatedIdentity, ...]

    def admit(self, peer: VerifiedPeer) -> bool:
        """Whether this policy admits `peer`."""
        return any(p.admit(peer) for p in self.policies)


class AnyAuthenticatedIdentity:
    """Admit any peer that proved an identity (history, attested key), with no credentials:
    only for services that authorize per request themselves (enrollment with a ticket)."""

    def admit(self, peer: VerifiedPeer) -> bool:
        """Whether this policy admits `peer`."""
        return True
