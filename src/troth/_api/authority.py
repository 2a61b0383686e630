"""The public face of an authority a node hosts: tickets, revocations, and its own feed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from troth import limits
from troth._api.arguments import (
    check_attributes,
    check_optional_text,
    check_short_text,
    check_whole,
)
from troth._api.results import Credential, Identity
from troth.authority import Authority as HostedAuthority
from troth.authority.core import DEFAULT_TICKET_TTL
from troth.authority.tickets import check_address
from troth.clock import Clock
from troth.credentials import VerifiedFeed
from troth.errors import ArgumentError, DecodeError
from troth.identity import Identifier
from troth.kinds import check_kind, check_utf8
from troth.node.node import Node as StoredNode
from troth.node.traces import revoke_as_authority

__all__ = ["AttributesLike", "Authority"]

_ID_BYTES: Final = 32
"""A credential id's length (a SHA-256 hash)."""

AttributesLike = Mapping[str, str | Iterable[str]]
"""Attributes as a mapping: `{"orders.access": ["read", "write"], "orders.customer": "4471"}`
(an `Attributes` is one too)."""


class Authority:
    """An authority hosted by a node: it enrolls members with one-time tickets, issues their
    credentials, and publishes a signed revocation feed (get one with `Node.create_authority`
    or `Node.authority`)."""

    def __init__(self, hosted: HostedAuthority, node: StoredNode, clock: Clock) -> None:
        """(Use `Node.create_authority` or `Node.authority`: anything else is an ArgumentError;
        review 54n, api 15.)"""
        use = "an authority a node hosts (use Node.create_authority or Node.authority)"
        self._hosted = check_kind("Authority", "hosted", hosted, HostedAuthority, use)
        self._node = check_kind("Authority", "node", node, StoredNode, use)
        self._config = node.config
        self._clock = clock

    @property
    def identifier(self) -> Identifier:
        """The authority's identifier: what verifiers trust (`Verifier(trust=[...])`)."""
        return self._hosted.identifier

    @property
    def name(self) -> str:
        """The name of the authority's identity on its node."""
        return self._hosted.config.name

    def ticket(
        self,
        attributes: AttributesLike,
        *,
        at: str | None = None,
        uses: int = 1,
        ttl: int = DEFAULT_TICKET_TTL,
    ) -> str:
        """A one-time ticket (text) granting `attributes` to whoever redeems it with
        `Node.enroll`. It carries the authority's identity and where it is reached: `at` (a
        route such as `/tcp/127.0.0.1:4000`), else the node's configured address (`node:NAME`
        on this machine when it has none). `uses` redemptions (1 to `limits.MAX_TICKET_USES`)
        within `ttl` seconds (1 to `limits.MAX_TTL`); out of range, or of another type, an
        ArgumentError."""
        granted = check_attributes("Authority.ticket", "attributes", attributes)
        where = check_optional_text("Authority.ticket", "at", at)
        if where is not None:
            try:  # an AuthorityError REQUEST_INVALID beneath (review 63j, api 4)
                check_address(where)
            except DecodeError as exc:
                said = str(exc)[:160]
                raise ArgumentError(
                    "Authority.ticket", "at", "a route or node:NAME", said
                ) from None
        # out of range refused here, naming it, not by the authority beneath (review 56c, api 1)
        check_whole("Authority.ticket", "uses", uses, low=1, high=limits.MAX_TICKET_USES)
        check_whole("Authority.ticket", "ttl", ttl, low=1, high=limits.MAX_TTL, unit=" of seconds")
        ticket = self._hosted.create_ticket(
            creator=self._hosted.identifier,
            attributes=granted,
            address=at or self._config.address(),
            now=self._clock.now(),
            uses=uses,
            ttl=ttl,
        )
        return str(ticket)

    def revoke(self, credential: Credential | bytes, *, reason: str = "") -> int:
        """Revoke a credential (a `Credential`'s last link, or a credential id: bytes) in every
        chain rooted here: every chain holding it stops verifying. Returns the feed entry's
        number. A credential id not of 32 bytes, or anything else, is an ArgumentError, a
        TypeError (an identity is revoked by `revoke_identity`)."""
        check_short_text("Authority.revoke", "reason", reason, "MAX_REVOCATION_REASON")
        if isinstance(credential, Credential):
            target = credential.id
        elif isinstance(credential, bytes) and len(credential) == _ID_BYTES:
            target = credential
        elif isinstance(credential, bytes):  # a bare ValueError beneath (review 51e, authority 3)
            raise ArgumentError(
                "Authority.revoke",
                "credential",
                f"a Credential or a credential id ({_ID_BYTES} bytes)",
                f"{len(credential)} bytes",
            )
        else:  # an Identifier here was revoked as an identity (review 35d, authority 3)
            raise ArgumentError(
                "Authority.revoke",
                "credential",
                "a Credential or a credential id (bytes)",
                f"{type(credential).__name__} (an identity is revoked with revoke_identity)",
            )
        return self._revoked(target, reason)

    def revoke_identity(self, identity: Identifier | Identity | str, *, reason: str = "") -> int:
        """Revoke an identity for good (an `Identifier`, an `Identity`, or identifier text):
        every link it issued or holds stops verifying. Anything else is an ArgumentError, a
        TypeError (its digest's bytes would name a credential id: review 35d, authority 1)."""
        check_short_text("Authority.revoke_identity", "reason", reason, "MAX_REVOCATION_REASON")
        if isinstance(identity, Identity):
            identifier = identity.identifier
        elif isinstance(identity, Identifier):
            identifier = identity
        elif isinstance(identity, str):  # a lone surrogate: an ArgumentError (review 59k, api 1)
            check_utf8("Authority.revoke_identity", "identity", identity)
            identifier = Identifier.parse(identity)  # MalformedText for anything else
        else:
            raise ArgumentError(
                "Authority.revoke_identity",
                "identity",
                "an identity to revoke (an Identifier, an Identity or identifier text)",
                type(identity).__name__,
            )
        return self._revoked(identifier, reason)

    def _revoked(self, target: bytes | Identifier, reason: str) -> int:
        """Revoke `target`, recorded; then the nodes served in this process that trust this
        authority hold it before the call returns (review 49a, revocation 1), as the daemons
        running here do (`tell_local_nodes`)."""
        from troth._api.network import sync_runtimes_here

        return revoke_as_authority(  # recorded or not, once it stands: the nodes served here
            # synced before the daemons are asked (review 70d, telling 4)
            self._node,
            self._hosted,
            target,
            reason=reason,
            clock=self._clock,
            told=lambda host: sync_runtimes_here(host, now=self._clock.now()),
        )

    def _revocation_feed(self, authority: Identifier, *, now: int) -> VerifiedFeed | None:
        """This authority's own feed as of `now`, when `authority` is this one."""
        if authority != self._hosted.identifier or self._feed_due(authority, now=now):
            return None
        return self._hosted.held_feed(now=now)

    def _feed_due(self, authority: Identifier, *, now: int) -> bool:
        """Only while a restore of node.db holds this authority (its feed the copy's: review
        65o, feed 2); otherwise never: an authority's own feed is current where it is held
        (`Node._feed_due`)."""
        return authority == self._hosted.identifier and self._hosted.restore_hold() is not None

    def __repr__(self) -> str:
        return f"Authority({self.name!r}, {self.identifier})"
