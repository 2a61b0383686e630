"""Review 48i, first bad record: attacks on the order `troth trace verify` names faults in
that failed (the code was right). A log is checked record by record: a broken chain and a key
retired before its record (by the newest history the log holds) are named at their record
before a later bad signature is read. A link to a later record that is itself bad is not taken
for the first bad record (the bad record is).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.traces import open_log
from tests.test_review48i_firstbad import (
    _badly_signed,
    _broken_chain,
    _export,
    _forward_link,
    _raises,
    _retired_key,
    _sign_badly_in_log,
)
from troth.errors import TraceFailure
from troth.trace import verify_log


def test_a_log_names_a_broken_chain_before_a_bad_signature(tmp_path: Path) -> None:
    """1, of the log: the chain is checked record by record, record 1 is named."""
    closed, clock, owner, broken = _broken_chain(tmp_path)
    _sign_badly_in_log(closed, 2)
    log = open_log(tmp_path / "trace.db", clock, owner)
    assert _raises(TraceFailure.CHAIN_BROKEN, 1, log, export=False).record == broken.record.id


def test_a_log_names_a_retired_key_before_a_bad_signature(tmp_path: Path) -> None:
    """2, of the log: each record's key is judged by the newest history the log holds as the
    record is read, record 1 is named."""
    closed, clock, owner, _before = _retired_key(tmp_path, 1)
    _sign_badly_in_log(closed, 2)
    log = open_log(tmp_path / "trace.db", clock, owner)
    _raises(TraceFailure.KEY_RETIRED, 1, log, export=False)


def test_a_forward_link_to_a_badly_signed_record_is_not_named(tmp_path: Path) -> None:
    """4, the other way: the resolution at record 0 is by the one asked, the escalation it
    names (record 1) is badly signed: record 1 is the first bad one, not the link to it (the
    record is read as it stands to judge the link). In an export likewise."""
    closed, clock, owner = _forward_link(tmp_path, "human")
    lines = _export(open_log(closed.store.path, clock, owner))
    assert verify_log(open_log(closed.store.path, clock, owner)).size == 3
    _sign_badly_in_log(closed, 1)
    _raises(TraceFailure.BAD_SIGNATURE, 1, open_log(closed.store.path, clock, owner), export=False)
    lines[1] = _badly_signed(lines[1])
    _raises(TraceFailure.BAD_SIGNATURE, 1, lines)
