"""The text primitives of a trace record's payload and its disclosures (troth.trace.record):
hex members checked against their pattern, and strings written as the payload's canonical
encoder writes them (RFC 8785 §3.2.2.2; docs/formats.md, "Trace records")."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from troth.errors import DecodeError

__all__: list[str] = []  # troth.trace.record's, record_decode's and disclosure's helpers only

_HEX32: Final = re.compile(r"[0-9a-f]{32}")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")

_text: Final = json.encoder.encode_basestring
"""A string as troth.trace.record's `_ENCODER` writes it (the same C function: escapes, no \\u
for non-ASCII)."""


def _hex(value: Any, what: str, pattern: re.Pattern[str]) -> bytes:
    if type(value) is not str or not pattern.fullmatch(value):
        raise DecodeError(f"{what}: not {pattern.pattern}")
    return bytes.fromhex(value)
