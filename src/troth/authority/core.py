"""The authority: members, enrollment tickets, member credentials, and the revocation feed.

Sans-IO over its store: every method takes `now` and bytes or values and returns bytes or
values; the CLI (and, with the channels issue, the node's service) carries them.

Roles: the authority's own identity is an admin. Members with `troth.role` = `admin` may create
any ticket and set `troth.*` attributes; `enroller` may create member tickets without `troth.*`
attributes. Nobody else may create tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.authority.requests import verify_request
from troth.authority.tickets import Ticket, code_hash, new_code
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    RevocationEntry,
    RevocationKind,
    TrustPolicy,
    build_feed,
    feed_genesis,
    issue_credential,
    next_head,
)
from troth.encoding import cbor
from troth.errors import AuthorityError, AuthorityFailure, CredentialError, DecodeError
from troth.identity import Identifier, IdentityService, Signer
from troth.storage import AuthorityConfig, AuthorityStore, MemberRecord

__all__ = ["ADMIN", "ENROLLER", "ROLE", "Authority", "Member"]

ROLE: Final = "troth.role"
ADMIN: Final = "admin"
ENROLLER: Final = "enroller"
DEFAULT_CREDENTIAL_TTL: Final = 3600
DEFAULT_TICKET_TTL: Final = 600
DEFAULT_DELEGATION_DEPTH: Final = 4
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
    ) -> Authority:
        """Create the authority's identity (named `name`) and its configuration."""
        with store.transaction():
            if store.get_config() is not None:
                raise AuthorityError(_A.REQUEST_INVALID, "this node already hosts an authority")
            local = identities.create(now=now, name=name)
            config = AuthorityConfig(
                local.identifier.digest, name, credential_ttl, delegation_depth, now
            )
            store.put_config(config)
        return cls(identities, store, config)

    def signer(self, now: int) -> Signer:
        return self.identities.signer(self.config.name, now=now)

    def history(self) -> bytes:
        return self.identities.export(self.config.name)

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
        """A one-time (or `uses`-time) ticket granting `attributes` (and `role`) to its redeemer."""
        if uses < 1 or ttl < 1:
            raise AuthorityError(_A.REQUEST_INVALID, "uses and ttl must be positive")
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
        code = new_code()
        self.store.put_ticket(
            code_hash(code), cbor.encode(attributes.to_cbor()), uses, now + ttl, creator.digest, now
        )
        return Ticket(code, self.history(), address)

    # -- enrollment and member credentials -------------------------------------------------------

    def enroll(self, request: bytes, *, now: int) -> CredentialChain:
        """Redeem the ticket code in a signed enroll request; make (or update) the member and
        return its credential. The redemption is one atomic conditional write."""
        verified = verify_request(request, authority=self.identifier, kind="enroll", now=now)
        try:
            (code,) = verified.arguments
            code = cbor.expect_bytes(code, "code")
        except (ValueError, DecodeError):
            raise AuthorityError(_A.REQUEST_INVALID, "enroll takes one ticket code") from None
        member = verified.requester.identifier
        with self.store.transaction():
            redeemed = self.store.redeem_ticket(code_hash(code), now)
            if redeemed is None:
                raise AuthorityError(_A.TICKET_UNKNOWN)
            granted = Attributes.from_cbor(cbor.decode(redeemed[0]))
            existing = self.store.get_member(member.digest)
            attributes = (
                granted if existing is None else _member(existing).attributes.merged(granted)
            )
            self.store.put_member(
                MemberRecord(member.digest, cbor.encode(attributes.to_cbor()), redeemed[1], now)
            )
            self.identities.import_history(verified.requester, now=now)
            return self._issue(member, attributes, now)

    def refresh(self, request: bytes, *, now: int) -> CredentialChain:
        """A fresh credential for a member that proves it is itself (a signed refresh request)."""
        verified = verify_request(request, authority=self.identifier, kind="refresh", now=now)
        return self.issue_member_credential(verified.requester.identifier, now=now)

    def issue_member_credential(self, member: Identifier, *, now: int) -> CredentialChain:
        with self.store.transaction():
            return self._issue(member, self.member(member).attributes, now)

    def _issue(self, member: Identifier, attributes: Attributes, now: int) -> CredentialChain:
        signer = self.signer(now)
        credential = issue_credential(
            signer,
            subject=member,
            attributes=attributes,
            now=now,
            ttl=self.config.credential_ttl,
            depth=self.config.delegation_depth,
        )
        body = CredentialBody.decode(credential.body)
        self.store.record_issued(credential.hash, member.digest, body.expires_at, now)
        return CredentialChain((credential,), (signer.identity.history,))

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
        """Stop issuing to a member and revoke its unexpired credentials. Returns their ids."""
        with self.store.transaction():
            if not self.store.remove_member(identifier.digest):
                raise AuthorityError(_A.NOT_A_MEMBER, str(identifier))
            ids = self.store.unexpired_issued(identifier.digest, now)
            for credential_id in ids:
                self._append(RevocationKind.CREDENTIAL, credential_id, self.identifier, now, reason)
        return ids

    # -- revocation ------------------------------------------------------------------------------

    def revoke_credential(self, credential_hash: bytes, *, now: int, reason: str = "") -> int:
        """Revoke any credential (by its hash) in chains rooted here (the authority is
        upstream of all of them)."""
        kind = RevocationKind.CREDENTIAL
        return self._append(kind, credential_hash, self.identifier, now, reason)

    def revoke_identity(self, identifier: Identifier, *, now: int, reason: str = "") -> int:
        """Revoke an identity for good: every link it issued or holds stops verifying."""
        if identifier == self.identifier:
            raise AuthorityError(_A.REQUEST_INVALID, "an authority cannot revoke itself")
        with self.store.transaction():
            self.store.remove_member(identifier.digest)
            return self._append(
                RevocationKind.IDENTITY, identifier.digest, self.identifier, now, reason
            )

    def revoke_link(self, request: bytes, *, now: int) -> int:
        """A delegator revokes a link: it must have issued that link or one upstream of it."""
        verified = verify_request(request, authority=self.identifier, kind="revoke", now=now)
        try:
            target, chain, reason = verified.arguments
            target = cbor.expect_bytes(target, "credential hash", 32)
            chain = cbor.expect_bytes(chain, "chain")
            reason = cbor.expect_text(reason, "reason")
            if len(reason) > limits.MAX_REVOCATION_REASON:
                raise ValueError("reason too long")
        except (ValueError, DecodeError):
            raise AuthorityError(_A.REQUEST_INVALID, "revoke takes [id, chain, reason]") from None
        verifier = ChainVerifier(TrustPolicy(frozenset({self.identifier})))
        try:
            links = verifier.verify_structure(chain, now=now).links
        except CredentialError as exc:
            raise AuthorityError(_A.REQUEST_INVALID, f"chain: {exc}") from None
        position = next((link.index for link in links if link.hash == target), None)
        if position is None:
            raise AuthorityError(_A.REQUEST_INVALID, "the credential is not in the chain")
        revoker = verified.requester.identifier
        if all(link.issuer != revoker for link in links[: position + 1]):
            raise AuthorityError(_A.NOT_UPSTREAM, str(revoker))
        return self._append(RevocationKind.CREDENTIAL, target, revoker, now, reason)

    def _append(
        self, kind: RevocationKind, target: bytes, by: Identifier, now: int, reason: str
    ) -> int:
        if len(reason) > limits.MAX_REVOCATION_REASON:
            raise AuthorityError(_A.REQUEST_INVALID, "reason too long")

        def make(seq: int, head: bytes) -> tuple[bytes, bytes]:
            entry = RevocationEntry(seq, kind, target, by, now, reason).encode()
            return entry, next_head(head or feed_genesis(self.identifier), entry)

        return self.store.append_revocation(make)

    def feed(self, *, now: int) -> bytes:
        """The signed revocation feed as of `now`."""
        with self.store.transaction():  # one snapshot: the head matches the entries
            entries = self.store.revocation_entries()
            head = self.store.revocation_head() or feed_genesis(self.identifier)
        return build_feed(self.signer(now), entries, head, now=now)
