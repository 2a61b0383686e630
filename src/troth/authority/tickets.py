"""Enrollment tickets: one string that carries a one-time code, the authority's identity and
its address, so `troth enroll TICKET` needs nothing else (docs/formats.md, "Enrollment
tickets").

    ticket = "troth-ticket:" + base64url(["troth.ticket", 1, code (32 bytes),
                                          authority history, address])

The code is 256 random bits; the authority stores only its hash, `code_hash`. The address is
`node:NAME` (a node on this machine, NAME a node name) or a route (`/tcp/host:port...`):
anything else is refused when a ticket is created or parsed, before an enrollment records
anything (review 45e, address 1).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem, RoutingError
from troth.names import check_name
from troth.routing.address import parse_route

__all__ = ["LOCAL_PREFIX", "TICKET_PREFIX", "Ticket", "check_address", "code_hash", "new_code"]

TICKET_PREFIX: Final = "troth-ticket:"
LOCAL_PREFIX: Final = "node:"
"""The address of an authority hosted by a node on this machine: `node:NAME`."""
TICKET_TYPE: Final = "troth.ticket"
VERSION: Final = 1
CODE_SIZE: Final = 32
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


def new_code() -> bytes:
    """A fresh one-time code: 256 random bits."""
    return os.urandom(CODE_SIZE)


def code_hash(code: bytes) -> bytes:
    """What the authority stores of a code: SHA-256("troth.ticket-code/1" 0x00 || code)."""
    return sha256(b"troth.ticket-code/1\x00" + code)


def check_address(address: str) -> str:
    """`address` if a node can reach an authority there: `node:NAME` (NAME a node name) or a
    route (`troth.routing.parse_route`: known kinds, valid values, at most MAX_ROUTE_LENGTH
    hops); else DecodeError naming it (review 45e, address 1: an enrollment recorded one it
    could never send, and its node sent it again for a week)."""
    try:
        if address.startswith(LOCAL_PREFIX):
            check_name(address[len(LOCAL_PREFIX) :], "node name")
        else:
            parse_route(address)
    except (RoutingError, ValueError) as exc:
        raise DecodeError(
            f"address {address[:80]!r} is neither node:NAME nor a route ({exc})"
        ) from None
    return address


@dataclass(frozen=True, slots=True)
class Ticket:
    """An enrollment ticket: a one-time code, the authority's change history and the address
    to enroll at (docs/formats.md, "Enrollment tickets"). Its text is `str(ticket)`; `repr`
    never shows the code."""

    code: bytes
    authority_history: bytes
    address: str

    def encode(self) -> bytes:
        """The ticket's CBOR (what its text carries in base64url; at most MAX_TICKET_BYTES
        to parse)."""
        return cbor.encode([TICKET_TYPE, VERSION, self.code, self.authority_history, self.address])

    def __str__(self) -> str:
        data = self.encode()
        return TICKET_PREFIX + base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    def __repr__(self) -> str:  # never print the code by accident
        return f"Ticket(address={self.address!r})"

    @classmethod
    def parse(cls, text: str) -> Ticket:
        text = text.strip()
        if not text.startswith(TICKET_PREFIX):
            raise DecodeError(f"a ticket starts with {TICKET_PREFIX!r}")
        encoded = text[len(TICKET_PREFIX) :]
        if len(encoded) > limits.MAX_TICKET_BYTES * 4 // 3 + 4:
            raise DecodeError("ticket too long", DecodeProblem.OVER_LIMIT)
        # unpadded base64url and nothing else (docs/formats.md, "Enrollment tickets"):
        # urlsafe_b64decode dropped characters out of its alphabet and took padding and `+`
        # `/`, so other texts enrolled with the same ticket (review 54b, decoders 1)
        if not _BASE64URL.fullmatch(encoded) or len(encoded) % 4 == 1:
            raise DecodeError("ticket is not unpadded base64url")
        try:
            data = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"ticket is not base64url: {exc}") from None
        if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != encoded:
            raise DecodeError(
                "ticket: unused bits set in its base64url", DecodeProblem.NON_CANONICAL
            )
        value = cbor.expect_array(cbor.decode(data, max_bytes=limits.MAX_TICKET_BYTES), "ticket", 5)
        cbor.expect_header(value, TICKET_TYPE, VERSION, "ticket")
        return cls(
            cbor.expect_bytes(value[2], "code", CODE_SIZE),
            cbor.expect_bytes(value[3], "authority history"),
            check_address(cbor.expect_text(value[4], "address")),
        )
