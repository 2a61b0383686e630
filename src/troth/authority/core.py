"""The authority: members, enrollment tickets, member credentials, and the revocation feed.

Sans-IO over its store: every method takes `now` and bytes or values and returns bytes or
values; the CLI and the node's `authority` service carry them.

Every signed request is checked against the authority's stored copy of the requester's history
(a forked or rolled-back history is refused), and once the request is authorised that history
is stored or extended, and published as superseding the older ones (kind-3 feed entries), so
that stateless verifiers refuse a stolen backup's history too.

Roles: the authority's own identity is an admin. Members with `troth.role` = `admin` may create
any ticket and set `troth.*` attributes; `enroller` may create member tickets without `troth.*`
attributes. Nobody else may create tickets.

The authority is put together from its parts: troth.authority.members (members and roles),
.base (its parts and look-ups), .requesters (requests checked, requesters learned, replays),
.issuing (member credentials), .revoking (revocations). This module holds the authority's
creation, its tickets, enrollment, refresh and rotation announcements, member removal, and
its feed.
"""

from __future__ import annotations

import logging
from typing import Final

from troth import limits
from troth.authority.base import held_since
from troth.authority.issuing import Issuing
from troth.authority.members import (
    ADMIN,
    ENROLLER,
    ROLE,
    Member,
    holder_name,
    member_from_record,
    quota_ticket_of,
)
from troth.authority.revoking import Revoking
from troth.authority.tickets import Ticket, check_address, code_hash, new_code
from troth.credentials import Attributes, CredentialChain, RevocationKind, VerifiedFeed, check_fits
from troth.encoding import cbor
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    DecodeError,
    StorageError,
)
from troth.faults import crash_point
from troth.identity import Identifier, IdentityService, Signer, VerifiedIdentity
from troth.storage import AuthorityConfig, AuthorityStore, HoldTime, MemberRecord

__all__ = ["ADMIN", "ENROLLER", "NOT_ITS_OWN_MEMBER", "ROLE", "Authority", "Member"]

DEFAULT_CREDENTIAL_TTL: Final = 3600
DEFAULT_TICKET_TTL: Final = 600
DEFAULT_DELEGATION_DEPTH: Final = 4
NOT_ITS_OWN_MEMBER: Final = "an authority is no member of itself"
"""Why an authority's own identity enrolling with its ticket is refused (review 64h, enroll 3:
the use was taken, the authority listed itself as a member, and its credential from itself to
itself, a delegation cycle, was refused by the holder, which sent it again for a week)."""
_A = AuthorityFailure
_log = logging.getLogger(__name__)
_AGAIN_KEYS: Final = {  # `AuthorityStore.revoke_again`'s kinds (REVOKE_AGAIN_KINDS)
    "identity": "identities",
    "credential": "credentials",
    "supersession": "supersessions",
}


class Authority(Revoking, Issuing):
    """An authority hosted by a node: `identities` holds its key, `store` its state."""

    @classmethod
    def create(
        cls,
        identities: IdentityService,
        store: AuthorityStore,
        name: str,
        *,
        now: int,
        credential_ttl: int = DEFAULT_CREDENTIAL_TTL,
        delegation_depth: int = DEFAULT_DELEGATION_DEPTH,
        revocation_quota: int = limits.DEFAULT_REVOCATION_QUOTA,
    ) -> Authority:
        """Create the authority's identity (named `name`) and its configuration."""
        if not 0 <= revocation_quota <= limits.MAX_REVOCATION_QUOTA:
            raise AuthorityError(
                _A.REQUEST_INVALID,
                f"the revocation quota is 0 to {limits.MAX_REVOCATION_QUOTA}, "
                f"not {revocation_quota}",
            )
        if not 1 <= credential_ttl <= limits.MAX_TTL:  # review 44c, bounds 1
            raise AuthorityError(
                _A.REQUEST_INVALID,
                f"the credential TTL is 1 to {limits.MAX_TTL} s (MAX_TTL), not {credential_ttl}",
            )
        if not 0 <= delegation_depth <= limits.MAX_DELEGATION_LINKS:
            raise AuthorityError(
                _A.REQUEST_INVALID,
                f"the delegation depth is 0 to {limits.MAX_DELEGATION_LINKS}, "
                f"not {delegation_depth}",
            )
        with store.transaction():
            if store.get_config() is not None:
                raise AuthorityError(_A.REQUEST_INVALID, "this node already hosts an authority")
            local = identities.create(now=now, name=name)
            config = AuthorityConfig(
                local.identifier.digest,
                name,
                credential_ttl,
                delegation_depth,
                now,
                revocation_quota,
            )
            store.put_config(config)
        return cls(identities, store, config)

    def create_ticket(
        self,
        *,
        creator: Identifier,
        attributes: Attributes,
        address: str,
        now: int,
        uses: int = 1,
        ttl: int = DEFAULT_TICKET_TTL,
        role: str | None = None,
    ) -> Ticket:
        """A one-time (or `uses`-time) ticket granting `attributes` (and `role`) to its redeemer,
        at `address` (`node:NAME` or a route: `check_address`), at most MAX_TICKET_BYTES
        encoded (what `Ticket.parse` accepts); REQUEST_INVALID otherwise, nothing stored."""
        if not (1 <= uses <= limits.MAX_TICKET_USES and 1 <= ttl <= limits.MAX_TTL):
            raise AuthorityError(
                _A.REQUEST_INVALID,
                f"uses must be 1 to {limits.MAX_TICKET_USES} (MAX_TICKET_USES) and ttl 1 to "
                f"{limits.MAX_TTL} s (MAX_TTL) (review 44c, bounds 1)",
            )
        roles = self.roles_of(creator)
        is_admin = ADMIN in roles
        if not (is_admin or ENROLLER in roles):
            raise AuthorityError(
                _A.ROLE_REQUIRED, "creating tickets needs the admin or enroller role"
            )
        if (role is not None or attributes.reserved_keys()) and not is_admin:
            raise AuthorityError(
                _A.RESERVED_ATTRIBUTE, ", ".join(attributes.reserved_keys()) or ROLE
            )
        if role is not None:
            if role not in (ADMIN, ENROLLER):
                raise AuthorityError(_A.REQUEST_INVALID, f"unknown role {role!r}")
            try:  # 64 attributes and a role are 65 (review 53e, attributes 3)
                attributes = attributes.merged(Attributes({ROLE: role}))
            except ValueError as exc:
                raise AuthorityError(
                    _A.REQUEST_INVALID, f"the ticket's attributes with its role: {exc}"
                ) from None
        try:
            check_fits(attributes)
        except CredentialError as exc:
            raise AuthorityError(_A.REQUEST_INVALID, exc.detail) from None
        try:  # an address its redeemer can reach (review 45e, address 1)
            check_address(address)
        except DecodeError as exc:
            raise AuthorityError(_A.REQUEST_INVALID, str(exc)) from None
        code = new_code()
        ticket = Ticket(code, self.history(), address)
        size = len(ticket.encode())
        if size > limits.MAX_TICKET_BYTES:  # one its redeemers' `Ticket.parse` accepts
            raise AuthorityError(  # (review 45e, tickets 1)
                _A.REQUEST_INVALID,
                f"the ticket would be {size} bytes, over MAX_TICKET_BYTES "
                f"({limits.MAX_TICKET_BYTES}): give a shorter address",
            )
        with self.store.transaction():
            self.store.forget_tickets(now)  # those past their expiry (review 55c, tickets 1)
            self.store.put_ticket(
                code_hash(code),
                cbor.encode(attributes.to_cbor()),
                uses,
                now + ttl,
                creator.digest,
                now,
            )
            crash_point("authority.ticket.before-commit")
        # killed here, the ticket is stored but its code is in no one's hands: only its hash
        # is kept, so it can never be redeemed and is gone at its expiry (review 45f)
        crash_point("authority.ticket.after-commit")
        return ticket

    def forget_expired_tickets(self, *, now: int) -> int:
        """Delete the tickets that expired by `now`, so that none is redeemed again when the
        clock is set back (review 55c, tickets 1: the redemption compares the expiry with the
        clock, and an expired ticket was redeemed at an earlier reading). Done at each
        enrollment and ticket made, and at each round of a running node hosting the authority
        (`AuthorityService.maintain`). How many were deleted."""
        with self.store.transaction():
            return self.store.forget_tickets(now)

    def void_ticket(self, ticket: Ticket, *, now: int) -> bool:
        """Void `ticket` before its expiry, one someone else saw (a shell's history, a log, a
        screen): no one redeems it any more (review 55c, tickets 2). A member that redeemed it
        stays a member (`remove_member`), and a repeat of its enrollment is still answered with
        the credential recorded (`enroll`: nothing lost on a crash). Counted by the rollback
        guard: a restored copy holding the ticket voids every ticket (docs/storage.md). Whether
        this authority held it unexpired (False: unknown here, expired or voided already)."""
        with self.store.transaction():
            self.store.forget_tickets(now)
            if not self.store.forget_tickets(now, code_hash(ticket.code)):
                return False
            self.store.count_irreversible()
        return True

    # -- enrollment and member credentials -------------------------------------------------------

    def enroll(self, request: bytes, *, now: int) -> CredentialChain:
        """Redeem the ticket code in a signed enroll request; make (or update) the member and
        return its credential (docs/storage.md, "Recovery rules"), within the member's bound
        of live credentials (`_issue_bounded`: an enroller redeeming tickets it made itself
        gets no more than a refresh would, review 25 authority 1).

        The redemption is one atomic conditional write, recorded with the credential it issued
        in the same transaction. A repeat of the same enrollment (a new request by the same
        identity with the same code, within the ticket's window, even once its uses are
        gone) is answered with that credential: never a second use, never a second credential.
        So a member whose answer was lost (a crash on either side) enrolls again and gets it,
        unless it expired or a rotation retired it (`_answers_again`; then as its refresh would
        be: review 55c, enroll 1). After the window, the same member's repeat is answered as
        its refresh would be (`_issue_bounded`; NOT_A_MEMBER once removed); anyone else's is
        TICKET_UNKNOWN. An identity revoked for good (`revoke_identity`) is NOT_A_MEMBER
        whatever its ticket. While a restore holds the authority nothing is answered, a repeat
        neither (RESTORED: review 70t, enroll 1).
        """
        verified = self._verify(request, "enroll", now)
        self.forget_expired_tickets(now=now)  # committed, whatever this enrollment's end
        try:
            (code,) = verified.arguments
            code = cbor.expect_bytes(code, "code")
        except (ValueError, DecodeError):
            raise AuthorityError(_A.REQUEST_INVALID, "enroll takes one ticket code") from None
        member = verified.requester.identifier
        if member == self.identifier:  # its credential would be a cycle no one verifies
            raise AuthorityError(_A.REQUEST_INVALID, NOT_ITS_OWN_MEMBER)  # (review 64h, enroll 3)
        hashed = code_hash(code)
        with self.store.transaction():
            # revoked for good (`revoke_identity`): no ticket makes it a member again, none of
            # its uses taken (review 45c, enrollment 1)
            if self.store.find_revocation(int(RevocationKind.IDENTITY), member.digest) is not None:
                raise AuthorityError(_A.NOT_A_MEMBER, f"{member} is revoked for good")
            issued = self.store.find_redemption(hashed, member.digest, now)
            if issued is not None:
                # held by a restore, nothing is answered again either: a removal after the copy
                # may have revoked the credential the copy's redemption recorded (RESTORED, not
                # for good: the holder keeps its pending record; review 70t, enroll 1)
                self.check_not_held()
                if self.store.get_member(member.digest) is None:
                    raise AuthorityError(_A.NOT_A_MEMBER, "removed since it redeemed this ticket")
                self._learn(verified.requester, now, unpublished_ok=True)
                recorded = CredentialChain.decode(issued)
                if self._answers_again(recorded, now):
                    return recorded
                # expired, or retired by a rotation since: answered as the member's refresh
                # would be, as after the window (review 55c, enroll 1)
                return self._issue_bounded(member, self.member(member).attributes, now)
            redeemed = self.store.redeem_ticket(hashed, now)
            if redeemed is None:
                if not self.store.redeemed(hashed, member.digest):
                    raise AuthorityError(_A.TICKET_UNKNOWN)
                # The member that redeemed this ticket asks again after its window (its answer
                # was lost, its resume came late): answered as its refresh would be, a signed
                # request by that very member (review 38c, enroll 1: it was refused, and the
                # member left holding nothing). No use is taken and nothing merged.
                attributes = self.member(member).attributes  # NOT_A_MEMBER once removed
                self._learn(verified.requester, now, unpublished_ok=True)
                return self._issue_bounded(member, attributes, now)
            attributes_cbor, created_by, ticket_expires_at, uses = redeemed
            # a use a restored copy of the store must not give back (review 51d, rollback 1)
            self.store.count_irreversible()
            granted = Attributes.from_cbor(cbor.decode(attributes_cbor))
            self._check_creator(Identifier(created_by), granted)  # rolls the use back
            existing = self.store.get_member(member.digest)
            try:  # a re-enrollment merges: within what a credential may hold (review 22c)
                attributes = (
                    granted
                    if existing is None
                    else member_from_record(existing).attributes.merged(granted)
                )
                check_fits(attributes)
            except (ValueError, CredentialError) as exc:
                raise AuthorityError(
                    _A.REQUEST_INVALID, f"the member's attributes with this ticket's: {exc}"
                ) from None
            self.store.put_member(  # a ticket of many uses: its members share its quota
                MemberRecord(  # (review 70q, feeds 2; `quota_ticket_of`)
                    member.digest,
                    cbor.encode(attributes.to_cbor()),
                    created_by,
                    now,
                    quota_ticket_of(existing, hashed, uses),
                )
            )
            self._learn(verified.requester, now, unpublished_ok=True)
            chain = self._issue_bounded(member, attributes, now)
            self.store.record_redemption(
                hashed,
                member.digest,
                chain.credentials[0].hash,
                chain.encode(),
                ticket_expires_at,
                now,
            )
            crash_point("authority.enroll.before-commit")
        crash_point("authority.enroll.after-commit")
        return chain

    def _check_creator(self, creator: Identifier, granted: Attributes) -> None:
        """A ticket is good while its creator still may create it (`create_ticket`'s rule):
        one made by an enroller or admin member no longer makes members once that member was
        removed or revoked for good (review 45c, enrollment 2). TICKET_UNKNOWN: never again."""
        roles = self.roles_of(creator)
        reserved = bool(granted.reserved_keys())
        if ADMIN not in roles and (reserved or ENROLLER not in roles):
            raise AuthorityError(
                _A.TICKET_UNKNOWN, "its creator no longer has the role that made it"
            )

    def refresh(self, request: bytes, *, now: int) -> CredentialChain:
        """A fresh credential for a member that proves it is itself (a signed refresh request);
        the authority learns the member's newest history."""
        verified = self._verify(request, "refresh", now)
        with self.store.transaction():
            member = self.member(verified.requester.identifier)
            self._learn(verified.requester, now, unpublished_ok=True)
            chain = self._issue_bounded(member.identifier, member.attributes, now)
            crash_point("authority.refresh.before-commit")
        # killed here, the credential is issued and its answer lost: the member holds its
        # older one and asks again, within the bound of live credentials (`_issue_bounded`)
        crash_point("authority.refresh.after-commit")
        return chain

    def rotated(self, request: bytes, *, now: int) -> int | None:
        """A member announces its rotated history (a signed `rotated` request, arguments []):
        it is stored (only as an extension of the stored copy) and published as superseding
        the older histories. Re-announcing appends nothing. Returns the newest supersession's
        seq (None when the history has one change). QUOTA_EXCEEDED or FEED_LIMIT when the
        supersession cannot be appended: the history is stored all the same."""
        cached = self._replayed(request, now)
        if cached is not None:
            return cached[1]
        verified = self._verify(request, "rotated", now)
        if verified.arguments:
            raise AuthorityError(_A.REQUEST_INVALID, "rotated takes no arguments")
        refused: AuthorityError | None = None
        with self.store.transaction():
            self.member(verified.requester.identifier)
            try:
                seq = self._learn(verified.requester, now)
            except AuthorityError as exc:
                if exc.reason not in (_A.FEED_LIMIT, _A.QUOTA_EXCEEDED):
                    raise
                # the history is kept, committed (the retired key refused here), and the
                # member told its rotation is not published (review 63a, authority 3)
                refused = exc
        if refused is not None:
            requester = verified.requester.identifier
            holder = self.quota_holder(requester)
            if holder == requester or refused.reason is not _A.QUOTA_EXCEEDED:
                raise refused
            detail = refused.detail.replace(str(holder), holder_name(requester, holder))
            raise AuthorityError(_A.QUOTA_EXCEEDED, detail) from None
        self._remember(request, verified, seq)
        return seq

    # -- members ---------------------------------------------------------------------------------

    def remove_member(
        self, identifier: Identifier, *, now: int, reason: str = "member removed"
    ) -> list[bytes]:
        """Stop issuing to a member and revoke its credentials a verifier may still accept:
        unexpired, or expired within `MAX_CLOCK_SKEW_SECONDS` (the most skew a verifier allows;
        review 34c, remove 1). Returns their ids."""
        with self.store.transaction():
            if not self.store.remove_member(identifier.digest):
                raise AuthorityError(_A.NOT_A_MEMBER, str(identifier))
            self.store.count_irreversible()  # review 51d: a restore is found, and said
            since = now - limits.MAX_CLOCK_SKEW_SECONDS
            ids = self.store.unexpired_issued(identifier.digest, since)
            self._revoke_many(RevocationKind.CREDENTIAL, ids, now, reason)
            crash_point("authority.revoke.before-commit")
        crash_point("authority.revoke.after-commit")
        return ids

    # -- the feed ----------------------------------------------------------------------------

    def feed(self, *, now: int, since: int = 0) -> bytes:
        """One signed page of the revocation feed from entry `since`, as of `now`."""
        return self.revocations.page(self._feed_signer(now), since=since, now=now)

    def feed_page(self, *, now: int, since: int = 0) -> tuple[bytes, int]:
        """`feed` and the entry the page ends before (where the next page starts)."""
        return self.revocations.page_and_end(self._feed_signer(now), since=since, now=now)

    def _feed_signer(self, now: int) -> Signer:
        """The signer of a feed page, the authority's own rotation published first: every page
        signed under its current history carries the entry saying that history supersedes
        the older ones, so a stolen older key's credentials and pages stop verifying
        (docs/credentials.md, "A stolen authority key"). Nothing is appended once published.
        RESTORED while a restore holds the authority: its feed is the copy's, which lacks what
        was revoked after it, and a node syncing it for the first time would take that as
        all (review 65o, feed 2)."""
        self.check_not_held()
        signer = self.signer(now)
        self._publish_own(signer.identity, now)
        return signer

    def _publish_own(self, identity: VerifiedIdentity, now: int) -> None:
        """Publish the authority's own history as superseding its older ones, unless done; a
        full feed (FEED_LIMIT) records nothing more, but it is still served."""
        try:
            self.revocations.supersede(identity, now=now)
        except AuthorityError as exc:
            if exc.reason is not _A.FEED_LIMIT:
                raise

    def release_restored(self) -> int | HoldTime | None:
        """Lift the hold a restore of node.db found put on this authority (review 65o, feed
        2), on its operator's word that what was revoked after the copy was taken is revoked
        again; when it was held (`HoldTime.DAMAGED`: node.db held its time damaged, released
        on the same word: review 72b, holds 1), or None (it was not: nothing done)."""
        held = self.store.release_restore_hold()
        if held is not None:
            _log.warning(
                "authority %s released from a restore's hold (held %s)",
                self.config.name,
                held_since(held),
            )
        return held

    def to_revoke_again(self) -> dict[str, list[str]]:
        """What a failed re-revoke that held this authority would have revoked again (its
        store's line lost it: troth.node.trust `_revoke_again`), by kind: identities and
        supersessions (the identity whose newest history is to be published again) by
        identifier, credentials by hash (hex); all empty when none is recorded (review 67d,
        hold 1)."""
        found: dict[str, list[str]] = {key: [] for key in _AGAIN_KEYS.values()}
        for kind, target in self.store.revoke_again():
            if kind not in _AGAIN_KEYS:  # only `hold` writes the table
                raise StorageError(f"authority_revoke_again holds an unknown kind {kind!r}")
            shown = target.hex() if kind == "credential" else str(Identifier(target))
            found[_AGAIN_KEYS[kind]].append(shown)
        return found

    def held_feed(self, *, now: int, previous: VerifiedFeed | None = None) -> VerifiedFeed:
        """The authority's own view of its feed (what the node hosting it verifies against),
        its own rotation published first (`_feed_signer`)."""
        self._publish_own(self.signer(now).identity, now)
        return self.revocations.held(now=now, previous=previous)
