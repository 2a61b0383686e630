"""Strangers and local callers shared one share of each node-wide pool (troth.node.shares;
known-left of review 21): peers showing no chain can hold the strangers' share of a full pool,
and a local caller (the node's control socket, code in the node's process) was then refused
too. A local caller counts against a pseudo-authority of its own (`LOCAL`)."""

from __future__ import annotations

from troth.node.access import LocalCaller
from troth.node.services.admission import Admission, Lane, RequestLimits
from troth.node.shares import LOCAL, STRANGERS, authorities_of


def test_strangers_filling_a_pool_leave_local_callers_their_share() -> None:
    """A node trusting one authority runs at most 6 requests and strangers hold all 6: a
    local request still runs (its own share past the bound)."""
    admission = Admission(RequestLimits(per_peer=100, per_connection=100, total=6))
    stranger = frozenset({STRANGERS})
    taken = 0
    while admission.refusal(Lane(frozenset({taken}), taken, stranger)) is None:
        admission.take(Lane(frozenset({taken}), taken, stranger))
        taken += 1
    assert taken == 6  # the bound (past it: the strangers hold more than their share)
    local = authorities_of(LocalCaller())
    assert local == frozenset({LOCAL})
    assert admission.refusal(Lane(frozenset({"local"}), "control", local)) is None
