"""The limit on the detail a channel's CLOSE frame carries (troth.channel.close_detail;
docs/protocols.md, "Secure channel").

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4).
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLOSE_DIGEST_SHOWN", "MAX_CLOSE_DETAIL"]

MAX_CLOSE_DETAIL: Final = 512
"""Bytes of UTF-8 detail a CLOSE frame carries after its code: the why of a refusal, which the
peer sees as its `ChannelError` detail. Past it the identifiers and digests the detail names
are shortened to `CLOSE_DIGEST_SHOWN` hex digits first, and only then is the text cut (at a
character). It was 200, cut blindly: a refusal naming the peer and an authority (65 characters
each) lost its reason, the one part that tells the peer what to do (review 69p, flake 2)."""
CLOSE_DIGEST_SHOWN: Final = 16
"""Hex digits a CLOSE frame's detail keeps of each identifier or digest (64 hex digits) it
names when the whole would pass `MAX_CLOSE_DETAIL` (a `…` marks the cut)."""
