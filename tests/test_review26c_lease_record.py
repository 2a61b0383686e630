"""Review 26c, gate 3: a call allowed whose `LeaseProvider` ends it without a lease leaves a
denial after its allowed record (`DecisionPoint.refuse`, leftovers 2): `LeaseDenied`, and any
`Exception`. A provider interrupted by a BaseException that is not an Exception, such as
asyncio's or anyio's cancellation (`asyncio.CancelledError`: a provider that waits on a loop,
e.g. with `anyio.from_thread.run`, whose waiting task is cancelled), a KeyboardInterrupt or a
SystemExit, propagated with only the "allowed" record: the trace showed a `tool_invocation`
of a call that never ran, and nothing after it. The gate now records the denial for any
BaseException (a strict xfail until then).

The test reuses the refusing provider of test_leftovers_lease_record.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager

import pytest

from tests.test_leftovers_lease_record import Refusing, _gate
from troth.gates import DecisionRecord, Outcome


class Interrupted(Refusing):
    """A LeaseProvider interrupted while it leases: it raises `interruption`."""

    interruption: BaseException = KeyboardInterrupt()

    def lease(self, record: DecisionRecord) -> AbstractContextManager[object | None]:
        raise self.interruption


@pytest.mark.parametrize("error", [asyncio.CancelledError(), KeyboardInterrupt()])
def test_a_lease_provider_interrupted_is_recorded_as_the_calls_denial(
    error: BaseException,
) -> None:
    """The interruption propagates, the tool never ran, and the allowed record is followed by
    the call's denial naming it (outcome lease-denied)."""
    provider = Interrupted()
    provider.interruption = error
    gate, recorder, ran, world = _gate(provider)
    caller = world.credential(world.support_chain, world.support)
    with pytest.raises(type(error)):
        gate.invoke(caller, "refund", {"order_id": "o1", "amount": 20})
    assert ran == []
    assert [r.decision.allowed for r in recorder.records] == [True, False]
    refused = recorder.records[-1].decision
    assert refused.outcome is Outcome.LEASE_DENIED
    assert refused.reason == f"denied: the lease provider failed ({type(error).__name__})"
