"""Review 56 (lead), cedar 1: the fresh-clone CI of this session, on a loaded machine, saw a
validating child the kernel stopped at its RLIMIT_CPU soft limit (SIGXCPU) report 0.86 s of CPU
time for a limit of 1 s (`os.wait4`'s user + system time): the kernel checks the limit against
its tick-sampled CPU time, which under contention can run ahead of the precise time `wait4`
reports. Below `CPU_LIMIT_REACHED` (0.9) the refusal named the out-of-memory killer or a kill
from outside (PolicyNotChecked, tried again), not the CPU limit the bundle is over.

Was a strict xfail until SIGXCPU took its own threshold (`CPU_LIMIT_SIGNALLED`).

These tests give `compile_policies` a child that ended so (the validator faked at
`_run_child`): a SIGXCPU after half its limit or more is the limit's; one after next to no CPU
time is still from outside (review 55k, gates 1), and SIGKILL keeps its threshold (the
out-of-memory killer sends it too)."""

from __future__ import annotations

import signal

import pytest

from tests.test_review55f_validation import BIG as _POLICY
from troth import limits
from troth.errors import PolicyError, PolicyFailure, PolicyNotChecked
from troth.gates import compile_policies, policies
from troth.gates.validation_process import _Ended


def _ended_by(monkeypatch: pytest.MonkeyPatch, code: int, cpu: float) -> None:
    monkeypatch.setattr(limits, "MAX_CEDAR_VALIDATION_CPU_SECONDS", 1)
    monkeypatch.setattr(policies, "_run_child", lambda *_: _Ended(code, b"", b"", cpu))


def test_cedar1_sigxcpu_at_the_kernels_limit_read_short_by_wait4_is_the_cpu_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _ended_by(monkeypatch, -signal.SIGXCPU, 0.86)
    with pytest.raises(PolicyError) as refused:
        compile_policies(_POLICY, "", {})
    assert not isinstance(refused.value, PolicyNotChecked)
    assert refused.value.reason is PolicyFailure.OVER_LIMIT
    assert "MAX_CEDAR_VALIDATION_CPU_SECONDS" in str(refused.value)


@pytest.mark.parametrize(
    ("code", "cpu"), [(-signal.SIGXCPU, 0.05), (-signal.SIGKILL, 0.86)], ids=["xcpu", "kill"]
)
def test_cedar1_a_signal_well_before_the_limit_is_still_no_verdict(
    monkeypatch: pytest.MonkeyPatch, code: int, cpu: float
) -> None:
    _ended_by(monkeypatch, code, cpu)
    with pytest.raises(PolicyNotChecked) as refused:
        compile_policies(_POLICY, "", {})
    assert signal.Signals(-code).name in str(refused.value)
