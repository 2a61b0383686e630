"""What a wallet may choose from its stored rows: the rows whose chain is what the row says
(`CredentialWallet.best`, `CredentialWallet.presentable`; review 68j, wallet 1), and whether a
row's chain was issued before its authority rotated (moved from troth.credentials.wallet,
which re-exports them: review 68s, wallet 1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from troth.credentials.attributes import Attributes
from troth.credentials.format import STORED_LATEST, CredentialBody, CredentialChain
from troth.errors import DecodeError
from troth.identity import UnverifiedHistory
from troth.storage import HeldCredential

__all__ = [
    "authority_changes",
    "by_chain",
    "chain_expiry",
    "claims_cover",
    "issued_before_rotation",
    "live_held",
]

_Seen = dict[bytes, tuple[bytes, int]]
"""Histories read (`authority_changes`): bytes to the identifier's digest and changes."""


def chain_expiry(held: HeldCredential) -> int | None:
    """When the chain of stored row `held` expires as its links say (the earliest expiry of
    a link), if the row is what `CredentialWallet.hold` writes: its chain decodes, its last
    credential is to the row's identity and has the row's id, and its root issuer is the
    row's authority. None for any other row (our own store, decoded, not verified: a row
    edited by hand, its expiry put later, or another identity's chain put in the wallet's
    file). Its chain is shown to no peer and extended by no delegation."""
    try:
        chain = CredentialChain.decode(held.chain)
        bodies = [CredentialBody.decode(link.body) for link in chain.credentials]
    except DecodeError:
        return None
    if (
        bodies[-1].subject.digest != held.identifier
        or chain.credentials[-1].hash != held.id
        or bodies[0].issuer.digest != held.authority
    ):
        return None
    return min(STORED_LATEST, *(body.expires_at for body in bodies))


def by_chain(rows: Iterable[HeldCredential]) -> Iterator[HeldCredential]:
    """The rows of `rows` whose chain is what the row says (`chain_expiry`), each with its
    chain's expiry (expired or not), in their order, each decoded as it is asked for (a
    caller that stops at the first it takes decodes no more)."""
    for held in rows:
        expires_at = chain_expiry(held)
        if expires_at is not None:
            yield dataclasses.replace(held, expires_at=min(expires_at, held.expires_at))


def live_held(rows: Iterable[HeldCredential], *, now: int) -> Iterator[HeldCredential]:
    """The rows of `rows` unexpired at `now` by their chains (`by_chain`: a row whose chain is
    not what it says is left out), in their order (`CredentialStore.list_held`: the one that
    expires last first; a row `CredentialWallet.hold` wrote says its chain's expiry)."""
    return (held for held in by_chain(rows) if now < held.expires_at)


def claims_cover(chain: bytes, needs: Attributes) -> bool:
    """Whether the last credential of held `chain` (our own stored chain: decoded, not
    verified) states every attribute of `needs`: what a chain verifies to is its last link's
    attributes, so a chain whose last link lacks one is passed over without verifying it
    (review 69e, store 2: `best(needs=...)` verified each such row in full, a rotated
    authority's members' renewals all, to compare attributes its own bytes state)."""
    try:
        links = CredentialChain.decode(chain).credentials
        return needs.first_excess_over(CredentialBody.decode(links[-1].body).attributes) is None
    except DecodeError:
        return False


def authority_changes(held: HeldCredential, seen: _Seen | None = None) -> int | None:
    """How many changes the authority's history in `held`'s chain has (None: unreadable, or
    the chain carries none). Our own stored chain: decoded, not verified. `seen`: each history
    read before (its bytes, to its identifier's digest and changes), read again from there
    (the renewals of one authority carry the same history: review 68s, wallet 1)."""
    try:
        for data in CredentialChain.decode(held.chain).histories:
            read = None if seen is None else seen.get(data)
            if read is None:
                history = UnverifiedHistory.decode(data)
                read = (history.identifier_digest, history.first_index + len(history.changes))
                if seen is not None:
                    seen[data] = read
            if read[0] == held.authority:
                return read[1]
    except DecodeError:
        return None
    return None


def issued_before_rotation(
    held: HeldCredential, known: int | None, seen: _Seen | None = None
) -> bool:
    """Whether `held` was issued before its authority's rotation to change `known - 1` (the
    authority's changes as its feed or the node's stored copy of its history says): its chain
    then verifies nowhere (docs/credentials.md, "A stolen authority key")."""
    if known is None:
        return False
    changes = authority_changes(held, seen)
    return changes is None or changes < known
