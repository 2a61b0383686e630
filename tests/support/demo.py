"""The demo's text with what changes from run to run normalised, for the snapshot test
(tests/test_demo_bench.py): identifiers, hex, keys, lease handles and database roles, times,
durations and ports."""

from __future__ import annotations

import re

__all__ = ["normalise"]

_RULES = (
    (re.compile(r"\bT[0-9a-f]{64}\b"), "T<id>"),
    (re.compile(r"\bT[0-9a-f]{4}…[0-9a-f]{4}\b"), "T<id>"),
    (re.compile(r"\b[0-9a-f]{16,}\b"), "<hex>"),
    (re.compile(r"\b[0-9a-f]{12}\.\.\."), "<hex>..."),  # a credential id, shortened
    (re.compile(r"\blease [A-Za-z0-9_-]{22}\b"), "lease <handle>"),
    (re.compile(r"\btl_[0-9a-f]{8}_[0-9a-f]{32}\b"), "tl_<role>"),  # a leased database role
    (re.compile(r"\b\d+ s left\b"), "<n> s left"),
    (re.compile(r"\bz6Mk[1-9A-HJ-NP-Za-km-z]+"), "z6Mk<key>"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b"), "<time>"),
    (re.compile(r"\b\d+\.\d+ ?(?:ms|s)\b"), "<duration>"),
    (re.compile(r"\b127\.0\.0\.1:\d+\b"), "127.0.0.1:<port>"),
)


def normalise(text: str) -> str:
    """`text` with identifiers, hex strings, multibase keys, lease handles, leased database
    roles, ISO times, measured durations and loopback ports replaced by placeholders."""
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text
