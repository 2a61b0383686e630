"""Verifying credentials and delegation chains (docs/formats.md, "Chain verification").

A chain verifies when: the root is issued by a trust anchor; every link is signed by its
issuer's attested signing key; each link's issuer is the previous link's subject and names the
previous credential by hash; each link only narrows (attributes a subset, expiry no later,
depth strictly lower, within the global limit); no identity appears twice (no cycles); no link,
issuer or subject is revoked in the root authority's feed, which is complete and fresh; no
issuer history (nor the presenter's, when given) is superseded in that feed; every link is
within its window (with a bounded clock skew); and the last subject is the presenting identity.

`ChainVerifier` caches what depends only on the bytes (signatures, attestations, structure)
and re-checks on every call what depends on time and state: windows, key validity, the
revocation feed, the presenter, and (optionally) the stored copies of identities.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from troth import limits
from troth.credentials.attributes import Attributes
from troth.credentials.format import CredentialBody, CredentialChain
from troth.credentials.memory import VerifierMemory
from troth.credentials.revocation_held import VerifiedFeed, check_feed_age, feed_checkpoints
from troth.errors import (
    ArgumentError,
    CredentialError,
    CredentialFailure,
    DecodeError,
    DecodeProblem,
    IdentityError,
    IdentityFailure,
    OutOfRange,
)
from troth.identity import (
    Checkpoints,
    Identifier,
    UnverifiedHistory,
    VerifiedIdentity,
    verify_history,
    verify_signed_by,
)
from troth.kinds import got
from troth.sealed import sealed

__all__ = [
    "ChainVerifier",
    "TrustPolicy",
    "VerifiedCredential",
    "VerifiedLink",
    "chain_actor",
    "check_feed_age",
]

_F = CredentialFailure
_VERIFIED: Final = object()
CACHE_BYTES: Final = 32 * 1024 * 1024
"""What a verifier's cached results may hold: each is charged its chain's bytes and
`CACHED_CHANGE_BYTES` per change of the issuer histories it keeps decoded (review 38d, limits
1: the chain's bytes alone were counted, a fifth of what a result of 64-change histories
holds)."""
CACHED_CHANGE_BYTES: Final = 1536
"""What one decoded change of a cached result holds (its objects and a copy of its bytes:
~1,300 bytes measured, with a margin)."""
_DECODE_REASONS: Final = {
    DecodeProblem.UNKNOWN_TYPE: _F.UNKNOWN_TYPE,
    DecodeProblem.UNKNOWN_VERSION: _F.UNKNOWN_VERSION,
    DecodeProblem.OVER_LIMIT: _F.OVER_LIMIT,
    DecodeProblem.TRAILING_BYTES: _F.TRAILING_BYTES,
}


def _not_seconds(call: str, now: object) -> ArgumentError:
    """The error of a `now` that is no int (a float, a bool, NaN: review 69i, caveats 2)."""
    return ArgumentError(call, "now", "a whole number of seconds (an int)", got(now))


def _decode_failure(exc: DecodeError, link: int | None = None) -> CredentialError:
    return CredentialError(_DECODE_REASONS.get(exc.problem, _F.MALFORMED), str(exc), link)


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """What a verifier trusts. There is no default: an empty anchor set is an error."""

    anchors: frozenset[Identifier]
    max_clock_skew: int = limits.DEFAULT_CREDENTIAL_SKEW_SECONDS
    max_feed_staleness: int = limits.DEFAULT_FEED_STALENESS_SECONDS

    def __post_init__(self) -> None:
        if not self.anchors:
            raise ValueError("a trust policy needs at least one authority (trust anchor)")
        skew = self.max_clock_skew
        if isinstance(skew, bool) or not isinstance(skew, int):  # as check_feed_age (36d)
            raise TypeError(f"max_clock_skew is a number of seconds, not {type(skew).__name__}")
        if not 0 <= skew <= limits.MAX_CLOCK_SKEW_SECONDS:
            high = limits.MAX_CLOCK_SKEW_SECONDS
            raise OutOfRange("max_clock_skew", self.max_clock_skew, 0, high)
        check_feed_age(self.max_feed_staleness)


@dataclass(frozen=True, slots=True, init=False)
class VerifiedLink:
    """One verified link of a chain: who issued what to whom, for how long, why, on what
    conditions (`hash`: the id revocations name)."""

    index: int
    id: bytes
    hash: bytes
    issuer: Identifier
    subject: Identifier
    attributes: Attributes
    not_before: int
    expires_at: int
    depth: int
    purpose: str | None
    caveats: tuple[str, ...]

    def __init__(
        self,
        index: int,
        id: bytes,
        hash: bytes,
        issuer: Identifier,
        subject: Identifier,
        attributes: Attributes,
        not_before: int,
        expires_at: int,
        depth: int,
        purpose: str | None,
        caveats: tuple[str, ...],
    ) -> None:
        # frozen: the fields are set through their slots (the generated __init__ goes through
        # object.__setattr__, ~3x slower; every verification makes one per link)
        _set_link_index(self, index)
        _set_link_id(self, id)
        _set_link_hash(self, hash)
        _set_link_issuer(self, issuer)
        _set_link_subject(self, subject)
        _set_link_attributes(self, attributes)
        _set_link_not_before(self, not_before)
        _set_link_expires_at(self, expires_at)
        _set_link_depth(self, depth)
        _set_link_purpose(self, purpose)
        _set_link_caveats(self, caveats)

    def to_json(self) -> dict[str, Any]:
        """The link as JSON data."""
        return {
            "id": self.hash.hex(),  # what revocations name (SHA-256 of the body)
            "serial": self.id.hex(),
            "issuer": str(self.issuer),
            "subject": str(self.subject),
            "attributes": self.attributes.to_json(),
            "purpose": self.purpose,
            "caveats": list(self.caveats),
            "not_before": self.not_before,
            "expires_at": self.expires_at,
            "depth": self.depth,
        }


(
    _set_link_index,
    _set_link_id,
    _set_link_hash,
    _set_link_issuer,
    _set_link_subject,
    _set_link_attributes,
    _set_link_not_before,
    _set_link_expires_at,
    _set_link_depth,
    _set_link_purpose,
    _set_link_caveats,
) = (vars(VerifiedLink)[name].__set__ for name in VerifiedLink.__slots__)  # slot descriptors


@sealed  # no pickle, no __setstate__ (review 64n, api 4)
@dataclass(frozen=True, slots=True, init=False)
class VerifiedCredential:
    """A verified chain: who acts, who delegated to whom, and what it may do. `issuers` are
    the histories the chain carried for each link's issuer (in link order) and `presenter`
    the presenter's history when it was verified with one: what a holder checks against a
    later feed's supersessions (`current_in`)."""

    actor: Identifier
    authority: Identifier
    links: tuple[VerifiedLink, ...]
    attributes: Attributes
    caveats: tuple[str, ...]
    not_before: int
    expires_at: int
    chain: bytes = field(repr=False)
    issuers: tuple[VerifiedIdentity, ...] = field(repr=False, compare=False)
    presenter: VerifiedIdentity | None = field(repr=False, compare=False)
    keys_valid_until: int = field(repr=False, compare=False)
    """The last second every issuer's current key is valid (what a holder re-checks: review
    75f, delegation 1)."""
    _token: object = field(init=False, repr=False, compare=False)  # not passed on by replace()

    def __init__(
        self,
        actor: Identifier,
        authority: Identifier,
        links: tuple[VerifiedLink, ...],
        attributes: Attributes,
        caveats: tuple[str, ...],
        not_before: int,
        expires_at: int,
        chain: bytes,
        issuers: tuple[VerifiedIdentity, ...],
        presenter: VerifiedIdentity | None,
        keys_valid_until: int = 0,
        _token: object = None,
    ) -> None:
        if _token is not _VERIFIED:
            raise ArgumentError(  # a TypeError too; not a bare one (review 54n, api 8)
                "VerifiedCredential",
                "_token",
                "ChainVerifier.verify's (a VerifiedCredential is made by verifying a chain)",
                "a call of the constructor",
            )
        # frozen: set through the slots, as VerifiedLink
        _set_credential_actor(self, actor)
        _set_credential_authority(self, authority)
        _set_credential_links(self, links)
        _set_credential_attributes(self, attributes)
        _set_credential_caveats(self, caveats)
        _set_credential_not_before(self, not_before)
        _set_credential_expires_at(self, expires_at)
        _set_credential_chain(self, chain)
        _set_credential_issuers(self, issuers)
        _set_credential_presenter(self, presenter)
        _set_credential_keys_valid_until(self, keys_valid_until)
        _set_credential_token(self, _token)

    def current_in(self, feed: VerifiedFeed) -> None:
        """Raise CredentialError SUPERSEDED (with the link's index) when `feed` supersedes
        the history an issuer of the chain carried, or the presenter's: the check
        `ChainVerifier.verify` makes, for a credential held since it verified. FEED_INVALID
        for a feed of another authority than the chain's."""
        self._check_feed(feed)
        _check_current(feed, self.authority, self.issuers, self.presenter)

    def revoked_link_in(self, feed: VerifiedFeed) -> int | None:
        """The index of the first link `feed` revokes (the link itself, or its issuer's or
        its subject's identity), or None. CredentialError FEED_INVALID for a feed of another
        authority than the chain's."""
        self._check_feed(feed)
        revoked, identities = feed.revoked_credentials, feed.revoked_identities
        for link in self.links:
            if (
                link.hash in revoked
                or link.subject.digest in identities
                or link.issuer.digest in identities
            ):
                return link.index
        return None

    def _check_feed(self, feed: VerifiedFeed) -> None:
        """Refuse a feed of another authority (review 56p, credentials 1: it revokes nothing
        of this chain's, so a link its own authority revoked read as held), as
        `ChainVerifier.verify` refuses one filed under another."""
        if feed.authority != self.authority:
            raise CredentialError(
                _F.FEED_INVALID, f"{feed.authority}'s feed for a chain of {self.authority}"
            )

    def within_skew(self, now: int) -> bool:
        """Whether the chain is valid at `now` only thanks to the clock-skew allowance (at or
        past `expires_at`, or before `not_before`), as `VerifiedVC.within_skew` says of a VC;
        the CLI decided it for chains (review 44c, skew 1)."""
        return now >= self.expires_at or now < self.not_before

    def to_json(self) -> dict[str, Any]:
        """The verified chain as JSON data."""
        return {
            "actor": str(self.actor),
            "authority": str(self.authority),
            "chain": [link.to_json() for link in self.links],
            "attributes": self.attributes.to_json(),
            "caveats": list(self.caveats),
            "window": {"not_before": self.not_before, "expires_at": self.expires_at},
        }


def _presented_by(
    credential: VerifiedCredential, presenter: VerifiedIdentity
) -> VerifiedCredential:
    """`credential` (verified with `presenter`), recording the presenter's history."""
    return VerifiedCredential(
        credential.actor,
        credential.authority,
        credential.links,
        credential.attributes,
        credential.caveats,
        credential.not_before,
        credential.expires_at,
        credential.chain,
        credential.issuers,
        presenter,
        credential.keys_valid_until,
        _VERIFIED,
    )


(
    _set_credential_actor,
    _set_credential_authority,
    _set_credential_links,
    _set_credential_attributes,
    _set_credential_caveats,
    _set_credential_not_before,
    _set_credential_expires_at,
    _set_credential_chain,
    _set_credential_issuers,
    _set_credential_presenter,
    _set_credential_keys_valid_until,
    _set_credential_token,
) = (vars(VerifiedCredential)[name].__set__ for name in VerifiedCredential.__slots__)


class _Checked:
    """What verification derived from the bytes alone (cached per chain), and `agreed`: the
    memory's version and the presenter (None, or her identifier, first and last change) with
    which the chain last passed the memory's checks (`VerifierMemory.check`): with both
    unchanged it passes again, the memory then holding every history it shows (none of them
    judged: the warm path)."""

    __slots__ = ("agreed", "identities", "keys_valid_until", "result", "verified_at")

    def __init__(
        self,
        result: VerifiedCredential,
        identities: tuple[VerifiedIdentity, ...],
        keys_valid_until: int,
        verified_at: int,
    ) -> None:
        self.result = result
        self.identities = identities
        self.keys_valid_until = keys_valid_until
        self.verified_at = verified_at
        self.agreed: tuple[int, tuple[bytes, int, bytes] | None] | None = None


def _check_current(
    feed: VerifiedFeed,
    authority: Identifier,
    issuers: tuple[VerifiedIdentity, ...],
    presenter: VerifiedIdentity | None,
) -> None:
    """Raise unless the root authority's `feed` neither supersedes nor leaves unbound an issuer
    history (ISSUER_INVALID, with the link's index) or the presenter's (WRONG_SUBJECT): a
    history presented from a checkpoint counts for a chain only when the chain's authority
    names one of its changes (`VerifiedFeed.binds`). Another authority's checkpoint is its own
    word: a co-trusted authority could otherwise make up a change of this authority's member,
    name it in its feed, and delegate or present as the member (review 23a, checkpoints 1-2)."""
    for index, identity in enumerate(issuers):
        try:
            feed.check_current(identity)
        except CredentialError as exc:
            raise CredentialError(exc.reason, exc.detail, index) from None
        if not feed.binds(identity):
            raise CredentialError(_F.ISSUER_INVALID, _unbound(identity, authority), index)
    if presenter is not None:
        feed.check_current(presenter)
        if not feed.binds(presenter):
            raise CredentialError(_F.WRONG_SUBJECT, _unbound(presenter, authority))


def _unbound(identity: VerifiedIdentity, authority: Identifier) -> str:
    checkpoint = identity.checkpoint
    by = "" if checkpoint is None else f" by authority {Identifier(checkpoint.authority)}"
    return (
        f"{identity.identifier}'s history from change {identity.first_index} is attested{by}, "
        f"not by this chain's authority {authority}, whose feed names none of its changes: "
        "present it from an earlier change, or announce its rotations to that authority"
    )


def _cost(checked: _Checked) -> int:
    """What a cached result is charged against CACHE_BYTES: its chain's bytes and each change
    of the histories it keeps decoded (review 38d, limits 1)."""
    changes = sum(len(identity.changes) for identity in checked.identities)
    return len(checked.result.chain) + CACHED_CHANGE_BYTES * changes


def chain_actor(data: bytes) -> Identifier:
    """The last subject of a chain (for tools that verify a file with no presenter)."""
    try:
        chain = CredentialChain.decode(data)
        return CredentialBody.decode(chain.credentials[-1].body).subject
    except DecodeError as exc:
        raise _decode_failure(exc) from None


class ChainVerifier:
    """Verifies chains under one `TrustPolicy`; safe to share (the cache is a plain dict).

    `known` is given each issuer history of a chain that verifies otherwise, and raises
    IdentityError for one that forks from or rolls back a stored copy (the chain is then
    refused: ISSUER_INVALID); `known_in` likewise, given also the chain's root authority (a
    trust anchor, which vouches for every issuer of its chain: its standing over the history
    decides whether a stored copy from a checkpoint another authority attested binds it,
    docs/formats.md, "A stored copy from a checkpoint"). Without either, it remembers every
    change's hash of the newest full history of each identity it verified in a chain that
    passed (`SEEN_IDENTITIES` entries and `SEEN_CHANGES` changes at most, each entry charged
    to the root whose chain showed its newest history and, when full, the oldest of the root
    holding the most forgotten: review 42a, memory 1; those below the member a chain's root
    vouched for charged to her too, `SEEN_PER_SOURCE` and `SEEN_CHANGES_PER_SOURCE` each:
    review 40a and 41a, memory 1 and 4) and refuses an issuer or presenter history that
    ends before it or forks from it: a verifier that saw a rotation refuses the retired key's
    chains before the feed names the rotation (review 38d, memory 1). The root's feed naming a
    change the remembered history does not hold outranks it, and replaces it when only that
    root's chains showed it, else is kept beside it for that root's chains (review 40a, memory
    3 and 4; review 41a, memory 1 and 2).
    Safe to share across threads."""

    def __init__(
        self,
        policy: TrustPolicy,
        *,
        known: Callable[[VerifiedIdentity], None] | None = None,
        known_in: Callable[[VerifiedIdentity, Identifier], None] | None = None,
        cache_size: int = 4096,
        checked_by: ChainVerifier | None = None,
    ) -> None:
        self.policy = policy
        # another verifier of the same policy whose byte checks this one takes up (its own
        # time and state checks, memory included, still run): a node's admission re-checks
        # the chains its handshake verified a moment ago (review 62n, bench 3)
        self._checked_by = checked_by if checked_by is None or checked_by.policy is policy else None
        self._known = known
        self._known_in = known_in
        self._cache: dict[bytes, _Checked] = {}
        self._cache_size = cache_size
        self._cache_bytes = 0
        # without `known`: the histories verified (troth.credentials.memory; review 38d-42a)
        self._memory = VerifierMemory()
        # a verifier shared across threads (the public `troth.Verifier`): the memory and the
        # cache change only under this lock (review 40a, memory 2)
        self._lock = threading.Lock()

    def verify(
        self,
        data: bytes,
        *,
        presenter: Identifier | VerifiedIdentity,
        feeds: Mapping[Identifier, VerifiedFeed],
        now: int,
    ) -> VerifiedCredential:
        """Verify chain bytes presented by `presenter` at `now` against the authority's feed.
        Given the presenter's verified history (not only its identifier), that history must
        not be superseded in the feed either. `now` is a whole number of seconds (an
        ArgumentError: review 69i, caveats 2, a NaN skipped every time check of a cached
        chain)."""
        if type(now) is not int:
            raise _not_seconds("ChainVerifier.verify", now)
        if type(data) is not bytes:
            data = bytes(data)
        # keyed by the bytes themselves: equal keys are equal chains, and a caller presenting
        # the same bytes object again pays no hashing (bytes cache their hash)
        checked = self._cache.get(data)
        if checked is None or now < checked.verified_at:
            checked = self._taken_up(data, now)
            if checked is None:
                checkpoints = feed_checkpoints(
                    feeds, now=now, max_staleness=self.policy.max_feed_staleness
                )
                checked = self._check_bytes(data, now, checkpoints)
            self._remember(data, checked)
        self._check_state(checked, presenter, feeds, now)
        if isinstance(presenter, Identifier):
            return checked.result
        return _presented_by(checked.result, presenter)  # a holder re-checks its supersession

    def verify_structure(
        self, data: bytes, *, now: int, checkpoints: Checkpoints | None = None
    ) -> VerifiedCredential:
        """Only the checks that depend on the bytes: signatures, attestations, alignment,
        narrowing, cycles. NOT a verification for access: no windows, no revocation, no
        presenter. For holders and for the authority judging a revocation request.
        `checkpoints` judges checkpointed issuer histories (none: they are refused). `now` is
        a whole number of seconds (an ArgumentError)."""
        if type(now) is not int:
            raise _not_seconds("ChainVerifier.verify_structure", now)
        return self._check_bytes(data, now, checkpoints).result

    def _taken_up(self, data: bytes, now: int) -> _Checked | None:
        """The byte checks `checked_by` made of `data` (not later than `now`), as a result of
        this verifier's own (its `agreed` with this verifier's memory not yet made), or None."""
        other = self._checked_by
        found = None if other is None else other._cache.get(data)
        if found is None or now < found.verified_at:
            return None
        return _Checked(found.result, found.identities, found.keys_valid_until, found.verified_at)

    def _remember(self, key: bytes, checked: _Checked) -> None:
        """Cache a result; the oldest go first past `cache_size` entries or CACHE_BYTES (each
        charged `_cost`)."""
        size = _cost(checked)
        with self._lock:  # shared across threads: two evicting at once popped one key twice
            self._remember_locked(key, checked, size)

    def _remember_locked(self, key: bytes, checked: _Checked, size: int) -> None:
        cache = self._cache
        if key in cache:
            return
        while cache and (len(cache) >= self._cache_size or self._cache_bytes + size > CACHE_BYTES):
            oldest = next(iter(cache))
            self._cache_bytes -= _cost(cache.pop(oldest))
        cache[key] = checked
        self._cache_bytes += size

    # -- checks that depend on time and state (every call) --------------------------------------

    def _check_state(
        self,
        checked: _Checked,
        presenter: Identifier | VerifiedIdentity,
        feeds: Mapping[Identifier, VerifiedFeed],
        now: int,
    ) -> None:
        result, skew = checked.result, self.policy.max_clock_skew
        if now > checked.keys_valid_until:
            raise CredentialError(_F.ISSUER_INVALID, "an issuer's current key has expired")
        for link in result.links:
            if now < link.not_before - skew:
                raise CredentialError(_F.NOT_YET_VALID, f"valid from {link.not_before}", link.index)
            if now >= link.expires_at + skew:
                raise CredentialError(_F.EXPIRED, f"expired at {link.expires_at}", link.index)
        for filed_under, held in feeds.items():  # (the same object: equal, no __eq__ call)
            if held.authority is not filed_under and held.authority != filed_under:
                raise CredentialError(
                    _F.FEED_INVALID, f"{held.authority}'s feed filed under {filed_under}"
                )
        feed = feeds.get(result.authority)
        if feed is None:
            raise CredentialError(_F.NO_FEED, str(result.authority))
        feed.check_fresh(now=now, max_staleness=self.policy.max_feed_staleness)
        credential_revoked, identity_revoked = feed.credential_revoked, feed.identity_revoked
        for link in result.links:
            if credential_revoked(link.hash):
                raise CredentialError(_F.REVOKED, f"credential {link.hash.hex()}", link.index)
            if identity_revoked(link.subject.digest) or identity_revoked(link.issuer.digest):
                raise CredentialError(_F.REVOKED, "identity revoked", link.index)
        actor = presenter if isinstance(presenter, Identifier) else presenter.identifier
        if result.actor != actor:
            raise CredentialError(_F.WRONG_SUBJECT, f"{result.actor} != {actor}")
        # stateless verifiers too: no issuer (or presenter) history the feed says is superseded
        _check_current(
            feed,
            result.authority,
            checked.identities,
            None if isinstance(presenter, Identifier) else presenter,
        )
        known, known_in = self._known, self._known_in
        if known is None and known_in is None:
            shown = (
                None
                if isinstance(presenter, Identifier)
                else (
                    presenter.identifier.digest,
                    presenter.first_index,
                    presenter.current.change_hash,
                )
            )
            memory = self._memory
            with self._lock:
                if checked.agreed != (memory.version, shown):
                    memory.check(checked.result, checked.identities, presenter, feed)
                    checked.agreed = (memory.version, shown)
        else:
            for identity in checked.identities:
                try:
                    if known is not None:
                        known(identity)
                    if known_in is not None:
                        known_in(identity, result.authority)
                except IdentityError as exc:
                    raise CredentialError(_F.ISSUER_INVALID, str(exc)) from None

    # -- checks that depend on the bytes (cached) -----------------------------------------------

    def _check_bytes(self, data: bytes, now: int, checkpoints: Checkpoints | None) -> _Checked:
        """Cheap checks first (decoding, anchors, alignment, narrowing, depth, cycles), then
        the signatures, verifying only the histories of issuers the links name."""
        try:
            chain = CredentialChain.decode(data)
            bodies = [CredentialBody.decode(signed.body) for signed in chain.credentials]
        except DecodeError as exc:
            raise _decode_failure(exc) from None

        links: list[VerifiedLink] = []
        seen: set[bytes] = set()  # identifier digests (bytes hash in C, cached per object)
        previous: VerifiedLink | None = None
        # the chain's window and conditions, gathered as the links are checked
        not_before, expires_at = bodies[0].not_before, bodies[0].expires_at
        caveats: list[str] = []
        for index, (signed, body) in enumerate(zip(chain.credentials, bodies, strict=True)):
            self._check_link(index, body, previous, seen)
            previous = VerifiedLink(
                index,
                body.id,
                signed.hash,
                body.issuer,
                body.subject,
                body.attributes,
                body.not_before,
                body.expires_at,
                body.depth,
                None if body.delegation is None else body.delegation.purpose,
                () if body.delegation is None else body.delegation.caveats,
            )
            links.append(previous)
            not_before = max(not_before, body.not_before)
            expires_at = min(expires_at, body.expires_at)
            caveats.extend(previous.caveats)

        histories: dict[bytes, UnverifiedHistory] = {}  # by identifier digest
        for history_bytes in chain.histories:
            try:  # the identifier is the hash of the first body: known before verifying
                history = UnverifiedHistory.decode(history_bytes)
                digest = history.identifier_digest
            except DecodeError as exc:
                raise CredentialError(_F.ISSUER_INVALID, str(exc)) from None
            if digest in histories:
                raise CredentialError(_F.MALFORMED, f"two histories for {Identifier(digest)}")
            histories[digest] = history

        identities: dict[bytes, VerifiedIdentity] = {}  # by identifier digest
        for index, (signed, body) in enumerate(zip(chain.credentials, bodies, strict=True)):
            digest = body.issuer.digest
            issuer = identities.get(digest)
            if issuer is None:
                issuer_history = histories.get(digest)
                if issuer_history is None:
                    raise CredentialError(_F.MISSING_HISTORY, str(body.issuer), index)
                try:
                    issuer = identities[digest] = verify_history(
                        issuer_history, now=now, checkpoints=checkpoints
                    )
                except IdentityError as exc:
                    raise CredentialError(_F.ISSUER_INVALID, str(exc), index) from None
            try:
                key = verify_signed_by(
                    issuer, signed.attestation, signed.body, signed.signature, at=body.created_at
                )
            except IdentityError as exc:
                bad = exc.reason is IdentityFailure.BAD_SIGNATURE
                reason = _F.BAD_SIGNATURE if bad else _F.ATTESTATION_INVALID
                raise CredentialError(reason, str(exc), index) from None
            if body.expires_at > key.expires_at:
                raise CredentialError(
                    _F.ATTESTATION_INVALID, "outlives the issuer's signing key", index
                )

        last = links[-1]
        used = tuple(identities[link.issuer.digest] for link in links)
        keys_valid_until = min(i.current.body.valid_until for i in used)
        result = VerifiedCredential(
            actor=last.subject,
            authority=links[0].issuer,
            links=tuple(links),
            attributes=last.attributes,
            caveats=tuple(caveats),
            not_before=not_before,
            expires_at=expires_at,
            chain=data,
            issuers=used,
            presenter=None,
            keys_valid_until=keys_valid_until,
            _token=_VERIFIED,
        )
        return _Checked(result, used, keys_valid_until, now)

    def _check_link(
        self,
        index: int,
        body: CredentialBody,
        previous: VerifiedLink | None,
        seen: set[bytes],
    ) -> None:
        """The structural rules of a link: anchors, alignment, narrowing, depth, cycles."""
        if previous is None:
            if body.issuer not in self.policy.anchors:
                raise CredentialError(_F.UNTRUSTED_ISSUER, str(body.issuer), index)
            if body.delegation is not None:
                raise CredentialError(_F.NOT_A_DELEGATION, "the root names a parent", index)
            seen.add(body.issuer.digest)
        else:
            if body.delegation is None:
                raise CredentialError(_F.NOT_A_DELEGATION, "a link without a parent", index)
            if body.issuer != previous.subject:
                raise CredentialError(_F.MISALIGNED, f"issuer {body.issuer}", index)
            if body.delegation.parent != previous.hash:
                raise CredentialError(_F.BROKEN_LINK, f"parent is not link {index - 1}", index)
            excess = body.attributes.first_excess_over(previous.attributes)
            if excess is not None:
                raise CredentialError(_F.AMPLIFIED, f"attribute {excess!r}", index)
            if body.expires_at > previous.expires_at:
                raise CredentialError(_F.AMPLIFIED, "expires after its parent", index)
            if body.depth >= previous.depth:
                raise CredentialError(
                    _F.DEPTH_EXCEEDED,
                    f"depth {body.depth}, parent allows {previous.depth - 1}",
                    index,
                )
            if index > limits.MAX_DELEGATION_LINKS:
                raise CredentialError(_F.DEPTH_EXCEEDED, "over the global limit", index)
        if body.subject.digest in seen:
            raise CredentialError(_F.CYCLE, f"{body.subject} appears twice", index)
        seen.add(body.subject.digest)
