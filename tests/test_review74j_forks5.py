"""Review 74j (area: forks5): 74e's PKCS#11 fork hooks (troth.vault.pkcs11_fork) as chains of C
calls.

- 74j forks5 1: the hooks registered during a fork (troth.vault.pkcs11 first imported by
  another library's before-fork hook, or by another thread while the forking one ran such a
  hook) ran their after-hooks in that fork without their before-hook (CPython runs the
  before-hooks listed when the fork began, the after-hooks listed when it returned):
  `release_held` found no hold and raised IndexError, reported ("Exception ignored in ...
  pop from empty list") on the standard error of the parent and of the child. The release now
  releases nothing where the thread lists no hold."""

from __future__ import annotations

import sys

import pytest

from tests.support.processes import survives

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork on Linux")

_LATE = r"""
import faulthandler, importlib, os, sys
faulthandler.dump_traceback_later(15, exit=True)  # a hang fails the test, bounded
raised = []  # what troth's hooks raised (CPython reports a hook's exception and goes on)
sys.unraisablehook = lambda report: raised.append(report)
os.register_at_fork(before=lambda: importlib.import_module("troth.vault.pkcs11"))


def troths():
    from troth.vault.pkcs11_fork import _HELD
    hooks = sys.modules["troth.vault.pkcs11"]._FORK_HOOKS
    errors = [type(r.exc_value).__name__ for r in raised if r.object in hooks]
    return f"{errors} {_HELD.__dict__.get('holds', [])}"


pid = os.fork()
if pid == 0:
    print("child", troths(), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("parent", troths())
"""


def test_hooks_registered_during_a_fork_raise_nothing_after_it() -> None:
    """74j forks5 1: troth.vault.pkcs11 imported by a before-fork hook (its hooks registered
    during the fork): its after-hooks, run without its before-hook, raise nothing in the
    parent or the child, and no hold is listed."""
    assert survives(_LATE, timeout=20).splitlines() == ["child [] []", "parent [] []"]
