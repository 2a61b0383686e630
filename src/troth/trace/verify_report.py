"""What verifying a whole trace log answers (`troth.trace.verify.verify_log`): how far it
verified, anchored or not, against which kept checkpoint, and what could not be checked
offline (docs/traces.md, "Decisions taken": the proof rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troth.trace.checkpoint import AnchorStatus, Checkpoint

__all__ = ["LogReport"]


@dataclass(frozen=True, slots=True)
class LogReport:
    """A verified log: how far, anchored or not, and what could not be checked offline."""

    status: AnchorStatus
    size: int
    checkpoint: Checkpoint | None
    tail: int
    agents: int
    disclosures: int
    chains_checked: int
    chains_elsewhere: int
    anchor: Checkpoint | None = None
    """The checkpoint the verifier kept that the log was compared with (None: none kept). An
    older genuine note of the log in its place, the log rolled back to it, is consistent: its
    size and time say which it was (review 51g, anchor 1); a node refuses it
    (`troth.trace.accepted`, review 52a, anchor 1)."""

    @property
    def lacks_kept(self) -> bool:
        """The log holds no checkpoint as large as the kept one (none, or its newest smaller),
        every record the kept one covers there and matching it: its later checkpoints are
        missing; `tail` counts the records after the kept one (review 52a, anchor 2)."""
        return self.anchor is not None and (
            self.checkpoint is None or self.checkpoint.size < self.anchor.size
        )

    @property
    def newest(self) -> Checkpoint | None:
        """The newest checkpoint of the log the verifier holds: the log's, or the kept one
        when the log lacks it (what a kept file is replaced by; never an older one)."""
        return self.anchor if self.lacks_kept else self.checkpoint

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.status is AnchorStatus.VALID,  # unanchored is not valid
            "verified": True,  # every signature, chain and proof checked
            "status": self.status.value,
            "records": self.size,
            "checkpoint": None if self.checkpoint is None else self.checkpoint.to_json(),
            "anchor": None if self.anchor is None else self.anchor.summary(),
            "after_checkpoint": self.tail,
            "lacks_kept_checkpoint": self.lacks_kept,
            "agents": self.agents,
            "disclosures_checked": self.disclosures,
            "chains_checked": self.chains_checked,
            "chains_elsewhere": self.chains_elsewhere,
        }
