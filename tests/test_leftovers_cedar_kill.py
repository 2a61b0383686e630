"""The Cedar validating child (troth.gates.validate_child) ended by SIGKILL was refused as over
its CPU time (MAX_CEDAR_VALIDATION_CPU_SECONDS) whatever killed it: the kernel's out-of-memory
killer (a machine with less memory than the child's address space limit) and anything else
that kills it send the same signal, so a bundle refused for memory was said to take too much
CPU time, and its author was told to fix validation errors it may not have.

The parent now reads the child's CPU time (its resource usage, `os.wait4`): a SIGKILL at its
CPU limit is the CPU limit (RLIMIT_CPU's hard limit), one well under it is named as the
out-of-memory killer's or an outside kill's; each is refused OVER_LIMIT (fail closed). The
tests stand in a shell script for the interpreter the child runs in (the parent starts
`sys.executable`): one that kills itself at once (as the OOM killer would: little CPU used)
was a strict xfail until then; one that ignores SIGXCPU and spins until the kernel kills it
at its hard CPU limit (~2 s of CPU: soft 1 s, hard a second later, as
the real child sets them) is named the CPU limit before and after.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from troth import limits
from troth.errors import PolicyError, PolicyFailure
from troth.gates import compile_policies

BIG = "// " + "x" * 64_000 + '\n@id("ok") permit(principal, action == Action::"lease", resource);\n'
"""A valid text over MAX_CEDAR_INPROCESS_WORK (one environment, 64 KB): validated in a child."""


def _child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> PolicyError:
    """The refusal of BIG when the child is `script` (a shell script given the child's
    arguments) instead of the interpreter."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    with pytest.raises(PolicyError) as refused:
        compile_policies(BIG, "", {})
    return refused.value


def test_a_child_killed_with_little_cpu_time_is_not_refused_as_over_the_cpu_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusal = _child(tmp_path, monkeypatch, "kill -KILL $$\n")
    assert refusal.reason is PolicyFailure.OVER_LIMIT
    assert "takes more than" not in str(refusal)
    assert "out-of-memory killer" in str(refusal)
    assert "SIGKILL" in str(refusal)


def test_a_child_killed_at_its_hard_cpu_limit_is_refused_as_over_the_cpu_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGXCPU ignored, CPU limit 1 s set as the child sets it (validate_child._limit: soft 1 s,
    hard one second later: the kernel sends SIGKILL at the hard limit). The kernel counts CPU
    time for RLIMIT_CPU by ticks and `wait4` reports it by runtime, which on a loaded machine
    read 0.87 s at a kill at a 1 s hard limit (CI, 2026-12-05): with the hard limit where the
    child puts it, the kill reads well above CPU_LIMIT_REACHED of the soft one."""
    monkeypatch.setattr(limits, "MAX_CEDAR_VALIDATION_CPU_SECONDS", 1)
    spin = "trap '' XCPU\nulimit -S -t 1\nulimit -H -t 2\nwhile :; do :; done\n"
    refusal = _child(tmp_path, monkeypatch, spin)
    assert refusal.reason is PolicyFailure.OVER_LIMIT
    assert "takes more than 1 s of CPU time (MAX_CEDAR_VALIDATION_CPU_SECONDS)" in str(refusal)
