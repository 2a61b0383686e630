"""The hard limits of a holder's enrollments in flight (troth.credentials.pending;
docs/storage.md, "Recovery rules").

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_PENDING_PER_AUTHORITY"]

MAX_PENDING_PER_AUTHORITY: Final = 8
"""Pending enrollments one local identity keeps with one authority, one per ticket (review 61l,
enrollment 1: an enrollment with another ticket no longer replaces an interrupted one, whose
member the authority may have made, its answer lost). An enrollment past it gives up the
oldest of them: `troth enroll` run with ever more tickets that fail for a passing reason (an
address no one answers at) no longer grows the table without bound."""
