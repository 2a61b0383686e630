"""Review 45k, robustness of two pieces that landed in review 45.

1. files: `troth.node.home._remove_stale_temporaries` (review 45f, files 1) runs after a
   private file's rename and is meant to leave "anything else, and any failure" alone; but it
   took the pid of a name shaped like a temporary's with `str.isdigit` and `int`, then
   `os.kill`: a pid of Unicode digits (`²`: isdigit, not int) raised ValueError, one past a C
   long OverflowError, out of `write_private_file` after the new file was in place. One such
   name beside node.json (or any private file) failed every later write of it, though each
   had written the file.

2. arguments: `check_whole` (review 45a, API 1) shows an out-of-range number in its error;
   `str()` of an int of more than 4,300 digits raises ValueError (Python's conversion
   limit), so `Node.delegate(ttl=10**5000)` raised that, not the ArgumentError naming ttl.

Strict xfails until the fixes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from troth import limits
from troth._api.arguments import check_whole
from troth.errors import ArgumentError
from troth.node.home import STALE_TEMPORARY_AGE, write_private_file


@pytest.mark.parametrize(
    "pid", ["\u00b2", "9" * 30, "0" + "1" * 40], ids=["unicode-digit", "long", "longer"]
)
def test_a_stray_temporary_name_never_fails_a_write(tmp_path: Path, pid: str) -> None:
    target = tmp_path / "node.json"
    write_private_file(target, b"first")
    stray = tmp_path / f".node.json.{pid}.{'a' * 16}.tmp"
    stray.write_bytes(b"not a writer's")
    old = time.time() - 10 * STALE_TEMPORARY_AGE
    os.utime(stray, (old, old))
    write_private_file(target, b"second")
    assert target.read_bytes() == b"second"
    write_private_file(target, b"third")  # and every write after it
    assert target.read_bytes() == b"third"


@pytest.mark.parametrize("value", [10**5000, -(10**5000)], ids=["huge", "huge-negative"])
def test_a_huge_number_is_an_argument_error_naming_the_parameter(value: int) -> None:
    with pytest.raises(ArgumentError) as caught:
        check_whole("Node.delegate", "ttl", value, low=1, high=limits.MAX_TTL)
    assert caught.value.parameter == "ttl"
    assert len(str(caught.value)) < 200
