"""The hard limits of trace verification added since review 55e (troth.trace).

Part of `troth.limits`, which re-exports every one of them (`troth.limits.X`), as
`troth.limits.gates` is: the module itself is near the 800-line cap.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_TRACE_EXPORT_MEMO"]

MAX_TRACE_EXPORT_MEMO: Final = 64
"""Most signer judgements (a line's signer history, windows and key) and, apart, checkpoints
(a line's note with the log's history and attestations) one export's verification keeps, so
that what its lines repeat is verified once (`troth.trace.export_memo`; review 55e, exports
1); the least recently used goes first: lines that all differ cost no more memory than one
line each while they are read."""
