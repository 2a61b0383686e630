"""Review 63u2, cli: review of 63x cli 1 (`_descriptor` resolving the directory as given).

cli 1 (high as root: the machine's /dev/stdout or /dev/stderr replaced by a file): 63x
resolved the directory of `L/../stderr` (L a link to a directory inside /dev) from the name as
given, split at its last `/`. A name ending in `/` or `/.` (`--out L/../stderr/`,
`L/../stderr/.`) split into the descriptor's own name as its "directory", whose real path is
the descriptor's target (a tty, a pipe), and an empty or `.` last part: no descriptor was found.
The write then went through `Path(name)`, which drops the trailing `/` and `/.`: the atomic
write replaced `L/../stderr`, that is /dev/stderr (the guard below stops it first). Such a name
now has its trailing `/` and `/.` dropped before it is split, as `Path` drops them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.test_review63x_cli import _never_replaced, _up_from_dev
from troth.cli import common


@pytest.mark.parametrize("tail", ["/", "/.", "//./"])
def test_cli1_an_out_up_from_a_link_into_dev_with_a_trailing_slash_is_its_descriptor(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch, tail: str
) -> None:
    out = _up_from_dev(tmp_path, "stderr") + tail
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    run_json("identity", "export", "agent", "--out", out)
    assert common._descriptor(out) == 2
