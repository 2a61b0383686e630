"""The typed results of the public API: what a node's identities are and what they hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from troth.credentials import Attributes, VerifiedCredential
from troth.errors import ArgumentError
from troth.identity import Identifier, VerifiedIdentity
from troth.kinds import check_kind, check_utf8, got

__all__ = ["Credential", "Identity"]

_ID_BYTES: Final = 32
"""A credential id's length (a SHA-256 hash)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An identity whose keys a node's vault holds: its local name and its identifier (the
    hash of its first change: it stays the same across rotations). One made by hand of
    fields of other types is an ArgumentError."""

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

    def __post_init__(self) -> None:
        """One made by hand of fields of other types is an ArgumentError: an `identifier` of
        a credential id's 32 bytes revoked that credential as an identity, others failed
        deep inside the calls that take an `Identity` (review 54n, api 3)."""
        if self.name is not None:
            check_utf8("Identity", "name", check_kind("Identity", "name", self.name, str, "a str"))
        check_kind("Identity", "identifier", self.identifier, Identifier, "an Identifier")
        check_kind("Identity", "changes", self.changes, int, "a whole number")
        check_kind("Identity", "key_type", self.key_type, str, "a str")
        check_kind("Identity", "history", self.history, bytes, "bytes")

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
    decided (a `Verifier` decides that, with its own trust anchors and revocation feeds). One
    made by hand of fields of other types is an ArgumentError."""

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

    def __post_init__(self) -> None:
        """One made by hand of fields of other types is an ArgumentError: its `chain`, `id`
        or `authority` failed deep inside `Verifier.verify`, `Node.hold`, `Node.revoke` and
        `Authority.revoke` (review 54n, api 4). Its values are the chain's to prove: a
        verifier reads only `chain`."""
        call = "Credential"
        check_kind(call, "chain", self.chain, bytes, "a chain's bytes")
        if len(check_kind(call, "id", self.id, bytes, "bytes")) != _ID_BYTES:
            raise ArgumentError(call, "id", f"{_ID_BYTES} bytes", f"{len(self.id)} bytes")
        for parameter in ("holder", "issuer", "authority"):
            check_kind(call, parameter, getattr(self, parameter), Identifier, "an Identifier")
        check_kind(call, "attributes", self.attributes, Attributes, "an Attributes")
        caveats = check_kind(call, "caveats", self.caveats, tuple, "a tuple of str")
        for caveat in caveats:
            if not isinstance(caveat, str):
                raise ArgumentError(call, "caveats", "a tuple of str", f"an item {got(caveat)}")
        for parameter in ("not_before", "expires_at", "links"):
            check_kind(call, parameter, getattr(self, parameter), int, "a whole number")

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
