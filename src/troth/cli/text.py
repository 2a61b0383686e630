"""How values read in human output: times as ISO 8601 UTC with a relative part, durations as
`1h30m`, attribute maps as `key=value` lists. `--json` keeps the raw values (epoch seconds)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from troth import limits

__all__ = [
    "LAST_DATE",
    "attributes",
    "duration",
    "moment",
    "parse_duration",
    "relative",
    "timestamp",
]

_UNITS = (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1))
_UNIT_SECONDS = dict(_UNITS)
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_YEAR = 365 * 86_400


LAST_DATE = 253_402_300_799
"""9999-12-31T23:59:59Z, the last second a `datetime` holds: a peer's time may be any uint
(a change's valid_until up to 2^64 - 1: review 34a, cli 1)."""


def timestamp(epoch: int) -> str:
    """`2026-12-01T14:02:00Z` (ISO 8601, UTC, whole seconds); a time past the year 9999 (what
    a peer may write) as `after 9999-12-31T23:59:59Z (epoch N)`, never an OverflowError."""
    if not 0 <= epoch <= LAST_DATE:
        return f"after 9999-12-31T23:59:59Z (epoch {epoch})" if epoch > 0 else f"epoch {epoch}"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def relative(seconds: int) -> str:
    """A distance in time for people, rounded down: `45 s`, `59 min`, `2 h 5 min`, `12 days`,
    `10 years`."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86_400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if seconds < 2 * _YEAR:
        days = seconds // 86_400
        return "1 day" if days == 1 else f"{days} days"
    return f"{seconds // _YEAR} years"


def moment(epoch: int, now: int, *, expiry: bool = False) -> str:
    """`2026-12-01T14:02:00Z, in 59 min` / `..., 3 min ago`; an expiry in the past reads
    `..., expired 3 min ago`."""
    delta = epoch - now
    if delta == 0:
        when = "now" if not expiry else "expires now"
    elif delta > 0:
        when = f"in {relative(delta)}"
    else:
        when = f"{'expired ' if expiry else ''}{relative(delta)} ago"
    return f"{timestamp(epoch)}, {when}"


def duration(seconds: int) -> str:
    """`5400` -> `1h30m`, `600` -> `10m`, `90061` -> `1d1h1m1s` (what --ttl accepts)."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_duration(text: str) -> int:
    """`90`, `30s`, `10m`, `1h30m`, `2d` -> seconds (ValueError otherwise)."""
    text = text.strip()
    if text.isdigit():
        seconds = int(text)
    else:
        match = _DURATION.fullmatch(text)
        if not text or match is None:
            seconds = 0
        else:
            seconds = sum(
                int(count) * _UNIT_SECONDS[unit]
                for count, (unit, _) in zip(match.groups(), _UNITS, strict=True)
                if count
            )
    if seconds <= 0:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90, 30s, 10m, 1h30m, 2d)")
    if seconds > limits.MAX_TTL:  # it would not fit a time (review 44c, bounds 1)
        raise ValueError(f"{text!r} is longer than troth takes ({limits.MAX_TTL} s, MAX_TTL)")
    return seconds


def _value(value: Any) -> str:
    if isinstance(value, list | tuple | frozenset | set):
        return "{" + ", ".join(sorted(str(v) for v in value)) + "}"
    return str(value)


def attributes(attrs: Mapping[str, Any]) -> str:
    """`orders.access={read, write}, orders.customer=4471`, or `(none)`."""
    if not attrs:
        return "(none)"
    return ", ".join(f"{key}={_value(attrs[key])}" for key in sorted(attrs))
