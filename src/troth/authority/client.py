"""The member's side of talking to an authority: signed enroll, refresh, revoke and rotated
requests."""

from __future__ import annotations

from troth.authority.requests import make_request
from troth.authority.tickets import Ticket
from troth.identity import Identifier, IdentityService, verify_history

__all__ = [
    "enroll_request",
    "refresh_request",
    "revoke_request",
    "rotated_request",
    "ticket_authority",
]


def ticket_authority(ticket: Ticket, *, now: int) -> Identifier:
    """The authority a ticket names (its history verified)."""
    return verify_history(ticket.authority_history, now=now).identifier


def enroll_request(identities: IdentityService, ref: str, ticket: Ticket, *, now: int) -> bytes:
    authority = identities.import_history(ticket.authority_history, now=now).identifier
    return make_request(
        identities.signer(ref, now=now), "enroll", authority, [ticket.code], now=now
    )


def refresh_request(
    identities: IdentityService, ref: str, authority: Identifier, *, now: int
) -> bytes:
    return make_request(identities.signer(ref, now=now), "refresh", authority, [], now=now)


def revoke_request(
    identities: IdentityService,
    ref: str,
    authority: Identifier,
    *,
    credential_hash: bytes,
    chain: bytes,
    reason: str,
    now: int,
) -> bytes:
    arguments = [credential_hash, chain, reason]
    return make_request(identities.signer(ref, now=now), "revoke", authority, arguments, now=now)


def rotated_request(
    identities: IdentityService, ref: str, authority: Identifier, *, now: int
) -> bytes:
    """Announce `ref`'s (rotated) history to `authority`: the request carries it."""
    return make_request(identities.signer(ref, now=now), "rotated", authority, [], now=now)
