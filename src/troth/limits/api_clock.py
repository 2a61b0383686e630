"""The times the public API's clock may read (troth._api.arguments.CheckedClock).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["LAST_CLOCK_READING"]

LAST_CLOCK_READING: Final = 253_402_300_799
"""The latest time (Unix seconds: 9999-12-31T23:59:59Z, the last second a `datetime` holds, as
`troth policy test --time` takes) a caller's clock given to the API (`Node.open(clock=)`,
`Verifier(clock=)`) may read; a reading after it, or before 1970, is an ArgumentError (review
59e, api 1: one of 2**63 or more failed with a bare OverflowError from SQLite, a negative one
dated tickets and revocations before 1970)."""
