"""What a wallet may choose from its stored rows: the rows whose chain is what the row says
(`CredentialWallet.best`, `CredentialWallet.presentable`; review 68j, wallet 1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from troth.credentials.format import STORED_LATEST, CredentialBody, CredentialChain
from troth.errors import DecodeError
from troth.storage import HeldCredential

__all__ = ["by_chain", "chain_expiry", "live_held"]


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
