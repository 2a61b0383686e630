"""The authority's requesters: a signed request checked against the authority's stored copy of
its requester's history (a forked or rolled-back one is refused), the history learned once the
request is authorised (stored or extended, and published as superseding the older ones), and
the memory of answered requests, so that a replayed request gets the same answer again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from troth import limits
from troth.authority.base import AuthorityBase
from troth.authority.requests import VerifiedRequest, verify_request
from troth.crypto import sha256
from troth.errors import AuthorityError, AuthorityFailure, IdentityError
from troth.identity import Checkpoint, Identifier, VerifiedIdentity
from troth.identity.known import Binds, StoredSpan

__all__ = ["ANSWERED_REQUESTS", "Requesters"]

ANSWERED_REQUESTS: Final = 4096
"""Answers to revoke and rotated requests kept by request hash: a replayed request gets the
same answer without costing the authority its signature checks again."""
_A = AuthorityFailure


class Requesters(AuthorityBase):
    """The checks of requests and their requesters' histories, and the replayed-request memory."""

    def _verify(self, request: bytes, kind: str, now: int) -> VerifiedRequest:
        """A signed request of `kind`, whose requester history does not fork from or roll back
        the authority's stored copy."""
        return verify_request(
            request,
            authority=self.identifier,
            kind=kind,
            now=now,
            known=self._check_known,
            checkpoints=self._attests,
        )

    def _check_known(self, identity: VerifiedIdentity) -> None:
        """The store-or-extend check of a requester's history: a copy from a checkpoint binds
        it as `binds` says, or when this authority's own feed names one of its changes (its
        word on that history, docs/formats.md, "A stored copy from a checkpoint")."""
        self.identities.check_known(identity, binds=self._binds(identity))

    def _binds(self, identity: VerifiedIdentity) -> Binds | None:
        node = self.binds
        if node is None:
            return None
        node_binds = node(identity)
        digest = identity.identifier.digest

        def binds(changes: Sequence[tuple[int, bytes]]) -> bool:
            own = any(self.store.supersession_hash(digest, i + 1) == h for i, h in changes)
            return own or node_binds(changes)

        return binds

    def _attests(self, checkpoint: Checkpoint, change_hash: bytes) -> bool:
        """A requester's checkpointed history: its first change is named by a supersession this
        authority published, or continues the copy of it the authority's node stored — a
        local identity's rows, a full copy, or a copy from a checkpoint that this authority's
        own feed names a change of (`_published`): its node may have stored a copy at first
        sight on a co-trusted authority's word, which this authority must not publish as its
        own (review 26b, authority store 1)."""
        identifier = checkpoint.identifier
        if checkpoint.authority == self.identifier.digest:
            named = self.store.supersession_hash(identifier, checkpoint.index + 1)
            if named is not None:
                return named == change_hash
        return self.identities.attested_by_store(
            checkpoint, change_hash, own_word=lambda span: self._published(identifier, span)
        )

    def _published(self, identifier: bytes, span: StoredSpan) -> bool:
        """Whether this authority's newest supersession of `identifier` names a change `span`
        holds: the copy's changes before it are fixed by that change's hash links, those after
        it by the rotations' signatures."""
        published = self.store.latest_supersession(identifier)
        if published is None:
            return False
        named = self.store.supersession_hash(identifier, published[1])
        return named is not None and span.hash_at(published[1] - 1) == named

    def _learn(
        self,
        requester: VerifiedIdentity,
        now: int,
        charged_to: Identifier | None = None,
        *,
        unpublished_ok: bool = False,
    ) -> int | None:
        """Store or extend an authorised requester's history, and publish it as superseding
        every shorter or different one (charged to `charged_to`, default the requester's quota
        holder: itself, or the ticket of many uses that enrolled it, `quota_holder`).
        Returns the newest supersession's seq, if any. `unpublished_ok` (a refresh, an
        enrollment, a link revocation): a supersession the feed refuses (a spent budget, a
        quota of 0, a full members' part: QUOTA_EXCEEDED or FEED_LIMIT, raised before it
        writes) leaves the history stored and the request goes on, as a revoke request's chain
        issuers do (`_keep_issuers`); its `rotated` announcement says why. Refused, a member
        rotating away from a stolen key got no credential while the authority kept the older
        history, under which the thief still refreshed; after the members' part filled, for
        good (review 63a, authority 1 and 3); nor revoked a link, told its quota was spent
        (review 63m, authority 2)."""
        try:
            # judged as at `_verify`: a copy that does not bind it is replaced (review 30a)
            self.identities.observe(requester, binds=self._binds(requester))
        except IdentityError as exc:
            raise AuthorityError(_A.REQUEST_INVALID, f"requester: {exc}") from None
        if charged_to is None:  # a ticket's members share its budget (review 71e, quota 2)
            charged_to = self.quota_holder(requester.identifier)
        try:
            return self.revocations.supersede(requester, now=now, charged_to=charged_to)
        except AuthorityError as exc:
            if not unpublished_ok or exc.reason not in (_A.FEED_LIMIT, _A.QUOTA_EXCEEDED):
                raise
        published = self.store.latest_supersession(requester.identifier.digest)
        return None if published is None else published[0]

    def _replayed(self, request: bytes, now: int) -> tuple[int, int | None] | None:
        """The answer already given to these exact request bytes, while the request is valid."""
        key = sha256(request)
        answered = self._answered.get(key)
        if answered is None:
            return None
        if abs(now - answered[0]) > limits.MAX_CLOCK_SKEW_SECONDS:
            del self._answered[key]
            return None
        return answered

    def _remember(self, request: bytes, verified: VerifiedRequest, answer: int | None) -> None:
        self._answered[sha256(request)] = (verified.requested_at, answer)
        while len(self._answered) > ANSWERED_REQUESTS:
            self._answered.popitem(last=False)
