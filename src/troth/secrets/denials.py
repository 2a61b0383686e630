"""How many of the broker's refusals are audited (review 45b, denials 4).

Every refusal the broker audits (`LeaseBook._deny`) is a record in its audit sink, on a served
broker the node's trace. A caller needs no credential to be refused (the `revoke` of a lease id
of its making: no credential is needed to give a lease back), so one caller sending requests
wrote a record each, for as long as it kept sending. `DenialBudget` bounds them per window of
`DENIAL_WINDOW` seconds: at most `DENIALS_PER_CALLER` records of one caller and
`DENIALS_PER_ACCOUNT` of one account (the member a chain names; every caller without a current
credential shares `UNCREDENTIALED`, so identities minted for free share one allowance). Refusals
past either are answered as before but not recorded; they are counted per account, and the
count is written as one summary record once the account's window ended (`due`, from the sweep;
or at its next refusal). Sans-IO: `now` is passed in; safe to call from several threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

from troth.identity import Identifier

__all__ = [
    "DENIALS_PER_ACCOUNT",
    "DENIALS_PER_CALLER",
    "DENIAL_WINDOW",
    "MAX_DENIAL_SOURCES",
    "DenialBudget",
    "Unrecorded",
]

DENIAL_WINDOW: Final = 600
"""Seconds of one window of refusal records (per caller and per account)."""
DENIALS_PER_CALLER: Final = 8
"""Refusals of one caller (identity) recorded per window."""
DENIALS_PER_ACCOUNT: Final = 64
"""Refusals under one account (a member with its delegates; all uncredentialed callers as one)
recorded per window: the bound of the records minted identities can make."""
MAX_DENIAL_SOURCES: Final = 4096
"""Callers, and accounts, whose windows are kept at once (the oldest forgotten first: a
forgotten caller starts a new window, its account's still bounds it; a forgotten account's
unrecorded count is handed back to be written)."""


@dataclass(frozen=True, slots=True)
class Unrecorded:
    """Refusals under `account` not recorded in the window that began at `since`."""

    account: Identifier
    count: int
    since: int

    def detail(self) -> str:
        """The summary record's text."""
        return (
            f"{self.count} more refusals under this account were not recorded from {self.since} "
            f"(at most {DENIALS_PER_CALLER} a caller and {DENIALS_PER_ACCOUNT} an account "
            f"every {DENIAL_WINDOW} s)"
        )


@dataclass(slots=True)
class _Window:
    started: int
    recorded: int = 0
    unrecorded: int = 0


class DenialBudget:
    """Which refusals are recorded (module docstring)."""

    def __init__(self) -> None:
        self._callers: dict[Identifier, _Window] = {}  # oldest first
        self._accounts: dict[Identifier, _Window] = {}
        self._lock = threading.Lock()

    def admit(
        self, caller: Identifier, account: Identifier, now: int
    ) -> tuple[bool, list[Unrecorded]]:
        """Whether a refusal of `caller` under `account` at `now` is recorded, and the summaries
        to write first (windows that ended with refusals not recorded)."""
        summaries: list[Unrecorded] = []
        with self._lock:
            own = self._window(self._callers, caller, now, None)
            shared = self._window(self._accounts, account, now, summaries)
            if own.recorded >= DENIALS_PER_CALLER or shared.recorded >= DENIALS_PER_ACCOUNT:
                shared.unrecorded += 1
                return False, summaries
            own.recorded += 1
            shared.recorded += 1
            return True, summaries

    def due(self, now: int) -> list[Unrecorded]:
        """The summaries of the accounts whose window ended (their windows forgotten)."""
        with self._lock:
            ended = [a for a, w in self._accounts.items() if now - w.started >= DENIAL_WINDOW]
            summaries = [_summary(a, self._accounts.pop(a)) for a in ended]
            for caller in [c for c, w in self._callers.items() if now - w.started >= DENIAL_WINDOW]:
                del self._callers[caller]
        return [summary for summary in summaries if summary.count]

    def _window(
        self,
        windows: dict[Identifier, _Window],
        key: Identifier,
        now: int,
        summaries: list[Unrecorded] | None,
    ) -> _Window:
        """`key`'s current window (a new one when its last ended, or it had none); an ended
        or forgotten account's unrecorded count goes to `summaries`."""
        window = windows.get(key)
        if window is not None and now - window.started < DENIAL_WINDOW:
            return window
        if window is not None:
            del windows[key]
            if summaries is not None and window.unrecorded:
                summaries.append(_summary(key, window))
        if len(windows) >= MAX_DENIAL_SOURCES:
            oldest = next(iter(windows))
            forgotten = windows.pop(oldest)
            if summaries is not None and forgotten.unrecorded:
                summaries.append(_summary(oldest, forgotten))
        window = windows[key] = _Window(now)
        return window


def _summary(account: Identifier, window: _Window) -> Unrecorded:
    return Unrecorded(account, window.unrecorded, window.started)
