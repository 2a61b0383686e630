"""The limits of the leased-secrets broker's clock (troth.secrets.states; docs/secrets.md, "The
broker's clock").

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["BROKER_CLOCK_JUMP"]

BROKER_CLOCK_JUMP: Final = 3600
"""Seconds: behind the broker's high-water mark, a step of the node's clock forward larger than
this counts only the seconds the machine ran meanwhile (a correction next to nothing, a
suspension as time gone by) and starts a new set back (review 58d, secrets 3: a clock reset
near 1970, then corrected by NTP to a time still behind the mark, moved the broker's time on
by half of 56 years; review 58h, secrets 1: a suspension counted nothing). The served broker
reads its clock every few seconds."""
