"""The authority's parts (its identity service, store, configuration and revocation feed) and
the look-ups every other part of it uses: its signer and history, its members and their roles.

`AuthorityBase` is the class the authority's parts (troth.authority.requesters, .issuing,
.revoking) build on; `troth.authority.core.Authority` is them put together.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from troth.authority.feed import AuthorityFeed
from troth.authority.members import ADMIN, ROLE, Member, member_from_record, quota_holder
from troth.credentials import ChainVerifier, TrustPolicy
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    DecodeError,
    IdentityError,
    IdentityFailure,
)
from troth.identity import Identifier, IdentityService, LocalIdentity, Signer, VerifiedIdentity
from troth.identity.change import ChangeBody, UnverifiedHistory
from troth.identity.known import Binds
from troth.storage import AuthorityConfig, AuthorityStore, HoldTime

__all__ = ["AuthorityBase", "held_since"]

_A = AuthorityFailure
_OUTSIDE = IdentityFailure.KEY_OUTSIDE_VALIDITY


class AuthorityBase:
    """The authority's parts, and its look-ups of itself and its members."""

    def __init__(self, identities: IdentityService, store: AuthorityStore, config: AuthorityConfig):
        self.identities = identities
        self.store = store
        self.config = config
        self.identifier = Identifier(config.identifier)
        self.revocations = AuthorityFeed(store, self.identifier, config.revocation_quota)
        self._chains = ChainVerifier(TrustPolicy(frozenset({self.identifier})))
        self._answered: OrderedDict[bytes, tuple[int, int | None]] = OrderedDict()
        self.binds: Callable[[VerifiedIdentity], Binds] | None = None
        """Given a requester's history (a full one), which stored copies from a checkpoint bind
        it (troth.identity.known `Binds`: its node gives its rule, this authority having
        standing over its requesters' histories, troth.node.copies); None: every copy binds
        it. Without it, a co-trusted authority's copy of a member made up after a gap refused
        her every request here (review 30a, enrollment 1)."""

    def signer(self, now: int) -> Signer:
        """The authority's signer at `now`; AuthorityError KEY_EXPIRED past its primary key
        (`own`)."""
        with self._own_key(now):
            return self.identities.signer(self.config.name, now=now)

    def own(self, now: int) -> LocalIdentity:
        """The authority's own identity, its history verified at `now`; AuthorityError
        KEY_EXPIRED once its current primary key is past its `valid_until` (it was a bare
        IdentityError, "change 0: key used outside its validity", whoever asked: a member
        over a node's answer, the operator; review 75l, issuance 4)."""
        with self._own_key(now):
            return self.identities.get(self.config.name, now=now)

    @contextmanager
    def _own_key(self, now: int) -> Iterator[None]:
        try:
            yield
        except IdentityError as exc:
            ends = self._key_valid_until() if exc.reason is _OUTSIDE else None
            if ends is None or now <= ends:
                raise  # not valid yet (a clock set back), or another refusal
            raise AuthorityError(
                _A.KEY_EXPIRED,
                f"authority {self.identifier}'s current key was valid until {ends}, now is {now}",
            ) from None

    def _key_valid_until(self) -> int | None:
        """The stored current key's `valid_until` (None: a row that does not decode)."""
        try:
            history = UnverifiedHistory.decode(self.identities.find(self.config.name).history)
            return ChangeBody.decode(history.changes[-1].body).valid_until
        except (DecodeError, IndexError):
            return None

    def restore_held(self) -> int | None:
        """When a restore of its node.db found held this authority, or None (review 65o, feed
        2: the copy's feed lacks every revocation made after it; docs/storage.md, "An
        authority's node from before some revocations")."""
        return self.store.restore_held()

    def restore_hold(self) -> int | HoldTime | None:
        """`restore_held`, a hold whose time node.db holds damaged `HoldTime.DAMAGED` (a hold
        all the same, released on the same word: review 72b, holds 1)."""
        return self.store.restore_hold()

    def check_not_held(self) -> None:
        """AuthorityError RESTORED while a restore holds this authority: it issues nothing and
        serves no feed page (its feed is the copy's: deny when in doubt); a hold whose time
        node.db holds damaged too (review 72b, holds 1: it was StorageError, naming no
        release)."""
        held = self.store.restore_hold()
        if held is not None:
            raise AuthorityError(
                _A.RESTORED,
                f"held {held_since(held)}: revoke again what was revoked after the copy was "
                "taken, then troth authority release-restored",
            )

    def history(self) -> bytes:
        return self.identities.export(self.config.name)

    def changes(self) -> int:
        """How many changes the authority's own history has (each rotation adds one)."""
        return self.identities.find(self.config.name).changes

    def roles_of(self, identifier: Identifier) -> frozenset[str]:
        if identifier == self.identifier:
            return frozenset({ADMIN})
        record = self.store.get_member(identifier.digest)
        if record is None:
            return frozenset()
        return member_from_record(record).attributes.values_of(ROLE)

    def members(self) -> list[Member]:
        return [member_from_record(r) for r in self.store.list_members()]

    def quota_holder(self, member: Identifier) -> Identifier:
        """The account `member`'s entries are charged to (troth.authority.members
        `quota_holder`: itself, or the ticket of many uses that enrolled it)."""
        return quota_holder(self.store.get_member(member.digest), member)

    def member(self, identifier: Identifier) -> Member:
        record = self.store.get_member(identifier.digest)
        if record is None:
            raise AuthorityError(_A.NOT_A_MEMBER, str(identifier))
        return member_from_record(record)


def held_since(held: int | HoldTime) -> str:
    """Since when an authority is held, for its refusals: a damaged time named as such."""
    if held is HoldTime.DAMAGED:
        return "since a time node.db holds damaged (not a whole number)"
    return f"since {held}"
