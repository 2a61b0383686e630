"""Descriptors opened by the code under test and not closed again.

A count of /proc/self/fd is the process's, not the code's: the collector closing another
test's files meanwhile moved it (CI, stop 46: 167 before a thousand refusals, 143 after).
`DescriptorLedger` records what `os.open` returned and `os.close` closed instead."""

from __future__ import annotations

import os
from typing import Any

import pytest


class DescriptorLedger:
    """Installed on `os.open` and `os.close` for the rest of a test (through monkeypatch)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.held: set[int] = set()
        """Opened and not closed yet."""
        self.opens = 0
        """How many `os.open` calls returned a descriptor."""
        real_open, real_close = os.open, os.close

        def opening(*args: Any, **kwargs: Any) -> int:
            fd = real_open(*args, **kwargs)
            self.held.add(fd)
            self.opens += 1
            return fd

        def closing(fd: int) -> None:
            self.held.discard(fd)
            real_close(fd)

        monkeypatch.setattr(os, "open", opening)
        monkeypatch.setattr(os, "close", closing)
