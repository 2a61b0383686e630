"""Review 55k, gates: what review 55f's gates fixes left.

Validation 1. Review 55f (validation 1) made a validating child ended by a signal from outside
no verdict on the bundle (`PolicyNotChecked`, tried again after the backoff), except the
signals its own limits send (`OWN_SIGNALS`). Among them SIGXCPU, which the kernel sends at
RLIMIT_CPU's soft limit, was read as the CPU limit reached whatever CPU time the child had
used: `kill -XCPU PID` a moment after the child started refused the bundle ("validating the
policies takes more than 10 s of CPU time"), a verdict a store keeps until the node restarts,
so a good bundle never came into force. SIGKILL was already told apart by the child's CPU time
(`CPU_LIMIT_REACHED`); now SIGXCPU is too: sent before its limit, it came from outside.

Was a strict xfail until SIGXCPU, as SIGKILL, was the CPU limit only past CPU_LIMIT_REACHED."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from tests.test_review55f_validation import BIG, _killed_by
from troth.errors import PolicyNotChecked
from troth.gates import compile_policies


def test_a_child_sent_sigxcpu_from_outside_is_no_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child ends by SIGXCPU after next to no CPU time (`kill -XCPU` from outside):
    PolicyNotChecked naming the signal, not a refusal for taking more than the CPU limit."""
    _killed_by(tmp_path, monkeypatch, "XCPU")
    with pytest.raises(PolicyNotChecked) as refused:
        compile_policies(BIG, "", {})
    assert signal.Signals.SIGXCPU.name in str(refused.value)
    assert sys.executable.endswith("python")  # the fake interpreter ran, not the real child
