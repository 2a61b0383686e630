"""The sweep's budget for retried upstream revocations (docs/secrets.md, "Crash safety")."""

from __future__ import annotations

from typing import Final

MAX_SWEEP_RETRIES: Final = 32
SWEEP_RETRY_SECONDS: Final = 0.5
