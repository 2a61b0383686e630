"""Review 73e (area: tickets4): a second review of the outbox's re-sign tickets after a
rotation (reviews 72e, 72j, 72o, 72s) and the first of the whole shape.

1. (honest records lost across a rotation, low) A record queued while the node's clock ran
   ahead (review 69a, outbox 1: it waits, queued, until the clock is put right), then a
   rotation dated before it (the clock put right): the rotation verified each row of the key
   it retires under the history *after* it, where that key is retired at the rotation's time,
   so the row (dated after it) failed KEY_RETIRED and was not signed again; a row past
   MAX_ROTATION_RESIGNED_RECORDS, listed in the ticket, failed the same way at the outbox.
   Each was set aside KEY_RETIRED: the agent's own records, lost to the log. A row the
   rotation reads in its transaction, or one its ticket lists (the envelope hashed then), was
   in node.db while its key was current: what it is dated says nothing of when it was
   signed, and a thief holding the key could plant any such row before the rotation as well
   (what `--compromised` is for). The rotation now verifies such a row under the history it
   retires the key of, and the outbox a listed row without its key's retirement time (its
   attestation's window, its primary key's validity and its signature as before).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import DAY
from tests.test_review71g_outbox2 import Rotated
from tests.test_trace_service import NOW


@pytest.mark.parametrize("queued", [1, 3], ids=["in-the-rotation", "listed-too"])
def test_records_made_while_the_clock_ran_ahead_survive_a_rotation_after_it_is_put_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, queued: int
) -> None:
    """73e tickets4 1: `queued` records of K0 made while the node's clock ran a day ahead,
    then a rotation (bound 1) at NOW - 50, the clock put right: the first is signed again in
    the rotation, the rest listed in its ticket. Before: each was set aside KEY_RETIRED (K0
    retired at NOW - 50, the records dated a day later). Now: all go under K1, none set
    aside."""
    rotated = Rotated(tmp_path, monkeypatch, queued=queued, made=NOW + DAY)
    try:
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == []
    finally:
        rotated.close()
