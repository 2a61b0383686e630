"""Whether a signer history the log is given retires a key before a record the log holds of it
(docs/formats.md, "Signatures outlive rotations"; review 58c, trace 3).

A record may be dated up to MAX_CLOCK_SKEW_SECONDS ahead of the log's clock, and a rotation is
dated by its agent. An agent whose record the log admitted at `t` (its key current then) that
then rotates with a change dated before `t` (a member's own choice, or its clock stepped back)
presents a history under which that record's key was retired before it signed: rule 3 refuses
the record, which the log already holds. The log admitted the history with the agent's next
record, and its own verification then refused the earlier record (`signed by a key after its
retirement`), naming it as the log's first bad record for good. The log now refuses a record
whose signer history dates the change after its agent's last record's before that record.
"""

from __future__ import annotations

from troth.errors import TraceError, TraceFailure
from troth.identity import VerifiedIdentity

__all__ = ["check_retirement"]


def check_retirement(signer: VerifiedIdentity, change: int, time: int, *, record: str) -> None:
    """Raise TraceError SIGNER_INVALID when `signer`'s change after `change` (the change of the
    agent's last record in the log, dated `time`) is dated before `time`. A change the history
    does not hold (a checkpointed one past it) is not judged here."""
    for each in signer.changes:
        if each.index == change + 1:
            if each.body.created_at < time:
                raise TraceError(
                    TraceFailure.SIGNER_INVALID,
                    f"change {each.index} is dated {each.body.created_at}, before the agent's"
                    f" record at {time} the log holds (it would retire that record's key"
                    " before it signed it)",
                    record=record,
                )
            return
