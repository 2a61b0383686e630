"""A member's history refused by its authority's node as a fork (review 64u, rotation 1 and 3):
a copy of the member's keys (a stolen backup, a clone of its node) rotated the identity first
and announced that; the authority stored it and refuses every other continuation for good.

The member's node learns it only from the authenticated CLOSE the authority's node sends it
(`peer invalid`, the detail its stored copy gave: "change N: history forks from the stored
copy"); nothing more is sent, to her or to anyone else (the close is sealed with the keys of
the handshake her channel key completed). Her node names the case from that close alone, and
says what to do: retrying can never help.
"""

from __future__ import annotations

from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    ChannelError,
    ChannelFailure,
    IdentityFailure,
)

__all__ = ["fork_explained", "refused_as_fork"]


def refused_as_fork(exc: BaseException) -> bool:
    """Whether `exc` is the authority's refusal of this side's history as a fork of the copy
    it stored: its node's authenticated CLOSE (PEER_INVALID; not this side's refusal of the
    peer), or the `rotated` request refused by an authority on this machine."""
    if isinstance(exc, ChannelError):
        refused = exc.by_peer and exc.reason is ChannelFailure.PEER_INVALID
    else:
        refused = isinstance(exc, AuthorityError) and exc.reason is AuthorityFailure.REQUEST_INVALID
    return refused and IdentityFailure.FORK.value in getattr(exc, "detail", "")


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
