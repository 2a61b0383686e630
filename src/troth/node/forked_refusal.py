"""A member's history refused by its authority's node as a fork (review 64u, rotation 1 and 3):
a copy of the member's keys (a stolen backup, a clone of its node) rotated the identity first
and announced that; the authority stored it and refuses every other continuation for good.

The member's node learns it only from the authority's authenticated word: the CLOSE the
authority's node sends it (`peer invalid`, the detail its stored copy gave: "change N: history
forks from the stored copy"; nothing more is sent, to her or to anyone else: the close is sealed
with the keys of the handshake her channel key completed), or its answer to the `rotated`
request of a local identity announced over a channel that showed the node's own history (an
agent's: `AuthorityError: request invalid (change N: history forks ...)`, review 65a, forked
1). Her node names the case from that alone, and says what to do: retrying can never help.
"""

from __future__ import annotations

import re
from typing import Final

from troth.authority.client import authority_refusal
from troth.errors import (
    AuthorityFailure,
    Busy,
    ChannelError,
    ChannelFailure,
    IdentityFailure,
    TrothError,
)

__all__ = ["fork_explained", "refused_as_fork"]

_FORK: Final = re.compile(rf"(change \d+: )?{re.escape(IdentityFailure.FORK.value)}( \(.*)?", re.S)
"""A fork refusal's detail, as `IdentityError` words it (a detail in parentheses, maybe cut):
the whole text, not a fork's words quoted inside another refusal's."""


def refused_as_fork(exc: BaseException) -> bool:
    """Whether `exc` is the authority's refusal of this side's history as a fork of the copy
    it stored: its node's authenticated CLOSE (PEER_INVALID; not this side's refusal of the
    peer), the `rotated` request refused by an authority on this machine, or its node's answer
    to one (a RemoteError, review 65a, forked 1)."""
    detail: str | None = None
    if isinstance(exc, ChannelError):
        if exc.by_peer and exc.reason is ChannelFailure.PEER_INVALID:
            detail = exc.detail
    elif isinstance(exc, TrothError) and not isinstance(exc, Busy):  # in process, or its
        refusal = authority_refusal(exc)  # node's answer (`failure_response`); busy: asked again
        if refusal is not None and refusal.reason is AuthorityFailure.REQUEST_INVALID:
            detail = refusal.detail
    return detail is not None and _FORK.fullmatch(detail) is not None


def fork_explained(exc: BaseException, identity: str) -> str:
    """What `exc` (`refused_as_fork`) means for local identity `identity`, and what to do."""
    return (
        f"{exc}: the authority refuses this identity's history as a fork of the one it "
        "stored: a copy of its keys (a stolen backup, or a clone of this node) rotated it "
        "first and announced that; retrying cannot help. If this node is the identity's "
        "own, have the authority's operator revoke it (troth revoke identity "
        f"{identity} --authority NAME) and enroll a new identity "
        '(docs/vault.md, "Recovering from a stolen backup")'
    )
