"""The authority: members, enrollment tickets, member credentials, revocation feed."""

from troth.authority.core import ADMIN, ENROLLER, ROLE, Authority, Member
from troth.authority.requests import VerifiedRequest, make_request, verify_request
from troth.authority.tickets import Ticket

__all__ = [
    "ADMIN",
    "ENROLLER",
    "ROLE",
    "Authority",
    "Member",
    "Ticket",
    "VerifiedRequest",
    "make_request",
    "verify_request",
]
