"""Identifiers: SHA-256 of the first change's signed body bytes, all 256 bits.

Text form: "T" followed by 64 lowercase hex digits. DID form: "did:troth:" + the same 64 hex
digits (docs/formats.md, "Identifiers").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from troth.errors import MalformedText

__all__ = ["DID_PREFIX", "TEXT_PREFIX", "Identifier"]

TEXT_PREFIX: Final = "T"
DID_PREFIX: Final = "did:troth:"
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True, init=False)
class Identifier:
    """An identity's identifier: the SHA-256 digest of its first change (`T` + hex as text)."""

    digest: bytes

    def __init__(self, digest: bytes) -> None:
        if not isinstance(digest, bytes) or len(digest) != 32:  # review 51e, exports 7
            raise MalformedText("an identifier is a 32-byte SHA-256 digest (bytes)")
        _set_digest(self, digest)  # frozen: through the slot (object.__setattr__ is slower)

    def __hash__(self) -> int:  # the generated one hashes a 1-tuple; identifiers key hot dicts
        return hash(self.digest)

    def __str__(self) -> str:
        return TEXT_PREFIX + self.digest.hex()

    @property
    def did(self) -> str:
        """The DID form: `did:troth:` + 64 hex digits."""
        return DID_PREFIX + self.digest.hex()

    @classmethod
    def parse(cls, text: str) -> Identifier:
        """Parse the text form or the DID form; raise MalformedText (a ValueError) otherwise."""
        if not isinstance(text, str):  # review 51e, exports 7: an AttributeError
            raise MalformedText(f"not an identifier: a {type(text).__name__}, not text")
        if text.startswith(DID_PREFIX):
            body = text[len(DID_PREFIX) :]
        elif text.startswith(TEXT_PREFIX):
            body = text[len(TEXT_PREFIX) :]
        else:
            raise MalformedText(f"not an identifier: {text!r}")
        if not _HEX64.fullmatch(body):
            raise MalformedText(f"not an identifier: {text!r}")
        return cls(bytes.fromhex(body))

    @staticmethod
    def looks_like(text: str) -> bool:
        """Whether `text` is in identifier form (names can never be: they are lowercase)."""
        if not isinstance(text, str):
            return False
        if text.startswith(DID_PREFIX):
            body = text[len(DID_PREFIX) :]
        elif text[:1] == TEXT_PREFIX:
            body = text[1:]
        else:  # "d" + 64 hex digits is neither form (review 14): a name, if anything
            return False
        return bool(_HEX64.fullmatch(body))


_set_digest = vars(Identifier)["digest"].__set__  # the slot descriptor
