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
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.authority.feed import AuthorityFeed
from troth.authority.requests import VerifiedRequest, verify_request
from troth.authority.tickets import Ticket, check_address, code_hash, new_code
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    RevocationKind,
    SignedCredential,
    TrustPolicy,
    VerifiedFeed,
    VerifiedLink,
    check_fits,
    issue_credential,
)
from troth.credentials.vc import export_credential_vc, vc_credential_hash
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    DecodeError,
    IdentityError,
)
from troth.faults import crash_point
from troth.identity import (
    Checkpoint,
    Identifier,
    IdentityService,
    PurposeKeyAttestation,
    Signer,
    VerifiedIdentity,
)
from troth.identity.known import Binds, StoredSpan
from troth.storage import AuthorityConfig, AuthorityStore, MemberRecord

__all__ = ["ADMIN", "ENROLLER", "ROLE", "Authority", "Member"]

ROLE: Final = "troth.role"
ADMIN: Final = "admin"
ENROLLER: Final = "enroller"
DEFAULT_CREDENTIAL_TTL: Final = 3600
DEFAULT_TICKET_TTL: Final = 600
DEFAULT_DELEGATION_DEPTH: Final = 4
VC_ID_BYTES: Final = 16
"""The random part of a member VC's id (`urn:troth:credential:` + its hex): 128 bits."""
ANSWERED_REQUESTS: Final = 4096
"""Answers to revoke and rotated requests kept by request hash: a replayed request gets the
same answer without costing the authority its signature checks again."""
_A = AuthorityFailure


@dataclass(frozen=True, slots=True)
class Member:
    identifier: Identifier
    attributes: Attributes
    added_by: Identifier
    added_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "identifier": str(self.identifier),
            "attributes": self.attributes.to_json(),
            "added_by": str(self.added_by),
            "added_at": self.added_at,
        }


def _member(record: MemberRecord) -> Member:
    return Member(
        Identifier(record.identifier),
        Attributes.from_cbor(cbor.decode(record.attributes)),
        Identifier(record.added_by),
        record.added_at,
    )


class Authority:
    """An authority hosted by a node: `identities` holds its key, `store` its state."""

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

    def signer(self, now: int) -> Signer:
        return self.identities.signer(self.config.name, now=now)

    def history(self) -> bytes:
        return self.identities.export(self.config.name)

    def changes(self) -> int:
        """How many changes the authority's own history has (each rotation adds one)."""
        return self.identities.find(self.config.name).changes

    # -- roles and tickets ----------------------------------------------------------------------

    def roles_of(self, identifier: Identifier) -> frozenset[str]:
        if identifier == self.identifier:
            return frozenset({ADMIN})
        record = self.store.get_member(identifier.digest)
        if record is None:
            return frozenset()
        return _member(record).attributes.values_of(ROLE)

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
            attributes = attributes.merged(Attributes({ROLE: role}))
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

    # -- enrollment and member credentials -------------------------------------------------------

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
        self, requester: VerifiedIdentity, now: int, charged_to: Identifier | None = None
    ) -> int | None:
        """Store or extend an authorised requester's history, and publish it as superseding
        every shorter or different one (charged to `charged_to`, default the requester).
        Returns the newest supersession's seq, if any."""
        try:
            # judged as at `_verify`: a copy that does not bind it is replaced (review 30a)
            self.identities.observe(requester, binds=self._binds(requester))
        except IdentityError as exc:
            raise AuthorityError(_A.REQUEST_INVALID, f"requester: {exc}") from None
        return self.revocations.supersede(requester, now=now, charged_to=charged_to)

    def enroll(self, request: bytes, *, now: int) -> CredentialChain:
        """Redeem the ticket code in a signed enroll request; make (or update) the member and
        return its credential (docs/storage.md, "Recovery rules"), within the member's bound
        of live credentials (`_issue_bounded`: an enroller redeeming tickets it made itself
        gets no more than a refresh would, review 25 authority 1).

        The redemption is one atomic conditional write, recorded with the credential it issued
        in the same transaction. A repeat of the same enrollment (a new request by the same
        identity with the same code, within the ticket's window, even once its uses are
        gone) is answered with that credential: never a second use, never a second credential.
        So a member whose answer was lost (a crash on either side) enrolls again and gets it.
        After the window, the same member's repeat is answered as its refresh would be
        (`_issue_bounded`; NOT_A_MEMBER once removed); anyone else's is TICKET_UNKNOWN. An
        identity revoked for good (`revoke_identity`) is NOT_A_MEMBER whatever its ticket.
        """
        verified = self._verify(request, "enroll", now)
        try:
            (code,) = verified.arguments
            code = cbor.expect_bytes(code, "code")
        except (ValueError, DecodeError):
            raise AuthorityError(_A.REQUEST_INVALID, "enroll takes one ticket code") from None
        member = verified.requester.identifier
        hashed = code_hash(code)
        with self.store.transaction():
            # revoked for good (`revoke_identity`): no ticket makes it a member again, none of
            # its uses taken (review 45c, enrollment 1)
            if self.store.find_revocation(int(RevocationKind.IDENTITY), member.digest) is not None:
                raise AuthorityError(_A.NOT_A_MEMBER, f"{member} is revoked for good")
            issued = self.store.find_redemption(hashed, member.digest, now)
            if issued is not None:
                if self.store.get_member(member.digest) is None:
                    raise AuthorityError(_A.NOT_A_MEMBER, "removed since it redeemed this ticket")
                self._learn(verified.requester, now)
                return CredentialChain.decode(issued)
            redeemed = self.store.redeem_ticket(hashed, now)
            if redeemed is None:
                if not self.store.redeemed(hashed, member.digest):
                    raise AuthorityError(_A.TICKET_UNKNOWN)
                # The member that redeemed this ticket asks again after its window (its answer
                # was lost, its resume came late): answered as its refresh would be, a signed
                # request by that very member (review 38c, enroll 1: it was refused, and the
                # member left holding nothing). No use is taken and nothing merged.
                attributes = self.member(member).attributes  # NOT_A_MEMBER once removed
                self._learn(verified.requester, now)
                return self._issue_bounded(member, attributes, now)
            attributes_cbor, created_by, ticket_expires_at = redeemed
            granted = Attributes.from_cbor(cbor.decode(attributes_cbor))
            self._check_creator(Identifier(created_by), granted)  # rolls the use back
            existing = self.store.get_member(member.digest)
            try:  # a re-enrollment merges: within what a credential may hold (review 22c)
                attributes = (
                    granted if existing is None else _member(existing).attributes.merged(granted)
                )
                check_fits(attributes)
            except (ValueError, CredentialError) as exc:
                raise AuthorityError(
                    _A.REQUEST_INVALID, f"the member's attributes with this ticket's: {exc}"
                ) from None
            self.store.put_member(
                MemberRecord(member.digest, cbor.encode(attributes.to_cbor()), created_by, now)
            )
            self._learn(verified.requester, now)
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
            self._learn(verified.requester, now)
            return self._issue_bounded(member.identifier, member.attributes, now)

    def _issue_bounded(
        self, member: Identifier, attributes: Attributes, now: int
    ) -> CredentialChain:
        """A credential for `member` (a refresh, or an enrollment, review 25 authority 1), with
        at most MAX_LIVE_CREDENTIALS_PER_MEMBER unexpired credentials issued to it under this
        authority's current history, and MAX_RECENT_CREDENTIALS_PER_MEMBER a verifier may still
        accept (expired within MAX_CLOCK_SKEW_SECONDS too: what `remove_member` revokes, review
        35a remove 1): each is a feed entry when the member is removed, which no quota limits
        (review 23a, authority 2). Those issued under an older history verify nowhere and do
        not count.

        At the bound the newest live credential is answered again (its stored encoding, with
        the authority's current history): nothing is issued, nothing written to the feed,
        nothing charged (review 25, authority 2 and 3). A member that asks again at the bound
        either never got it (its answers were lost: review 24a, authority 1) or holds it (it
        refreshes more often than TTL / 16): revoking it would spend the quota the member needs
        to revoke its own delegates and cut the links it delegated. The newest expires last;
        the oldest expires first, and then the count is under the bound and the next request
        is issued a new one, before the newest expires unless all 16 went out within one
        refresh interval.

        What is answered is the newest whose encoding was stored (a VC export, newer, is
        passed over: review 26b). When it cannot be answered again (its attributes are not the
        member's: a re-enrollment that merged a ticket's; its attestation names an older change;
        or none was stored: rows from before review 25; or none is unexpired), the newest
        unexpired past the live bound are revoked, then the oldest of those expired within the
        skew as many as the second bound needs, each an entry charged to the member's quota
        (QUOTA_EXCEEDED past it), and a credential is issued (review 24a's rule)."""
        since = self.identities.get(self.config.name, now=now).identity.current.body.created_at
        kind = RevocationKind.CREDENTIAL

        def unrevoked(expired_by: int) -> list[bytes]:
            return [
                credential
                for credential in self.store.live_issued(member.digest, expired_by, since)
                if self.store.find_revocation(kind, credential) is None
            ]

        live = unrevoked(now)
        excess = len(live) - limits.MAX_LIVE_CREDENTIALS_PER_MEMBER + 1
        # a second bound counts what a removal revokes, those expired within the skew too
        # (review 35a, remove 1: else each of the member's refreshes past the expiry of its 16
        # got 16 more, and its removal wrote 16 x (1 + 300 / TTL) entries no quota limits)
        recent = unrevoked(now - limits.MAX_CLOCK_SKEW_SECONDS)
        over = len(recent) - limits.MAX_RECENT_CREDENTIALS_PER_MEMBER + 1
        if excess <= 0 and over <= 0:
            return self._issue(member, attributes, now)
        signer = self.signer(now)
        again = self._answer_again(live, attributes, signer.identity)
        if again is not None:
            return again
        # the newest unexpired past the bound (review 24a's rule), then the oldest of those
        # expired within the skew: all charged to the member's quota
        targets = live[-excess:] if excess > 0 else []
        fresh = set(live)
        expired = [credential for credential in recent if credential not in fresh]
        targets += expired[: max(0, over - len(targets))]
        self.revocations.revoke_many(
            kind,
            targets,
            by=self.identifier,
            now=now,
            reason="past the member's bound of live credentials",
            charged_to=member,
        )
        return self._issue(member, attributes, now, signer)

    def _answer_again(
        self, live: Sequence[bytes], attributes: Attributes, authority: VerifiedIdentity
    ) -> CredentialChain | None:
        """The newest of the `live` credentials whose encoding was stored, in a chain with the
        `authority`'s history, when it carries `attributes` and was attested under that
        history's current change (one issued in the second before a rotation was not)."""
        stored = next(
            (found for found in map(self.store.issued_credential, reversed(live)) if found),
            None,
        )
        if stored is None:
            return None
        credential = SignedCredential.from_cbor(cbor.decode(stored))
        attested = PurposeKeyAttestation.decode(credential.attestation).change_hash
        body = CredentialBody.decode(credential.body)
        if attested != authority.current_change_hash or body.attributes != attributes:
            return None
        return CredentialChain((credential,), (authority.history,))

    def rotated(self, request: bytes, *, now: int) -> int | None:
        """A member announces its rotated history (a signed `rotated` request, arguments []):
        it is stored (only as an extension of the stored copy) and published as superseding
        the older histories. Re-announcing appends nothing. Returns the newest supersession's
        seq (None when the history has one change)."""
        cached = self._replayed(request, now)
        if cached is not None:
            return cached[1]
        verified = self._verify(request, "rotated", now)
        if verified.arguments:
            raise AuthorityError(_A.REQUEST_INVALID, "rotated takes no arguments")
        with self.store.transaction():
            self.member(verified.requester.identifier)
            seq = self._learn(verified.requester, now)
        self._remember(request, verified, seq)
        return seq

    def issue_member_credential(self, member: Identifier, *, now: int) -> CredentialChain:
        with self.store.transaction():
            return self._issue(member, self.member(member).attributes, now)

    def issue_member_vc(self, member: Identifier, *, now: int) -> dict[str, Any]:
        """Member `member`'s credential as a W3C VC (troth.credentials.vc, eddsa-jcs-2022), valid
        for the authority's credential TTL from `now`. Its `vc_credential_hash` is recorded as
        issued to the member in the same transaction, before the VC leaves: removing the member
        revokes it like the member's CBOR credentials (docs/credentials.md). It was issued by the
        CLI, out of the Python API's reach (review 44c, CLI 1)."""
        valid_until = now + self.config.credential_ttl
        with self.store.transaction():
            attributes = self.member(member).attributes
            document = export_credential_vc(
                self.signer(now),
                credential_id=os.urandom(VC_ID_BYTES),
                subject=member,
                attributes=attributes,
                valid_from=now,
                valid_until=valid_until,
                now=now,
            )
            self._record_issued(vc_credential_hash(document["id"]), member, valid_until, now)
        return document

    def _issue(
        self, member: Identifier, attributes: Attributes, now: int, signer: Signer | None = None
    ) -> CredentialChain:
        signer = signer or self.signer(now)
        credential = issue_credential(
            signer,
            subject=member,
            attributes=attributes,
            now=now,
            ttl=self.config.credential_ttl,
            depth=self.config.delegation_depth,
        )
        body = CredentialBody.decode(credential.body)
        self._record_issued(credential.hash, member, body.expires_at, now, credential.encode())
        return CredentialChain((credential,), (signer.identity.history,))

    def _record_issued(
        self,
        credential_hash: bytes,
        member: Identifier,
        expires_at: int,
        now: int,
        encoded: bytes | None = None,
    ) -> None:
        """Record a credential (CBOR, or a VC by its hash) as issued to `member`. The member's
        credentials that no verifier accepts any more (past the largest clock skew) are never
        read again: forgotten, so a member refreshing every round (a short TTL), or in a loop,
        leaves no row behind for good (review 34b, issued 1)."""
        self.store.record_issued(credential_hash, member.digest, expires_at, now, encoded)
        self.store.forget_issued_before(member.digest, now - limits.MAX_CLOCK_SKEW_SECONDS)

    # -- members ---------------------------------------------------------------------------------

    def members(self) -> list[Member]:
        return [_member(r) for r in self.store.list_members()]

    def member(self, identifier: Identifier) -> Member:
        record = self.store.get_member(identifier.digest)
        if record is None:
            raise AuthorityError(_A.NOT_A_MEMBER, str(identifier))
        return _member(record)

    def remove_member(
        self, identifier: Identifier, *, now: int, reason: str = "member removed"
    ) -> list[bytes]:
        """Stop issuing to a member and revoke its credentials a verifier may still accept:
        unexpired, or expired within `MAX_CLOCK_SKEW_SECONDS` (the most skew a verifier allows;
        review 34c, remove 1). Returns their ids."""
        with self.store.transaction():
            if not self.store.remove_member(identifier.digest):
                raise AuthorityError(_A.NOT_A_MEMBER, str(identifier))
            since = now - limits.MAX_CLOCK_SKEW_SECONDS
            ids = self.store.unexpired_issued(identifier.digest, since)
            self._revoke_many(RevocationKind.CREDENTIAL, ids, now, reason)
            crash_point("authority.revoke.before-commit")
        crash_point("authority.revoke.after-commit")
        return ids

    # -- revocation ------------------------------------------------------------------------------

    def revoke_credential(self, credential_hash: bytes, *, now: int, reason: str = "") -> int:
        """Revoke any credential (by its hash) in chains rooted here (the authority is
        upstream of all of them). Idempotent: returns the (existing or new) entry's seq."""
        return self.revoke_credentials([credential_hash], now=now, reason=reason)[0]

    def revoke_credentials(
        self, credential_hashes: Iterable[bytes], *, now: int, reason: str = ""
    ) -> list[int]:
        """Revoke many credentials in one transaction (the authority's bulk path)."""
        with self.store.transaction():
            seqs = self._revoke_many(RevocationKind.CREDENTIAL, credential_hashes, now, reason)
            crash_point("authority.revoke.before-commit")
        crash_point("authority.revoke.after-commit")
        return seqs

    def revoke_identity(self, identifier: Identifier, *, now: int, reason: str = "") -> int:
        """Revoke an identity for good: every link it issued or holds stops verifying."""
        if identifier == self.identifier:
            raise AuthorityError(_A.REQUEST_INVALID, "an authority cannot revoke itself")
        with self.store.transaction():
            self.store.remove_member(identifier.digest)
            seq = self._revoke_many(RevocationKind.IDENTITY, [identifier.digest], now, reason)[0]
            crash_point("authority.revoke.before-commit")
        crash_point("authority.revoke.after-commit")
        return seq

    def _revoke_many(
        self, kind: RevocationKind, targets: Iterable[bytes], now: int, reason: str
    ) -> list[int]:
        if len(reason) > limits.MAX_REVOCATION_REASON:
            raise AuthorityError(_A.REQUEST_INVALID, "reason too long")
        return self.revocations.revoke_many(
            kind, targets, by=self.identifier, now=now, reason=reason
        )

    def revoke_link(self, request: bytes, *, now: int) -> int:
        """A delegator revokes a link: it must have issued that link or one upstream of it.
        The entry is charged to the member whose credential roots the chain (its quota), so
        delegating to throwaway identities gains no extra revocations."""
        cached = self._replayed(request, now)
        if cached is not None and cached[1] is not None:
            return cached[1]
        verified = self._verify(request, "revoke", now)
        try:
            target, chain, reason = verified.arguments
            target = cbor.expect_bytes(target, "credential hash", 32)
            chain = cbor.expect_bytes(chain, "chain")
            reason = cbor.expect_text(reason, "reason")
            if len(reason) > limits.MAX_REVOCATION_REASON:
                raise ValueError("reason too long")
        except (ValueError, DecodeError):
            raise AuthorityError(_A.REQUEST_INVALID, "revoke takes [id, chain, reason]") from None
        try:
            checked = self._chains.verify_structure(chain, now=now, checkpoints=self._attests)
        except CredentialError as exc:
            raise AuthorityError(_A.REQUEST_INVALID, f"chain: {exc}") from None
        self._check_issuers(checked.issuers, now)
        links = checked.links
        position = next((link.index for link in links if link.hash == target), None)
        if position is None:
            raise AuthorityError(_A.REQUEST_INVALID, "the credential is not in the chain")
        revoker = verified.requester.identifier
        issued = next(
            (link.index for link in links[: position + 1] if link.issuer == revoker), None
        )
        if issued is None:
            raise AuthorityError(_A.NOT_UPSTREAM, str(revoker))
        # the member pays for its own revocations; its delegates share a second budget, so a
        # delegate cannot spend what its delegator needs to revoke it
        member = links[0].subject
        payer: Identifier | None = member if issued <= 1 else _delegates_of(member)
        if revoker == self.identifier:  # the authority's own revocations are not limited: a
            payer = None  # member that spent its quota kept it from revoking (review 34b, quota 1)
        try:
            with self.store.transaction():
                self._check_standing(links[:issued], now)
                self._learn(verified.requester, now, charged_to=payer)
                seq = self.revocations.revoke(
                    RevocationKind.CREDENTIAL,
                    target,
                    by=revoker,
                    now=now,
                    reason=reason,
                    charged_to=payer,
                )
                crash_point("authority.revoke.before-commit")
            crash_point("authority.revoke.after-commit")
        except AuthorityError as exc:
            if exc.reason is not _A.QUOTA_EXCEEDED or payer is None or payer == member:
                raise
            detail = exc.detail.replace(str(payer), f"the delegates of {member}")
            raise AuthorityError(_A.QUOTA_EXCEEDED, detail) from None
        self._remember(request, verified, seq)
        return seq

    def _check_issuers(self, issuers: Sequence[VerifiedIdentity], now: int) -> None:
        """Refuse a chain whose root was issued under a history of this authority other than
        its current one, or that carries an issuer history forking from or rolling back the
        copy stored here: `verify_structure` judges a chain by the histories it carries, so a
        pre-rotation key from a stolen backup forges roots for made-up members, each with a
        quota of its own (review 23a, authority 1; docs/credentials.md, "A stolen authority
        key"). A copy from a checkpoint binds an issuer's full history as a requester's
        (`_check_known`); one that does not is left as it is (only the requester is stored)."""
        current = self.identities.get(self.config.name, now=now).identity.current_change_hash
        if issuers[0].current_change_hash != current:
            raise AuthorityError(
                _A.REQUEST_INVALID,
                "chain: issued under an older history of the authority (it rotated since: "
                "ask it for a fresh credential)",
            )
        for issuer in issuers[1:]:
            try:
                # judged as a requester's (`_check_known`): this authority, the chain's root,
                # has standing over its issuers' histories (review 30a, requests 1)
                self._check_known(issuer)
            except IdentityError as exc:
                raise AuthorityError(_A.REQUEST_INVALID, f"chain: issuer {exc}") from None

    def _check_standing(self, links: Sequence[VerifiedLink], now: int) -> None:
        """Refuse a requester whose own links (the chain above the link it issued) are expired
        or in the feed, or whose identities are: a cut-off delegate writes no more entries."""
        store = self.store
        for link in links:
            if now >= link.expires_at + limits.MAX_CLOCK_SKEW_SECONDS:
                raise AuthorityError(_A.NO_STANDING, f"link {link.index} expired")
            revoked = store.find_revocation(int(RevocationKind.CREDENTIAL), link.hash) is not None
            if revoked or any(
                store.find_revocation(int(RevocationKind.IDENTITY), who.digest) is not None
                for who in (link.issuer, link.subject)
            ):
                raise AuthorityError(_A.NO_STANDING, f"link {link.index} is revoked")

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
        (docs/credentials.md, "A stolen authority key"). Nothing is appended once published."""
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

    def held_feed(self, *, now: int, previous: VerifiedFeed | None = None) -> VerifiedFeed:
        """The authority's own view of its feed (what the node hosting it verifies against),
        its own rotation published first (`_feed_signer`)."""
        self._publish_own(self.signer(now).identity, now)
        return self.revocations.held(now=now, previous=previous)


def _delegates_of(member: Identifier) -> Identifier:
    """The quota account a member's delegates share (a name no identity has: a hash under its
    own domain)."""
    return Identifier(sha256(b"troth.authority.delegates-quota/1\x00" + member.digest))
