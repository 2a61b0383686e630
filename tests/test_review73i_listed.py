"""Review 73i (area: listed): a review of review 73e's rule (tickets4 1) that a row a rotation's
ticket lists is verified whatever its date (the attacks that did not work:
tests/test_review73i_refuted.py).

1. (the public verifier could be told to skip a key's retirement, low) 73e added `retired` to
   `verify_envelope`, the verifier troth.trace exports (what a trace service's collector,
   `troth.trace.replayed` and an integrator's auditor call on a record they are sent):
   `retired=False` accepts a record signed by a key a rotation retired, dated after the
   rotation (a thief's, with a copy of the key). Only the outbox needs that, for a row the
   ticket lists (in node.db while its key was current). The public verifier takes no such
   flag now: the outbox calls `troth.trace.signing.verify_listed_envelope`, which troth.trace
   does not export.
"""

from __future__ import annotations

from typing import Any

import pytest

import troth.trace
from tests.support.traces import Held
from tests.test_review73i_refuted import signed_at
from tests.test_trace_service import NOW, F
from troth.errors import TraceError


def test_the_public_verifier_cannot_be_told_to_skip_a_keys_retirement() -> None:
    """73i listed 1: a thief's record signed by K0 (a copy of the key), dated NOW - 10, K0
    retired by a rotation at NOW - 50: `troth.trace.verify_envelope` refuses it KEY_RETIRED,
    and takes no flag to accept it. Before: `retired=False` verified it."""
    agent = Held(now=NOW - 1000)
    stolen = agent.signer(NOW - 1000)
    agent.rotate(NOW - 50)
    forged = signed_at(stolen, NOW - 10)
    identity, attestation = agent.identity, stolen.attestation
    with pytest.raises(TraceError) as refused:
        troth.trace.verify_envelope(forged.envelope, signer=identity, attestation=attestation)
    assert refused.value.reason is F.KEY_RETIRED
    verify: Any = troth.trace.verify_envelope  # as a caller forwarding options would
    with pytest.raises(TypeError):
        verify(forged.envelope, signer=identity, attestation=attestation, retired=False)
