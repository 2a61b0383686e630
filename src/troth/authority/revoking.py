"""The authority's revocations: credentials and identities revoked by the authority (in bulk
too), and links revoked by their delegators (`revoke_link`: a signed request, charged to the
quota holder of the member whose credential roots the chain: the member, or the ticket of many
uses that enrolled it, shared by that ticket's members, troth.authority.members
`quota_holder`). The authority's own revocations are charged to no one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from troth import limits
from troth.authority.members import holder_name, quota_holder
from troth.authority.requesters import Requesters
from troth.credentials import RevocationKind, VerifiedLink
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    DecodeError,
    IdentityError,
    IdentityFailure,
)
from troth.faults import crash_point
from troth.identity import Identifier, VerifiedIdentity, check_extends

__all__ = ["Revoking", "delegates_of"]

_A = AuthorityFailure


class Revoking(Requesters):
    """Revocations by the authority and by delegators."""

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
        if not reason.isascii():  # an entry carries UTF-8 text (review 53e, attributes 4)
            try:
                reason.encode("utf-8")
            except UnicodeEncodeError:
                raise AuthorityError(_A.REQUEST_INVALID, "reason is not valid Unicode") from None
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
        with self.store.transaction():  # what it verified is kept, whatever it decides next
            self._keep_issuers(checked.issuers, checked.links[0].subject, now)
        self._check_requester(checked.issuers, verified.requester)
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
        # delegate cannot spend what its delegator needs to revoke it; the members a ticket
        # of many uses enrolled share each (review 70q, feeds 2)
        member = links[0].subject
        holder = self.quota_holder(member)
        payer: Identifier | None = holder if issued <= 1 else delegates_of(holder)
        if revoker == self.identifier:  # the authority's own revocations are not limited: a
            payer = None  # member that spent its quota kept it from revoking (review 34b, quota 1)
        if payer is not None and self._over_member_bound(reason, target):
            # each entry a member causes is ~100 bytes, not up to 1,126: the members' part of
            # the feed every new node fetches (review 70q, feeds 1)
            raise AuthorityError(
                _A.REQUEST_INVALID,
                f"a member's revocation reason is at most "
                f"{limits.MAX_MEMBER_REVOCATION_REASON_BYTES} bytes of UTF-8",
            )
        try:
            with self.store.transaction():
                self._check_standing(links[:issued], now)
                # a supersession the feed refuses leaves the revocation to go on (review 63m,
                # authority 2: a member whose rotation's announcement was refused on its
                # budget could revoke no link for up to an hour, told its quota was spent)
                self._learn(verified.requester, now, charged_to=payer, unpublished_ok=True)
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
            whose = holder_name(member, holder)
            named = whose if payer == holder else f"the delegates of {whose}"
            detail = exc.detail.replace(str(payer), named)
            raise AuthorityError(_A.QUOTA_EXCEEDED, detail) from None
        self._remember(request, verified, seq)
        return seq

    def _over_member_bound(self, reason: str, target: bytes) -> bool:
        """Whether a member's `reason` for revoking link `target` is past its bound (the UTF-8
        the entry holds: the request's text as it was signed, nothing normalised) and would be
        written. A link already in the feed is answered with its entry, as before the bound:
        that writes nothing (the entry and its reason are the first request's), and a retried
        request signed before the bound, or another delegator's, stays idempotent (review
        70v, reasons 2). Read outside the write: a link revoked meanwhile is only refused."""
        if len(reason.encode("utf-8")) <= limits.MAX_MEMBER_REVOCATION_REASON_BYTES:
            return False
        return self.store.find_revocation(int(RevocationKind.CREDENTIAL), target) is None

    def _check_issuers(self, issuers: Sequence[VerifiedIdentity], now: int) -> None:
        """Refuse a chain whose root was issued under a history of this authority other than
        its current one, or that carries an issuer history forking from or rolling back the
        copy stored here: `verify_structure` judges a chain by the histories it carries, so a
        pre-rotation key from a stolen backup forges roots for made-up members, each with a
        quota of its own (review 23a, authority 1; docs/credentials.md, "A stolen authority
        key"). A copy from a checkpoint binds an issuer's full history as a requester's
        (`_check_known`); one that does not is left as it is (only the requester is stored)."""
        current = self.own(now).identity.current_change_hash
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

    def _keep_issuers(
        self, issuers: Sequence[VerifiedIdentity], member: Identifier, now: int
    ) -> None:
        """Store each issuer history of the chain that extends a copy stored here (judged by
        `_check_issuers`): a rotation a request shows is kept, whatever is decided next (review
        57g, authority 2), and published as superseding the older ones, as a requester's is
        (`_learn`), so verifiers with a fresh feed refuse what the retired key signs (review
        57o, authority 1; once per change count: a budget spent, or a feed full for members,
        leaves it stored, published when it announces, and the request goes on). The member at
        the chain's root (`member`) pays for its own; its delegates below it, from the account
        they share (`delegates_of`), as a delegate's own request's is (`revoke_link`): each
        paid from a budget of its own, a member's throwaway delegates, rotated, published
        supersessions past its quota without bound (review 61c, authority 1). Identities not
        stored here are not stored (review 23a). Once `member` is no member (removed, or
        revoked for good) nothing is published: its chains were revoked with it, and each
        rotation it or its delegates made after cost the feed an entry no membership bounded
        (review 65u, authority 1); the histories are stored all the same. The member's quota
        holder (`quota_holder`) pays in its place: the members one ticket of many uses
        enrolled share one budget of each kind (review 71e, quota 1 and 2)."""
        record = self.store.get_member(member.digest)
        publish = record is not None
        holder = quota_holder(record, member)  # a ticket's members share (review 71e, quota)
        for index, issuer in enumerate(issuers[1:], start=1):
            if self.identities.stored_changes(issuer.identifier) is None:
                continue
            try:
                self.identities.observe(issuer, binds=self._binds(issuer))
            except IdentityError as exc:
                if exc.reason is not IdentityFailure.ROLLBACK:
                    raise AuthorityError(_A.REQUEST_INVALID, f"chain: issuer {exc}") from None
                continue  # an older history: the stored copy says more
            if not publish:
                continue
            payer = holder if index == 1 else delegates_of(holder)
            try:
                self.revocations.supersede(issuer, now=now, charged_to=payer)
            except AuthorityError as exc:  # (raised before it writes)
                if exc.reason not in (_A.QUOTA_EXCEEDED, _A.FEED_LIMIT):
                    raise

    def _check_requester(
        self, issuers: Sequence[VerifiedIdentity], requester: VerifiedIdentity
    ) -> None:
        """Refuse a requester history older than (or forking from) its own history the chain
        carries as an issuer's: a thief with pre-rotation keys revoking a link the identity
        delegated after its rotation (review 57g, authority 1)."""
        for issuer in issuers[1:]:
            if issuer.identifier == requester.identifier:
                try:  # the requester's own rotation, shown in the chain: not older than it
                    check_extends(
                        [c.change_hash for c in issuer.changes],
                        requester,
                        stored_first=issuer.first_index,
                    )
                except IdentityError as exc:
                    raise AuthorityError(_A.REQUEST_INVALID, f"requester: {exc}") from None

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


def delegates_of(member: Identifier) -> Identifier:
    """The quota account a member's delegates share (a name no identity has: a hash under its
    own domain): their revocations here (`delegates_of` the member's quota holder: the
    delegates of the members one ticket of many uses enrolled share one, review 71e, quota 1),
    their enroll, refresh, revoke and rotated requests and feed pages at the authority service
    (review 58e, budgets 1)."""
    return Identifier(sha256(b"troth.authority.delegates-quota/1\x00" + member.digest))
