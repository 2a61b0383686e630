"""Whether a stored copy from a checkpoint binds a full history (docs/formats.md, "A stored copy
from a checkpoint"): the rule `NodeTrust` applies from memory at handshakes, here also read
from a node's store for what runs without one (an authority judging requests, a node enrolling
with a ticket, a bundle's signer, `troth credential verify --node`, a trusted authority's feed
page or history outside a running node: review 30a).

A copy whose link to the identifier this node never checked is only the word of the authorities
whose held feed names one of its changes (in any supersession). It binds a full history it
forks from or rolls back only when one of them has standing over that history: one of the
`roots` the caller names (the root of a chain verified now, the authority judging a request,
a ticket's authority), the identity itself as a trust anchor, or an authority that vouched for
it here with a history holding a change this one holds (a voucher's `since`). A copy no held
feed names binds (who attests it is unknown: deny when in doubt).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from typing import Final

from troth.credentials import VerifiedFeed
from troth.credentials.wallet import CredentialWallet
from troth.errors import IdentityError, IdentityFailure
from troth.identity import Identifier, VerifiedIdentity
from troth.identity.known import Binds, Outranks, StoredSpan
from troth.storage import VoucherRow, VoucherStore

__all__ = [
    "REFUTABLE",
    "attested_binds",
    "feed_outranks",
    "holds_change",
    "stored_binds",
    "vouched_under",
    "with_standing",
]

REFUTABLE: Final = (IdentityFailure.FORK, IdentityFailure.ROLLBACK)
"""How a stored copy refuses a history it may not bind: a fork of it, or a rollback."""


def with_standing(
    check: Callable[..., object], identity: VerifiedIdentity, binds: Callable[[], Binds | None]
) -> None:
    """`check(identity)` (a store's `check_known` or `observe`); when a stored copy refuses
    `identity`, a full history, as a fork or a rollback, `check(identity, binds=binds())`:
    judged again with the authorities that have standing over it (the standing is computed
    only then: a known history stays a cache lookup)."""
    try:
        check(identity)
    except IdentityError as exc:
        if identity.first_index != 0 or exc.reason not in REFUTABLE:
            raise
        check(identity, binds=binds())


def holds_change(identity: VerifiedIdentity, index: int, change_hash: bytes) -> bool:
    """Whether `identity` holds change `index` with hash `change_hash`."""
    offset = index - identity.first_index
    return 0 <= offset < len(identity.changes) and (
        identity.changes[offset].change_hash == change_hash
    )


def attested_binds(
    identifier: Identifier, over: Set[Identifier], feeds: Mapping[Identifier, VerifiedFeed]
) -> Binds:
    """Whether a copy from a checkpoint of `identifier` (its changes) binds the history judged:
    an authority whose feed in `feeds` names one of its changes is in `over` (has standing
    over that history), or none names any."""

    def binds(changes: Sequence[tuple[int, bytes]]) -> bool:
        attesters = {
            authority
            for authority, feed in feeds.items()
            if any(feed.ever_named(identifier.digest, i, h) for i, h in changes)
        }
        return not attesters or bool(attesters & over)

    return binds


def vouched_under(rows: Iterable[VoucherRow], identity: VerifiedIdentity) -> set[Identifier]:
    """The authorities of voucher `rows` (of `identity`'s identifier) whose word counts on the
    full history `identity`: recorded under a change it holds, or not saying under which (a row
    from before review 27h: any history). As `Vouchers.standing`, from stored rows."""
    return {
        Identifier(authority)
        for _identifier, authority, _expires, _member, since in rows
        if since is None or holds_change(identity, *since)
    }


def stored_binds(
    wallet: CredentialWallet,
    vouchers: VoucherStore,
    identity: VerifiedIdentity,
    roots: Set[Identifier],
) -> Binds:
    """Whether a copy from a checkpoint binds `identity`, shown with the word of `roots`, read
    from the node's store when asked (a copy refused it: rarely): the feeds held for its
    trusted authorities, its voucher rows for the identity, the identity itself when trusted."""

    def binds(changes: Sequence[tuple[int, bytes]]) -> bool:
        trusted = wallet.trusted()
        feeds = wallet.held_feeds(trusted)
        digest = identity.identifier.digest
        over = set(roots) | vouched_under(vouchers.vouchers_of(digest), identity)
        if identity.identifier in trusted:
            over.add(identity.identifier)
        return attested_binds(identity.identifier, over, feeds)(changes)

    return binds


def feed_outranks(
    identity: VerifiedIdentity,
    roots: Set[Identifier],
    vouched: Set[Identifier],
    feeds: Mapping[Identifier, VerifiedFeed],
    trusted: Set[Identifier] = frozenset(),
) -> Outranks:
    """Whether the full copy of `identity`'s identifier stored here, which the full history
    `identity` forks from, is superseded by the word of the authorities with standing over
    both (review 54i, identity 2: a thief's fork shown first refused her for good, whatever
    her authority said): its judges, each one of `roots` (the roots of the chains verified for
    her now), each one's held feed (`feeds`) naming, in its newest supersession, a change
    `identity` holds where the copy holds another (or none). The judges: every authority that
    vouched for the identity here (`vouched`); when none did (a copy stored by `troth identity
    import`, or at a pinned peer's handshake), every authority the node trusts (`trusted`, at
    least one; none when the identity is one of them: review 54m, identity 2). A co-trusted
    authority that never vouched for her cannot replace the copy another authority's chain
    stored, nor one authority among several that vouched for her (as the memory of a
    stateless verifier: review 41a, memory 1); nor, when no voucher is left (one lapsed and
    swept), any authority without every other trusted one."""
    judges = vouched or (frozenset() if identity.identifier in trusted else trusted)

    def outranks(span: StoredSpan) -> bool:
        if not judges or not judges <= roots:
            return False
        for authority in judges:
            feed = feeds.get(authority)
            named = None if feed is None else feed.supersession(identity.identifier)
            if named is None:
                return False
            index = named.changes - 1
            if not holds_change(identity, index, named.change_hash):
                return False
            if span.hash_at(index) == named.change_hash:
                return False
        return True

    return outranks
