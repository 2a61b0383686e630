"""Review 70i (leftovers), refuted attempts (pinned): what was tried and did not work."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import T, make_world
from tests.support.traces import recorder
from tests.test_review69m_verify import _peak
from tests.test_review70i_leftovers import _ROW, huge_escalation
from troth.errors import TraceFailure
from troth.gates import BundleStore
from troth.gates.bundles import load_stored_bundle


def test_a_recorders_answer_to_a_huge_escalation_is_refused_by_the_reader(
    tmp_path: Path,
) -> None:
    """An escalation's stored envelope made 8 MiB, then answered with `TraceRecorder.resolve`
    (which reads the escalation's hash from the log first): refused OVER_LIMIT by the log's
    reader (review 69m's bounds), never fetched, before anything is appended; only an answer
    signed without that read reached the writer's unbounded read (leftovers 2)."""
    held = huge_escalation(tmp_path)
    with held.log() as log:
        answering = recorder(log, held.human, held.clock)
        refused, peak = _peak(
            lambda: answering.resolve(
                held.asked.record,
                of=held.agent.identifier,
                outcome="approved",
                considered="the order",
                reasoning="fine",
            )
        )
        assert log.size() == 1
    assert refused.reason is TraceFailure.OVER_LIMIT
    assert peak < _ROW // 2


def test_two_reloads_that_both_verify_activate_the_bundle_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two reloads at once, each verifying the stored bundle (held until both have): the
    activation itself was already under the store's lock, so one of them activates it and
    the other finds it active (returns nothing); the bundle is active, none dormant. Only a
    reload whose check could not be made raced (leftovers 3)."""
    world = make_world()
    other = BundleStore(world.verifier, world.store(world.bundle()).table)
    both = threading.Barrier(2, timeout=1.0)

    def load(data: bytes, **kwargs: Any) -> Any:
        verified = load_stored_bundle(data, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):  # the fix lets one in
            both.wait()  # at a time: the barrier breaks, no harm
        return verified

    monkeypatch.setattr("troth.gates.store.load_stored_bundle", load)
    loaded: list[int] = []
    threads = [
        threading.Thread(target=lambda: loaded.append(len(other.reload(now=T + 5))))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(loaded) == [0, 1]
    assert other.active(world.authority.identifier) is not None
    assert other.dormant.unloaded() == []
