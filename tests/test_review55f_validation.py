"""Review 55f, validation 1: a validating child killed from outside by any signal but SIGKILL
was a verdict on the bundle.

docs/policy.md ("Nesting and size") says a child that "was killed before its CPU limit is
refused too (`PolicyNotChecked`) ... but that says nothing about the bundle": a `BundleStore`
tries it again once a backoff is over. Only SIGKILL was read so: a child ended by SIGTERM (what
`kill PID` sends: an operator stopping a busy `validate_child`), SIGHUP or SIGINT was refused
`over a limit` ("the policy validator process failed (exit status -15)"), a refusal for what
the bundle is: a store marked it unloadable until the node restarted, and a node holding an
older revision kept that one in force, the newer bundle (a narrowing, say) never taken. Now a
child ended by a signal its own limits or faults do not send (SIGXCPU, SIGKILL at its CPU
limit, SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE) is `PolicyNotChecked`, naming the signal."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from tests.support.gates import POLICIES, T, make_world
from troth import limits
from troth.errors import PolicyNotChecked
from troth.gates import BundleStore, compile_policies

BIG = "// " + "x" * 40_000 + "\n" + POLICIES
"""The support-desk policies after a 40 KB comment: validated in a child (test_cedar_child)."""


def _killed_by(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The interpreter the parent starts for the child (`sys.executable`) is a script that
    kills itself with signal `name`, as a signal from outside ends the child. The script is
    Python, which first restores the signal's default action: a shell cannot, for a signal
    ignored when it started (POSIX), and a suite run under `nohup` starts with SIGHUP ignored
    (a `kill -HUP $$` in sh then did nothing and the child exited 0)."""
    fake = tmp_path / "python"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import os, signal, time\n"
        f"signal.signal(signal.SIG{name}, signal.SIG_DFL)\n"
        f"os.kill(os.getpid(), signal.SIG{name})\n"
        "time.sleep(5)\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))


@pytest.mark.parametrize("name", ["TERM", "HUP"])
def test_a_child_killed_from_outside_is_no_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Compiling the big text whose child SIGTERM or SIGHUP ends: PolicyNotChecked, naming the
    signal."""
    _killed_by(tmp_path, monkeypatch, name)
    with pytest.raises(PolicyNotChecked) as refused:
        compile_policies(BIG, "", {})
    assert signal.Signals[f"SIG{name}"].name in str(refused.value)


def test_a_bundle_whose_child_was_killed_loads_once_its_backoff_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big bundle stored by one process; another's first reload has its child killed by
    SIGTERM: not in force, tried again once the backoff is over, then in force (before: never,
    until a restart)."""
    world = make_world()
    stored = world.store(world.bundle(policies=BIG))
    other = BundleStore(world.verifier, stored.table)
    executable = sys.executable
    _killed_by(tmp_path, monkeypatch, "TERM")
    assert other.reload(now=T + 6) == []
    assert other.active(world.authority.identifier) is None
    monkeypatch.setattr(sys, "executable", executable)
    assert len(other.reload(now=T + 6 + limits.CEDAR_RETRY_FIRST_SECONDS)) == 1
    assert other.active(world.authority.identifier) is not None
