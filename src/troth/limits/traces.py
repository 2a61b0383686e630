"""The hard limits of trace verification added since review 55e (troth.trace).

Part of `troth.limits`, which re-exports every one of them (`troth.limits.X`), as
`troth.limits.gates` is: the module itself is near the 800-line cap.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_TRACE_CHAIN_RETRY_SECONDS",
    "MAX_TRACE_EXPORT_MEMO",
    "MAX_TRACE_READ_BYTES",
    "TRACE_EXPORT_SPOOL_BYTES",
]

MAX_TRACE_EXPORT_MEMO: Final = 64
"""Most signer judgements (a line's signer history, windows and key) and, apart, checkpoints
(a line's note with the log's history and attestations) one export's verification keeps, so
that what its lines repeat is verified once (`troth.trace.export_memo`; review 55e, exports
1); the least recently used goes first: lines that all differ cost no more memory than one
line each while they are read."""
MAX_TRACE_CHAIN_RETRY_SECONDS: Final = 10.0
"""Longest a `TraceRecorder.record` refused because the agent's chain moved under it (another
process's record of the agent appended between the head's read and the append) keeps signing
it again on the new head, in the log's chain turn (`<log>.chains`), waiting for that turn
included; then the refusal is raised. Before, it gave up after three tries, and processes
revoking at once failed for revocations that stood (review 56d, concurrency 1)."""
MAX_TRACE_READ_BYTES: Final = 2 * 1024 * 1024
"""Most bytes of envelopes and stored disclosures one read of a trace log's records fetches
(`LogReader.stored`: at least one row, at most its `chunk` of rows), so verifying or exporting
a log of records at MAX_TRACE_RECORD_DISCLOSURE_BYTES holds a few of them at a time, not 4,096
(review 55e, reads 1: about 2.2 GiB)."""
TRACE_EXPORT_SPOOL_BYTES: Final = 1024 * 1024
"""Most bytes of `troth trace export --json` (without --out) held in memory before they go to
a temporary file: the document is printed only once every bundle is made (so a failure
part-way prints only the error object), and a log's export is larger than memory should hold
(review 56f, exports 1)."""
