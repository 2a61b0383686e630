"""Releasing a local identity held by a restore of node.db (`troth identity release-restored`;
troth.identity.restored; docs/vault.md, "A node.db restored from before a rotation").

A held identity rotated after the copy was taken holds, in the copy, the keys its rotation
retired: released, it signs with them. The release refuses one a feed this node holds shows
rotated past the copy (review 57r, restore 2), but the feeds node.db holds are the copy's,
older than that rotation: released first thing after putting node.db back, such an identity
was let go (review 57v, release 1). So a release needs evidence fresher than the hold, for
every trusted authority the identity is a member of (holds a credential it issued directly):
its rotation is announced to them (`CredentialWallet.unannounced`), and an authority
publishes its members' rotations only (review 58g, release 2: the feed of one the identity
holds only a delegation from, which can never show its rotation, counted, and released a
delegate rotated after the copy was taken):

- the authority's feed pulled by the release itself, after the hold, from the node on this
  machine that hosts it (not this node: its hosted feed is in the copy); or
- a complete feed of it the node holds dated after the hold began (`held_at`), after the
  copy's own feed of it (`copy_feed_issued`) and more than RESTORE_ROTATION_MARGIN_SECONDS
  after the last rotation the copy lacks, as node.db's rollback guard dated it
  (`last_rotation`: review 60a, release 1, the hold dated by a clock behind let a page
  captured before that rotation count): its `issued_at`, the authority's signed date capped at
  when this node accepted the page: pulled by the running node's rounds since.

A feed stored again after the hold but issued before it (a stale page handed in again, the
copy's own) is no evidence: its date is the authority's signature, and a feed is only ever
replaced by one issued later. A feed of an authority the node does not trust, or the identity
is no member of, is not asked for and counts for nothing; nor does one that revokes the
identity or every member credential of it held here (removed since, its rotation's
announcement refused: review 58g, release 3). Where no feed can tell (the
identity is a member of no trusted authority, e.g. an authority's own identity or a
delegate, or its authority cannot be reached), the release is the operator's word, given explicitly
(`vouch`: `--vouch-not-rotated`), and said so in its result. A feed that shows the identity
rotated refuses the release even then. A hold whose time node.db holds damaged is a hold all
the same: no feed node.db holds counts after it, one the release pulls does, else the vouch
(review 71q, wave3a 1: the release failed with StorageError, vouched too); so too where what
the restore kept of the copy (its feeds' dates, the last rotation it lacks) is damaged (review
71x, wave4b 2). A refusal says when no feed the node's rounds pull can count yet: a date the
release counts from ahead of the clock (named, and what releases before it), or damaged
(review 72k, holds2 1 and 2: it sent the operator to the node's rounds, to no avail).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from troth import limits
from troth.clock import Clock
from troth.credentials import CredentialChain, VerifiedFeed
from troth.errors import DecodeError, IdentityError, IdentityFailure, StorageError, TrothError
from troth.identity import Identifier
from troth.identity.restored import copy_feed_issued, last_rotation
from troth.node.authorities import is_local, sync_local_feed
from troth.node.node import Node
from troth.node.verify import superseded_reason

__all__ = ["VOUCH_OPTION", "FeedEvidence", "Release", "release_restored"]

VOUCH_OPTION = "--vouch-not-rotated"
"""The CLI option by which the operator vouches, where no feed can tell, that the identity was
not rotated after the copy was taken."""
_SEE = '(docs/vault.md, "A node.db restored from before a rotation")'
_UNREADABLE: Final = (1 << 63) - 1
"""The time of a hold node.db holds damaged (not a whole number): still a hold, after which no
feed node.db holds is dated (a feed pulled by the release is), so the vouch releases it where
no pull can (review 71q, wave3a 1)."""
_PULL_OR_VOUCH: Final = (
    "only a pull from the node hosting the authority on this machine, or the vouch, releases it"
)
_ENDED = (
    "its feed revokes the identity's membership (every member credential of it held here, or "
    "the identity): the authority refuses a rotation's announcement from one no member, so "
    "its feed cannot tell"
)


@dataclass(frozen=True, slots=True)
class FeedEvidence:
    """What the node holds of one authority's word on a held identity: its feed `pulled` by
    this release (after the hold), or else the held feed's signed date (`issued_at`, None:
    none held, or not complete); `fresh`: it postdates the hold; `error`: why a pull failed."""

    authority: Identifier
    fresh: bool
    pulled: bool = False
    issued_at: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Release:
    """What `release_restored` did: `held_at` (None: the identity was not held, nothing done;
    or its hold's time is damaged in node.db, `held_at_damaged`, and `released` says whether it
    was released), `released`, `vouched` (released on the operator's word: some feed, or every
    one, could not tell) and the evidence of each authority asked."""

    held_at: int | None
    released: bool
    vouched: bool
    feeds: tuple[FeedEvidence, ...] = ()
    held_at_damaged: bool = False
    """The hold's time is unknown: node.db held it damaged (review 72b, holds 1: `held_at`
    None said so only beside `released`)."""


def release_restored(node: Node, ref: str, *, clock: Clock, vouch: bool = False) -> Release:
    """Release local identity `ref` from a restore's hold (found first if nothing did yet),
    only on evidence fresher than the hold that it was not rotated after the copy was taken
    (see the module), or, where that evidence is missing, on the operator's word (`vouch`).
    IdentityError ROLLBACK when a held feed shows it rotated past the copy (even vouched), or
    the evidence is missing and `vouch` is False (naming what to do)."""
    own = node.identities.find(ref).name == node.name  # NotFound before anything is written
    node.identities.check_restored(clock)
    try:
        held_at = node.identities.restore_held(ref)
    except StorageError:  # a hold all the same (review 71q, wave3a 1: the release failed with
        # it, vouched too): no feed held is dated after it, one pulled now is
        held_at = _UNREADABLE
    if held_at is None:
        return Release(None, released=False, vouched=False)
    feeds = tuple(_evidence(node, ref, held_at, clock))
    identity = node.identities.get(ref, now=clock.now()).identity
    superseded = superseded_reason(node, identity)  # after the pulls: their word too
    if superseded is not None:
        # review 57r, restore 2: its owner's announced history is newer than the copy's
        raise IdentityError(
            IdentityFailure.ROLLBACK,
            f"{ref!r} was rotated after the copy was taken ({superseded}): not released; "
            f"make a new identity and enroll it again {_SEE}",
        )
    missing = [f for f in feeds if not f.fresh]
    if (missing or not feeds) and not vouch:
        refusal = _refusal(node, ref, held_at, missing, own=own, now=clock.now())
        raise IdentityError(IdentityFailure.ROLLBACK, refusal)
    released = node.identities.release_restored(ref, now=clock)
    damaged = held_at == _UNREADABLE
    return Release(
        None if damaged else held_at,
        released=released,
        vouched=bool(missing or not feeds),
        feeds=feeds,
        held_at_damaged=damaged,
    )


def _evidence(node: Node, ref: str, held_at: int, clock: Clock) -> list[FeedEvidence]:
    """The evidence of each trusted authority `ref` is a member of, its feed pulled first from
    the node on this machine hosting it (a failed pull: `error`); none from a feed that ends
    that membership (`_ENDED`)."""
    trusted = node.wallet.trusted()
    members: dict[Identifier, list[bytes]] = {}
    for held in node.wallet.held(ref):
        if _member(held.chain):
            members.setdefault(Identifier(held.authority), []).append(held.id)
    hosted = node.hosted_authority()
    here = None if hosted is None else hosted.identifier
    identifier = node.identities.find(ref).identifier
    evidence = []
    for authority in sorted(members.keys() & trusted.keys(), key=lambda a: a.digest):
        found = _asked(node, authority, trusted[authority], here, held_at, clock)
        feed = node.wallet.held_feed(authority)
        if found.fresh and feed is not None and _ended(feed, identifier, members[authority]):
            # review 58g, release 3: removed, its rotation since was refused by the authority
            found = replace(found, fresh=False, error=_ENDED)
        evidence.append(found)
    return evidence


def _asked(
    node: Node,
    authority: Identifier,
    address: str,
    here: Identifier | None,
    held_at: int,
    clock: Clock,
) -> FeedEvidence:
    """The evidence of one authority: its feed pulled from this machine, else the held one."""
    error = None
    if authority == here:  # its feed, even pulled now, is the copy's
        error = "this node hosts it: its feed here is the restored copy's"
        return FeedEvidence(authority, fresh=False, error=error)
    if is_local(address):
        try:
            sync_local_feed(node, authority, address=address, now=clock)
            return FeedEvidence(authority, fresh=True, pulled=True)
        except TrothError as exc:
            error = str(exc)
    feed = node.wallet.held_feed(authority)
    issued_at = None if feed is None or not feed.complete else feed.issued_at
    # later than the hold and than the copy's own feed of this authority (review 59f, restore
    # 1: the newest feed of any authority dated the hold for all)
    floor = max(_dated_after(node, authority, held_at), _after_rotation(node) or held_at)
    fresh = issued_at is not None and issued_at > floor
    return FeedEvidence(authority, fresh, issued_at=issued_at, error=error)


def _dated_after(node: Node, authority: Identifier, held_at: int) -> int:
    """The later of the hold's time and the restored copy's own feed of `authority` (review
    59f, restore 1: the newest feed of any authority dated the hold for all): a held feed of it
    counts only issued after it (`_UNREADABLE`: node.db holds one damaged)."""
    copy = _kept(lambda: copy_feed_issued(node.db, authority.digest))
    return max(held_at, copy or held_at)


def _after_rotation(node: Node) -> int | None:
    """The time a held feed must be issued after: the last rotation the restored copy lacks,
    as the rollback guard dated it, and the margin (review 60a, release 1); None: not dated."""
    rotated = _kept(lambda: last_rotation(node.db))
    return None if rotated is None else rotated + limits.RESTORE_ROTATION_MARGIN_SECONDS


def _kept(read: Callable[[], int | None]) -> int | None:
    """A date a restore found kept (`copy_feed_issued`, `last_rotation`), `_UNREADABLE` where
    node.db holds it damaged: no feed node.db holds counts after it, one pulled does, else the
    vouch (review 71x, wave4b 2: the release failed with StorageError, vouched too)."""
    try:
        return read()
    except StorageError:
        return _UNREADABLE


def _ended(feed: VerifiedFeed, identifier: bytes, credentials: list[bytes]) -> bool:
    """Whether `feed` revokes the identity, or every member credential of it the node holds: a
    member removed (or revoked) is refused its rotation's announcement, so its authority's
    feed shows no rotation since."""
    if feed.identity_revoked(identifier):
        return True
    return all(feed.credential_revoked(credential) for credential in credentials)


def _member(chain: bytes) -> bool:
    """Whether a chain the identity holds is a member credential (one link, issued by its
    authority): a delegation's authority publishes no rotation of the delegate's."""
    try:
        return len(CredentialChain.decode(chain).credentials) == 1
    except DecodeError:
        return False


def _refusal(
    node: Node, ref: str, held_at: int, missing: list[FeedEvidence], *, own: bool, now: int
) -> str:
    vouch = (
        f"only if you know {ref!r} was not rotated after the copy was taken: troth identity "
        f"release-restored {ref} --node {node.name} {VOUCH_OPTION} {_SEE}"
    )
    if not missing:
        return (
            f"{ref!r} not released: no feed can tell whether it was rotated after the copy was "
            f"taken (it is a member of no authority this node trusts: an authority's feed "
            f"shows its members' rotations only); {vouch}"
        )
    remote = (
        f"start the node (troth node start {node.name}: its rounds pull its authorities' "
        "feeds) and run this again"
        if not own
        else "no command pulls it while the node's own identity is held"
    )
    ahead = _dated_ahead(node, now)
    if ahead is not None:  # review 60h, release 1: no pull by the node's rounds counts yet
        remote = ahead
    stale = "; ".join(
        f"{f.authority}: "
        + (
            _ENDED
            if f.error == _ENDED
            else f"no feed of it pulled ({f.error}): run this again once one can be"
            if f.error is not None
            else f"{_held(node, f, held_at)}, and it is not on this machine: "
            + (ahead or _not_yet(node, f.authority, held_at, now, remote) or remote)
        )
        for f in missing
    )
    hold = "node.db holds its time damaged" if held_at == _UNREADABLE else held_at
    return (
        f"{ref!r} not released: no feed issued after the hold ({hold}) and after the "
        f"restored copy's own feed of its authority tells whether it was rotated after the "
        f"copy was taken ({stale}); or, {vouch}"
    )


def _dated_ahead(node: Node, now: int) -> str | None:
    """Why no feed held can count before the last rotation the restored copy lacks, when the
    rollback guard dates it ahead of the clock `now` (a rotation made while the clock was
    ahead: the date never goes back), else None (review 60h, release 1: the refusal sent the
    operator to let the node pull its feeds and run the release again, refused the same way
    until that date)."""
    rotated = _kept(lambda: last_rotation(node.db))
    if rotated is None or rotated <= now:  # (one just made: a pull soon counts)
        return None
    if rotated == _UNREADABLE:
        return (
            "node.db holds what the restore found of the copy damaged, so no feed held counts: "
            f"{_PULL_OR_VOUCH}"
        )
    return (
        f"the last rotation the restored copy lacks is dated {rotated}, ahead of this clock "
        f"({now}: a rotation made while the clock was ahead), so no feed held counts until "
        f"{rotated + limits.RESTORE_ROTATION_MARGIN_SECONDS}: {_PULL_OR_VOUCH} before then"
    )


def _not_yet(node: Node, authority: Identifier, held_at: int, now: int, then: str) -> str | None:
    """Why no feed of `authority` the node's rounds pull counts yet: the hold, or the restored
    copy's own feed of it, is dated ahead of the clock `now` (a hold the copy held already,
    dated by a restore found while the clock was ahead, is kept: review 72b, release 6), what
    releases it before then and what after (`then`); or node.db holds it damaged; None: one
    pulled soon counts (review 72k, holds2 1 and 2: the refusal sent the operator to let the
    node pull its feeds and run the release again, refused the same way until that date, or
    for good)."""
    after = _dated_after(node, authority, held_at)
    if after <= now:
        return None
    if after == _UNREADABLE:
        return f"no feed held counts after a date node.db holds damaged: {_PULL_OR_VOUCH}"
    return (
        f"no feed held of it counts until after {after}, ahead of this clock ({now}: the hold, "
        f"or the restored copy's own feed of it, dated by a clock ahead): until then "
        f"{_PULL_OR_VOUCH}; after then, {then}"
    )


def _held(node: Node, evidence: FeedEvidence, held_at: int) -> str:
    issued_at = evidence.issued_at
    if issued_at is None:
        return "no complete feed of it held"
    if held_at == _UNREADABLE:  # (review 72k, holds2 2: it was "before the hold")
        return (
            f"the feed of it held was issued at {issued_at}; node.db holds the hold's time damaged"
        )
    if issued_at <= held_at:
        return f"the feed of it held was issued at {issued_at}, before the hold"
    # after a hold found with the clock behind (review 59j, release 1: it was said to be
    # before the hold)
    copy = _kept(lambda: copy_feed_issued(node.db, evidence.authority.digest))
    if copy == _UNREADABLE:
        return "node.db holds the date of the restored copy's own feed of it damaged"
    if copy is not None and issued_at <= copy:
        return (
            f"the feed of it held was issued at {issued_at}, not after the restored copy's own "
            f"feed of it ({copy})"
        )
    # review 60a, release 1: a page captured before the rotation the copy lacks
    rotated = _kept(lambda: last_rotation(node.db))
    if rotated == _UNREADABLE:
        return "node.db holds the date of the last rotation the restored copy lacks damaged"
    return (
        f"the feed of it held was issued at {issued_at}, not more than "
        f"{limits.RESTORE_ROTATION_MARGIN_SECONDS} s after the last rotation the restored copy "
        f"lacks ({rotated})"
    )
