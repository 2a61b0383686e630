"""Review 26c, gates: a bundle whose policies could not be checked (PolicyNotChecked: the
validating child did not start, missed its wall-clock wait, or was killed by SIGKILL before its
CPU limit; review 25, gates 3) is left inactive and tried again at the store's next reload,
which is every reload: nothing remembers when it was last tried. A node reloads its bundles
at each maintenance pass (every 30 s, the broker's) and at `policy pull`, and
`BundleStore.reload` says a gate sharing the node's table calls it before each decision. A
bundle whose validation is killed each time (its child needs more memory than the machine, or
the node's cgroup, has free: the out-of-memory killer ends it by SIGKILL with little CPU time
used, every time) is validated again at each of them, up to MAX_CEDAR_VALIDATION_CPU_SECONDS of
CPU and MAX_CEDAR_VALIDATION_BYTES of memory (and one more out-of-memory kill on the machine)
each, for as long as it is stored; a gate reloading before each decision starts a child, and
waits for it, in every decision.

The test counts the children a store starts (subprocess.Popen, the seam of
test_review25_gates) over ten reloads in the same second, each child failing to start.
"""

from __future__ import annotations

import errno
import subprocess
from typing import Any

import pytest

from tests.support.gates import POLICIES, T, make_world
from troth import limits
from troth.gates import BundleStore


def test_a_bundle_not_checked_is_not_validated_again_at_every_reload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten reloads in one second start at most one validating child for the same stored
    bundle (each is refused, PolicyNotChecked: EAGAIN)."""
    world = make_world()
    data = world.bundle(policies="// " + "x" * 40_000 + "\n" + POLICIES)  # validated in a child
    stored = world.store(data)
    other = BundleStore(world.verifier, stored.table)
    started: list[object] = []

    def no_process(*args: Any, **kwargs: Any) -> Any:
        started.append(args)
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    for _ in range(10):
        assert other.reload(now=T + 6) == []
    assert other.active(world.authority.identifier) is None  # fail closed meanwhile
    assert len(started) <= 1


def test_the_backoff_doubles_while_the_bundle_cannot_be_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried at once, then after CEDAR_RETRY_FIRST_SECONDS, then twice that: each try one child
    (each refused, EAGAIN); never sooner."""
    world = make_world()
    data = world.bundle(policies="// " + "x" * 40_000 + "\n" + POLICIES)
    other = BundleStore(world.verifier, world.store(data).table)
    started: list[int] = []
    at = [T]

    def no_process(*args: Any, **kwargs: Any) -> Any:
        started.append(at[0])
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    first = limits.CEDAR_RETRY_FIRST_SECONDS
    for second in range(T, T + 3 * first + 1):
        at[0] = second
        other.reload(now=second)
    assert started == [T, T + first, T + 3 * first]
