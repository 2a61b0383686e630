"""Revocation feed pages signed by a test party (no authority store), for feed tests."""

from __future__ import annotations

from collections.abc import Sequence

from tests.support.parties import Party
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    Supersession,
    build_page,
    feed_genesis,
    next_head,
)
from troth.identity import Identifier


def entries(
    authority: Party, targets: Sequence[tuple[int, bytes]], *, at: int, start: int = 0
) -> list[RevocationEntry]:
    """(kind, target) pairs as entries by the authority from seq `start` (kind 3 targets get a
    supersession of 2 changes whose hash is the target itself)."""
    made = []
    for seq, (kind, target) in enumerate(targets, start):
        extra = Supersession(2, target) if kind == RevocationKind.SUPERSEDED else None
        made.append(
            RevocationEntry(seq, RevocationKind(kind), target, authority.identifier, at, "", extra)
        )
    return made


def superseded(
    seq: int, member: Identifier, authority: Identifier, changes: int, current: bytes, *, at: int
) -> RevocationEntry:
    """Entry `seq` of `authority`'s feed: `member`'s history superseded by one of `changes`
    changes whose newest is `current` (a checkpoint of it)."""
    return RevocationEntry(
        seq,
        RevocationKind.SUPERSEDED,
        member.digest,
        authority,
        at,
        "",
        Supersession(changes, current),
    )


def pages(
    authority: Party,
    feed: Sequence[RevocationEntry],
    *,
    now: int,
    per_page: int,
    start: int = 0,
    latest: int | None = None,
) -> list[bytes]:
    """The signed pages of entries `feed[start:]`, `per_page` entries each (at least one page)."""
    encoded = [e.encode() for e in feed]
    head = feed_genesis(authority.identifier)
    for entry in encoded[:start]:
        head = next_head(head, entry)
    made = []
    position = start
    while True:
        chunk = encoded[position : position + per_page]
        for entry in chunk:
            head = next_head(head, entry)
        made.append(
            build_page(
                authority.signer,
                chunk,
                start=position,
                head=head,
                latest=len(encoded) if latest is None else latest,
                now=now,
            )
        )
        position += len(chunk)
        if position >= len(encoded):
            return made
