"""A node's local identity as `IdentityService` hands it out (`LocalIdentity`: the verified
history and the handles of its primary and committed next primary key), and the error a
creation under a name already taken raises (`IdentityExists`)."""

from __future__ import annotations

from dataclasses import dataclass

from troth.errors import ConflictError
from troth.identity.history import VerifiedIdentity
from troth.identity.identifier import Identifier
from troth.vault import KeyHandle

__all__ = ["IdentityExists", "LocalIdentity"]


class IdentityExists(ConflictError):
    """A local identity of that name exists already: `identifier` names it."""

    def __init__(self, name: str, identifier: Identifier) -> None:
        self.name = name
        self.identifier = identifier
        super().__init__(f"an identity named {name!r} exists: {identifier}")


@dataclass(frozen=True, slots=True, init=False)
class LocalIdentity:
    """An identity whose primary key (and committed next primary key) this node's vault holds."""

    name: str | None
    identity: VerifiedIdentity
    primary_key: KeyHandle
    next_key: KeyHandle

    def __init__(
        self,
        name: str | None,
        identity: VerifiedIdentity,
        primary_key: KeyHandle,
        next_key: KeyHandle,
    ) -> None:
        # frozen: the fields are set through their slots (the generated __init__ goes through
        # object.__setattr__, twice as slow; a batch makes one per identity)
        _set_local_name(self, name)
        _set_local_identity(self, identity)
        _set_local_primary(self, primary_key)
        _set_local_next(self, next_key)

    @property
    def identifier(self) -> Identifier:
        return self.identity.identifier


_set_local_name = vars(LocalIdentity)["name"].__set__  # the slot descriptors
_set_local_identity = vars(LocalIdentity)["identity"].__set__
_set_local_primary = vars(LocalIdentity)["primary_key"].__set__
_set_local_next = vars(LocalIdentity)["next_key"].__set__
