"""The detail a CLOSE frame carries (docs/protocols.md, "Secure channel"): within
`limits.MAX_CLOSE_DETAIL` bytes of UTF-8, and readable there. A refusal names identities (65
characters each) and then says why; cut at the limit, the why went first (review 69p, flake 2:
`desk refused T…: it holds no credential from an authority desk trusts (a credential from
T05ddff…`, the reason cut off). So past the limit each identifier or digest (64 hex digits)
is shortened to `limits.CLOSE_DIGEST_SHOWN` digits and a `…`, and only what still passes is
cut, at a character (a cut inside one made the peer's decoding show a replacement
character).

The receiving side keeps no more than a node sends (review 69u, wave3 1: it decoded and quoted
a whole frame's detail, up to 64 KiB, a control byte escaped as four characters: ~256 KiB of
a peer's text per close, kept with the error and logged): `peer_close_detail` cuts it at
`MAX_CLOSE_DETAIL` bytes, at a character, and marks the cut with a `…`, before it is quoted as
one line (`one_line_text`).
"""

from __future__ import annotations

import re
from typing import Final

from troth.errors import one_line_text
from troth.limits import CLOSE_DIGEST_SHOWN, MAX_CLOSE_DETAIL

__all__ = ["close_detail", "peer_close_detail"]

_DIGEST: Final = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def close_detail(detail: str) -> bytes:
    """`detail` as a CLOSE frame carries it (module docstring)."""
    data = detail.encode(errors="backslashreplace")
    if len(data) <= MAX_CLOSE_DETAIL:
        return data
    short = _DIGEST.sub(lambda m: m.group(0)[:CLOSE_DIGEST_SHOWN] + "\u2026", detail)
    data = short.encode(errors="backslashreplace")
    if len(data) <= MAX_CLOSE_DETAIL:
        return data
    return data[:MAX_CLOSE_DETAIL].decode(errors="ignore").encode()


def peer_close_detail(data: bytes) -> str:
    """The detail a peer's CLOSE frame carried (`data`, after its code), as this side keeps,
    shows and logs it: at most `MAX_CLOSE_DETAIL` bytes of it, cut at a character (a `…` then
    ends it), quoted as one line (module docstring)."""
    if len(data) <= MAX_CLOSE_DETAIL:
        return one_line_text(data.decode(errors="replace"))
    end = MAX_CLOSE_DETAIL
    while end > MAX_CLOSE_DETAIL - 3 and data[end] & 0xC0 == 0x80:  # (inside a character)
        end -= 1
    return one_line_text(data[:end].decode(errors="replace")) + "\u2026"
