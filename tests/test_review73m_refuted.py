"""Review 73m, blind: probes checked for blindness (a test that passes whatever the product
does) that were not blind; the ones that were are fixed in place (73m blind 1: test_review32b_view;
2: test_review61d_refuted; 3: test_review61l_crash).

Each was proven by making the product wrong in-process (src untouched) and seeing the test fail:
- review 57p: every observation opening a write transaction (`KnownHistories.observe` always
  `_store_or_extend`): the counted `transaction` of the store sees it;
- review 49c forks 1: a fork kept already written again: `no_write` raises;
- review 49c local 1: the local-identity query made on every check: `no_query` raises;
- review 70g perf 1: the outbox look-up failing its prepare again: `SqliteDatabase._failed` sees it;
- review 66v transport 1: the refusal never remembered: 50 scans counted, not 0;
- review 54h bundles 6 (`compile_policies`), 55b and 63f (`verify_signature`), 59d
  (`Authority.enroll`), 63e/63q (`private_file_writer`, `read_kept`): each patched name is the
  one the code under test reads when it runs (a genuine path calls it), so the guard is live.
Found by wrapping every function a test patched onto a troth module or class and listing those
never called in a passing test (about 240 files), and a scan of each patched troth module name
for importers that copy it (`from x import y` at module level): none of those was on a path
a test patched.
"""

from __future__ import annotations

import re
from pathlib import Path

from troth.faults import CRASH_POINTS

SRC = Path(__file__).resolve().parents[1] / "src" / "troth"


def test_every_crash_point_is_named_by_product_code() -> None:
    """A crash point in CRASH_POINTS that no module passes any more is one a crash test arms in
    vain (its child runs to its end; a sweep that takes exit 0 as "not reached" passes): each
    name is spelt, quoted, in a module other than troth.faults (a `crash_point` call, or a name
    handed on to one: troth.secrets.keys)."""
    spelt: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path.name != "faults.py" or path.parent != SRC:
            spelt.update(re.findall(r'"([a-z0-9.-]+)"', path.read_text()))
    assert [name for name in CRASH_POINTS if name not in spelt] == []
