"""The authority's members and their roles: `Member` (one as the store holds it: its attributes,
who added it and when), the role attribute (`troth.role`: `admin`, `enroller`), and whose
revocation quota a member's entries are charged to (`quota_holder`: the member itself, or the
ticket of many uses that enrolled it, shared by that ticket's members; review 71e, quota)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from troth.credentials import Attributes
from troth.crypto import sha256
from troth.encoding import cbor
from troth.identity import Identifier
from troth.storage import MemberRecord

__all__ = [
    "ADMIN",
    "ENROLLER",
    "ROLE",
    "Member",
    "holder_name",
    "member_from_record",
    "quota_holder",
    "quota_ticket_of",
]

ROLE: Final = "troth.role"
ADMIN: Final = "admin"
ENROLLER: Final = "enroller"


@dataclass(frozen=True, slots=True)
class Member:
    """A member of an authority: its identifier, the attributes its credentials grant, and
    who added it when."""

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


def member_from_record(record: MemberRecord) -> Member:
    """The member a store record holds."""
    return Member(
        Identifier(record.identifier),
        Attributes.from_cbor(cbor.decode(record.attributes)),
        Identifier(record.added_by),
        record.added_at,
    )


def quota_holder(record: MemberRecord | None, member: Identifier) -> Identifier:
    """The account `member`'s revocation quota is kept under (`record`: its stored row, None
    once removed): the account of the ticket of many uses that enrolled it (a name no identity
    has: a hash of the ticket's code hash under its own domain), shared by every member that
    ticket enrolled, or the member itself (a single-use ticket's member, one enrolled before
    schema 21, one no longer a member). Its link revocations, its delegates'
    (`delegates_of` the holder) and its supersessions are each charged to the holder: a ticket
    of N uses mints no N quotas (review 70q, feeds 2; docs/credentials.md, "Nobody can flood
    the feed")."""
    if record is None or record.quota_ticket is None:
        return member
    return Identifier(sha256(b"troth.authority.ticket-quota/1\x00" + record.quota_ticket))


def quota_ticket_of(
    existing: MemberRecord | None, code_hash: bytes, uses: int | None
) -> bytes | None:
    """The `quota_ticket` of a member redeeming the ticket of `code_hash`, made with `uses`
    uses (None: made before schema 21, not known), given its row so far (`existing`, None for
    a new member). A single-use ticket makes it its own holder (one ticket, one holder, as
    before); a ticket of many uses makes a new member share that ticket's quota, and leaves a
    member's holder as it was: joining that ticket's members would let them spend what it
    needs to revoke, and moving from one shared quota to another gains no quota."""
    if uses == 1:
        return None
    if existing is not None:
        return existing.quota_ticket
    return code_hash


def holder_name(member: Identifier, holder: Identifier) -> str:
    """How a refusal names the holder of `member`'s quota (`quota_holder`)."""
    if holder == member:
        return str(member)
    return f"the members of the ticket that enrolled {member}"
