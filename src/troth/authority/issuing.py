"""The authority's issuing of member credentials: CBOR chains and W3C VCs, each recorded as
issued to its member; a member's refreshes and enrollments within its bound of live credentials
(`Issuing._issue_bounded`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Final

from troth import limits
from troth.authority.base import AuthorityBase
from troth.credentials import (
    Attributes,
    CredentialBody,
    CredentialChain,
    RevocationKind,
    SignedCredential,
    issue_credential,
)
from troth.credentials.issue import signer_key_end
from troth.credentials.vc import export_credential_vc, vc_credential_hash
from troth.encoding import cbor
from troth.identity import Identifier, PurposeKeyAttestation, Signer, VerifiedIdentity

__all__ = ["VC_ID_BYTES", "Issuing"]

VC_ID_BYTES: Final = 16
"""The random part of a member VC's id (`urn:troth:credential:` + its hex): 128 bits."""


class Issuing(AuthorityBase):
    """Member credentials issued and recorded."""

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
        holder (`quota_holder`: the members of one ticket of many uses share one; QUOTA_EXCEEDED
        past it), and a credential is issued (review 24a's rule)."""
        self.check_not_held()  # nothing answered again either (review 65o, feed 2)
        since = self.own(now).identity.current.body.created_at
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
            charged_to=self.quota_holder(member),  # a ticket's members share (71e, quota 3)
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

    def _answers_again(self, chain: CredentialChain, now: int) -> bool:
        """Whether a member credential this authority recorded (an enrollment's answer) is
        answered again at `now`: unexpired and attested under the authority's current change
        (a rotation retires the older ones). A revoked one is answered as it is: repeating the
        enrollment never undoes a revocation with a fresh credential (review 50g, refuted 4)."""
        credential = chain.credentials[0]
        if self.store.find_revocation(int(RevocationKind.CREDENTIAL), credential.hash) is not None:
            return True  # expired or retired too: the revocation stands
        body = CredentialBody.decode(credential.body)
        attested = PurposeKeyAttestation.decode(credential.attestation).change_hash
        current = self.own(now).identity.current_change_hash
        return body.expires_at > now and attested == current

    def issue_member_credential(self, member: Identifier, *, now: int) -> CredentialChain:
        with self.store.transaction():
            return self._issue(member, self.member(member).attributes, now)

    def issue_member_vc(self, member: Identifier, *, now: int) -> dict[str, Any]:
        """Member `member`'s credential as a W3C VC (troth.credentials.vc, eddsa-jcs-2022), valid
        for the authority's credential TTL from `now`, and never past its signing key nor its
        primary key, like a CBOR credential (`issue_credential`; review 47a, defaults 2: a VC
        said it lived on after the key no verifier accepts it without; review 75g,
        delegation2 4, after the primary key). Its `vc_credential_hash` is recorded as
        issued to the member in the same transaction, before the VC leaves: removing the member
        revokes it like the member's CBOR credentials (docs/credentials.md). It was issued by the
        CLI, out of the Python API's reach (review 44c, CLI 1)."""
        with self.store.transaction():
            attributes = self.member(member).attributes
            self.check_not_held()
            signer = self.signer(now)
            # nor past its primary key (review 75g, delegation2 4), as `issue_credential`
            ends = min(signer.expires_at, signer_key_end(signer, now))
            valid_until = min(now + self.config.credential_ttl, ends)
            document = export_credential_vc(
                signer,
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
        self.check_not_held()
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
