"""Review 27d, gates 1: a stored bundle that could not be checked is not tried again for as
long as the clock was set back (docs/policy.md: "tries it again at a reload once a backoff is
over ... up to 15 min").

`BundleStore.reload` remembers, for a bundle whose validating child failed (PolicyNotChecked),
the wall-clock second from which it may be tried again (review 26c, gates 2), and skips it while
`now` is before that second. `now` is the node's wall clock (`reload(now=clock.now())`): set
back by an hour (NTP after a VM resume, an operator), the bundle is skipped for that hour plus
the backoff, not at most CEDAR_RETRY_MAX_SECONDS, and it stays inactive meanwhile (fail closed:
every call by its authority's members is denied; review 26c fixed the same for the MCP relist,
MCP_RELIST_SECONDS). Was a strict xfail until the backoff counted from the last try and a `now`
before it (a clock set back) tried the bundle at once."""

from __future__ import annotations

import errno
import subprocess
from typing import Any

import pytest

from tests.support.gates import POLICIES, T, make_world
from troth.gates import BundleStore


def test_a_clock_set_back_does_not_hold_an_unchecked_bundle_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first try fails (its child cannot start: EAGAIN); the clock goes back an hour and
    the machine can start children again: the next reload, past the first backoff from the
    new clock's view of it, loads the bundle."""
    world = make_world()
    data = world.bundle(policies="// " + "x" * 40_000 + "\n" + POLICIES)  # validated in a child
    other = BundleStore(world.verifier, world.store(data).table)
    real_popen = subprocess.Popen
    failing, tried = [True], []

    def popen(*args: Any, **kwargs: Any) -> Any:
        tried.append(failing[0])
        if failing[0]:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    later = T + 3600
    assert other.reload(now=later) == []  # not checked: tried again after the backoff
    assert other.active(world.authority.identifier) is None
    assert tried == [True]  # its child was what failed (the bundle is valid then)
    failing[0] = False
    loaded = other.reload(now=T + 6)  # the clock set back an hour
    assert [b.body.authority for b in loaded] == [world.authority.identifier]
    assert other.active(world.authority.identifier) is not None
    assert tried == [True, False]
