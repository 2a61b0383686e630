"""The typed results of the public API: what a node's identities are and what they hold."""

from __future__ import annotations

from dataclasses import dataclass, field

from troth.credentials import Attributes, VerifiedCredential
from troth.identity import Identifier, VerifiedIdentity

__all__ = ["Credential", "Identity"]


@dataclass(frozen=True, slots=True)
class Identity:
    """An identity whose keys a node's vault holds: its local name and its identifier (the
    hash of its first change: it stays the same across rotations)."""

    name: str | None
    """The name it has on this node (None for an unnamed identity)."""
    identifier: Identifier
    """What others know it by (`T` + 64 hex digits; `.did` gives the did:troth form)."""
    changes: int
    """How many changes its history has (1 at creation, one more per rotation)."""
    key_type: str
    """The type of its current primary key (`ed25519` or `p256`)."""
    history: bytes = field(repr=False)
    """Its signed change history (CBOR), what another party verifies it by."""

    @classmethod
    def _of(cls, name: str | None, identity: VerifiedIdentity) -> Identity:
        return cls(
            name,
            identity.identifier,
            len(identity.changes),
            identity.current_key.key_type.label,
            identity.history,
        )

    def __str__(self) -> str:
        return f"{self.name} ({self.identifier})" if self.name else str(self.identifier)


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential chain as its holder keeps it: signatures and structure checked, trust not
    decided (a `Verifier` decides that, with its own trust anchors and revocation feeds)."""

    chain: bytes = field(repr=False)
    """The encoded chain: what the holder presents and a verifier checks."""
    id: bytes
    """The id of its last link: what a revocation names."""
    holder: Identifier
    """The identity the last link was issued to."""
    issuer: Identifier
    """Who issued the last link: the authority, or the delegator."""
    authority: Identifier
    """The authority at the root of the chain."""
    attributes: Attributes
    """What the holder may do (the last link's attributes)."""
    caveats: tuple[str, ...]
    """Conditions every use must meet (Cedar expressions, from every link)."""
    not_before: int
    """When the chain starts to be valid (Unix seconds)."""
    expires_at: int
    """When the chain expires (Unix seconds: the earliest expiry of its links)."""
    links: int
    """How many links the chain has (1: a member credential from the authority)."""

    @classmethod
    def _of(cls, checked: VerifiedCredential) -> Credential:
        last = checked.links[-1]
        return cls(
            checked.chain,
            last.hash,
            checked.actor,
            last.issuer,
            checked.authority,
            checked.attributes,
            checked.caveats,
            checked.not_before,
            checked.expires_at,
            len(checked.links),
        )
