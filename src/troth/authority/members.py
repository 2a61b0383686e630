"""The authority's members and their roles: `Member` (one as the store holds it: its attributes,
who added it and when) and the role attribute (`troth.role`: `admin`, `enroller`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from troth.credentials import Attributes
from troth.encoding import cbor
from troth.identity import Identifier
from troth.storage import MemberRecord

__all__ = ["ADMIN", "ENROLLER", "ROLE", "Member", "member_from_record"]

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
