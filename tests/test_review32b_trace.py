"""Review 32b, a trace record's disclosed values (`troth.trace.record.disclosed`).

1. A value a record cannot disclose as is (over the disclosure limit, not I-JSON) is disclosed
   as its hash and size, `{"sha256": hex, "bytes": n}` (or `{"not_json": type}`), and a value
   that is itself a JSON object of that shape was disclosed as is: the two were the same
   disclosure. A caller of a gate (or anything whose arguments a gate's recorder discloses)
   could pass, as a call's arguments, the hash and size of arguments it never sent: the
   record, signed and valid, then stood for a call with those other arguments, which anyone
   holding them can "open" against the hash, though no policy ever judged them.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_review23c_trace import _gate, _recorded
from troth.crypto import sha256
from troth.gates import Outcome
from troth.trace import verify_log
from troth.trace.record import disclosed, disclosure_value


def test_arguments_shaped_like_a_hash_are_not_the_hash_of_other_arguments(
    tmp_path: Path,
) -> None:
    """Trace 1: a call whose arguments are the hash and size of other arguments is recorded
    with a disclosure that is not theirs, but the hash and size of the arguments sent (was a
    strict xfail until `disclosed` disclosed a value shaped like its stand-ins by its hash
    and size)."""
    never_sent = {"order_id": "o1\ufdd0"}  # no export carries it: disclosed by hash and size
    marker = disclosed(never_sent)
    encoded = disclosure_value(never_sent)
    assert marker == {"sha256": sha256(encoded).hex(), "bytes": len(encoded)}
    gate, log, caller = _gate(tmp_path)
    result = gate.invoke(caller, "lookup_order", dict(marker))
    assert result.decision.outcome is Outcome.ARGUMENTS
    _, args = _recorded(log)
    assert verify_log(log).size == 1
    assert args != disclosure_value(marker), "the record discloses the hash of unsent arguments"
    sent = disclosure_value(marker)
    assert args == disclosure_value({"sha256": sha256(sent).hex(), "bytes": len(sent)})


def test_a_value_shaped_like_not_json_is_not_taken_for_one() -> None:
    """Trace 1: `{"not_json": "bytes"}` given as a value is not the disclosure of a value that
    was no JSON (was a strict xfail until `disclosed` hashed a value of that shape)."""
    assert disclosed({"not_json": "bytes"}) != disclosed(b"raw")
