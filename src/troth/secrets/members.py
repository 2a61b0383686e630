"""What a lease is filed and revoked under: the account of a chain, its members (the rows
`revoke_for_feed` looks up) and its hash (`ChainHashes`, the book's cache); split from
troth.secrets.book (which re-exports the first)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Final

from troth.credentials import VerifiedCredential
from troth.crypto import sha256
from troth.errors import SecretError
from troth.identity import Identifier
from troth.secrets.lease import check_secret_name

__all__ = [
    "CREDENTIAL_MEMBER",
    "IDENTITY_MEMBER",
    "MAX_CHAIN_HASH_CACHE_BYTES",
    "ROOT_MEMBER",
    "ChainHashes",
    "chain_members",
    "delegators",
    "lease_account",
    "printable_name",
    "standing_member",
]


CREDENTIAL_MEMBER: Final = b"\x01"
IDENTITY_MEMBER: Final = b"\x02"
ROOT_MEMBER: Final = b"\x03"
"""The kind of a chain's member row naming its authority (the root) and its actor, the agent
that presented it: `ROOT_MEMBER || authority digest || actor digest` (review 31b, secrets 3;
review 32a, secrets 1: a root has standing over the actors of its chains, not their
delegators)."""


def standing_member(authority: Identifier, actor: Identifier) -> bytes:
    """The member row saying that `authority` justified a chain `actor` presented here."""
    return ROOT_MEMBER + authority.digest + actor.digest


def chain_members(credential: VerifiedCredential) -> list[bytes]:
    """What revokes a chain: each link's hash, each issuer and subject (tagged by kind); and
    the authority it is justified under with the agent that presents it (`ROOT_MEMBER`: that
    authority's feed has standing over that agent, review 31b, secrets 3; its delegators are
    judged by it in its chains only, review 32a, secrets 1)."""
    members: dict[bytes, None] = {}
    for link in credential.links:
        members[CREDENTIAL_MEMBER + link.hash] = None
        members[IDENTITY_MEMBER + link.issuer.digest] = None
        members[IDENTITY_MEMBER + link.subject.digest] = None
    members[standing_member(credential.authority, credential.actor)] = None
    return list(members)


def printable_name(name: str) -> str | None:
    """A secret name as the caller sent it, for the audit, if it is a valid name at all."""
    try:
        return check_secret_name(name)
    except SecretError:
        return None


def lease_account(credential: VerifiedCredential) -> Identifier:
    """The account a lease is filed under and whose quota it spends: the subject of the
    chain's first link, the member its authority credentialed. A member's delegates share it:
    delegates are minted offline for free, so a quota per actor would bound nothing."""
    return credential.links[0].subject


def delegators(credential: VerifiedCredential) -> tuple[Identifier, ...]:
    """Who delegated to the actor, nearest first: the issuers of the delegation links."""
    links = credential.links
    if len(links) == 1:  # a member's own credential: no delegator
        return ()
    return tuple(link.issuer for link in reversed(links[1:]))


MAX_CHAIN_HASH_CACHE_BYTES: Final = 16 * 1024 * 1024
"""Bytes of chains the book's cache of chain hashes holds at most (the least recently used
evicted first): a chain may be `limits.MAX_CHAIN_BYTES` (128 KiB), so a cache bounded by
entries alone (1,024) could hold 128 MiB (review 45i, secrets 3)."""


class ChainHashes:
    """SHA-256 of chains, remembered for those used last (the book's cache: an agent leases,
    renews and forwards with the same chain many times), at most `max_bytes` of chains held,
    the least recently used evicted first; a chain larger than that is never held. Iterating
    gives the chains held (least recently used first)."""

    def __init__(self, max_bytes: int = MAX_CHAIN_HASH_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self._hashes: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()  # a broker may be called from several threads

    def digest(self, chain: bytes) -> bytes:
        """SHA-256 of `chain`."""
        with self._lock:
            found = self._hashes.get(chain)
            if found is not None:
                self._hashes.move_to_end(chain)
                return found
        digest = sha256(chain)
        if len(chain) > self.max_bytes:
            return digest
        with self._lock:
            if chain not in self._hashes:
                self.held_bytes += len(chain)
            self._hashes[chain] = digest
            while self.held_bytes > self.max_bytes:
                evicted, _ = self._hashes.popitem(last=False)
                self.held_bytes -= len(evicted)
        return digest

    def __iter__(self) -> Iterator[bytes]:
        with self._lock:
            return iter(list(self._hashes))

    def __len__(self) -> int:
        return len(self._hashes)
