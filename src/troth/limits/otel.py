"""The hard limits of the OpenTelemetry export (troth.trace.otel) added since review 57h.

Part of `troth.limits`, which re-exports every one of them (`troth.limits.X`), as
`troth.limits.gates` is: the module itself is near the 800-line cap.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_TRACE_OTEL_HELD_IDS", "OTEL_EXPORT_BATCH_SECONDS", "OTEL_SHOWN_NAME"]

MAX_TRACE_OTEL_HELD_IDS: Final = 65_536
"""Most record ids whose holders (where the records under the id are in the log, for the version
1 links that name it) one OTel export keeps, so that a link to an id read before is one look-up
(`troth.trace.otel._LogHolders`, review 36g); the oldest goes first, read again when named
again. Every id was kept: ~200 bytes a version 1 record linking another id, without bound
(review 57h, otel 4); this many hold ~13 MB."""

OTEL_EXPORT_BATCH_SECONDS: Final = 60.0
"""Longest the OTel export waits for its exporter to send one batch (`troth.trace.otel`), its
retries included; past it the export fails (Unreachable). The OTLP exporter's own timeout
(10 s, `OTEL_EXPORTER_OTLP_TIMEOUT`) bounds each read of its HTTP client, not an answer: a
collector sending its answer a byte at a time held the export for as long as it kept sending
(review 64i, otel 1)."""

OTEL_SHOWN_NAME: Final = 200
"""Most characters of a span's name the warning for a span `SigningSpanProcessor(strict=False)`
could not sign shows (`troth.trace.otel`): the whole name was logged, a span of a tool named
by a 1 MB text a 1 MB line each (review 69x, wave4c 3)."""
