"""Review 26c, gates: the validating child and the kernel's out-of-memory killer (review 25,
gates 3; leftovers 3). A bundle's validation may take the child up to
MAX_CEDAR_VALIDATION_BYTES (1 GiB) of address space; on a machine (or a cgroup) with less
memory free, the out-of-memory killer ends a process by SIGKILL, choosing by its badness (its
memory, scaled by /proc/<pid>/oom_score_adj). The child left its adjustment at the node's (0
by default), so a node holding more memory than the child (a big trace, many channels) was
the one killed, not the child whose allocation caused it; the parent only handles the child's
kill (PolicyNotChecked). The child now raises its own adjustment to the most (1000, which
needs no privilege), so it goes first.

The test runs the child's `_limit` in a fresh interpreter (raising a process's adjustment
cannot be undone without privilege: not in the test's own process) and reads its
/proc/self/oom_score_adj. It was a strict xfail until `_limit` raised it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import survives

_PROGRAM = """\
import importlib.util, sys
spec = importlib.util.spec_from_file_location("validate_child", sys.argv[1])
validate_child = importlib.util.module_from_spec(spec)
spec.loader.exec_module(validate_child)
validate_child._limit(8, 1 << 30, 1 << 22)
print(open("/proc/self/oom_score_adj").read().strip())
"""


@pytest.mark.skipif(not Path("/proc/self/oom_score_adj").exists(), reason="Linux /proc only")
def test_the_validating_child_is_the_out_of_memory_killers_first_choice() -> None:
    """After its limits, the child's oom_score_adj is 1000."""
    from troth.gates import validate_child

    assert survives(_PROGRAM, validate_child.__file__, timeout=60).strip() == "1000"
