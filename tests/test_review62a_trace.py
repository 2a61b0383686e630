"""Review 62a (the trace log core): findings, each shown first as a strict xfail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.traces import NOW, Held, tool_call
from troth.errors import DecodeError, DecodeProblem, TraceError, TraceFailure
from troth.trace.dsse import encode_envelope, pae
from troth.trace.record import PAYLOAD_TYPE, canonical_json
from troth.trace.record_decode import decode_payload
from troth.trace.signing import sign_record, verify_envelope

Edit = Callable[[dict[str, Any]], None]

_NULLED: dict[str, Edit] = {
    "tool.call": lambda p: p["tool"].__setitem__("call", None),
    "tool.server": lambda p: p["tool"].__setitem__("server", None),
    "decision.bundle": lambda p: p["decision"].__setitem__("bundle", None),
    "links.trace": lambda p: p["links"].__setitem__("trace", None),
    "links (only nulls)": lambda p: p.__setitem__("links", {"conversation": None}),
    "span.status": lambda p: p.__setitem__("span", {"start_us": 1, "end_us": 2, "status": None}),
}


@pytest.mark.parametrize("member", sorted(_NULLED))
def test_trace1_a_payload_with_an_optional_member_null_is_refused(member: str) -> None:
    """review 62a, trace 1: docs/formats.md ("Trace records") says optional members are
    omitted when absent and a record has one encoding per version ("one record has exactly
    one leaf"); `decode_payload` compared the payload with the canonical JSON of the parsed
    object, not with the record it decodes to, so an explicit `null` for an optional member
    (`tool.call`, `tool.server` in a version 2 record, `decision.bundle`, a link, a span's
    status; `links` holding only nulls, past the "links: empty" check) decoded to the same
    record as the payload without it: a second signed byte string, and a second leaf, for
    one record."""
    agent = Held()
    signer = agent.signer(NOW)
    signed = sign_record(signer, tool_call(), seq=0, prev=None, time=NOW)
    value = json.loads(signed.record.encode())
    _NULLED[member](value)
    payload = canonical_json(value)
    with pytest.raises(DecodeError) as refused:
        decode_payload(payload)
    assert refused.value.problem is DecodeProblem.NON_CANONICAL
    envelope = encode_envelope(
        PAYLOAD_TYPE, payload, signed.epoch.keyid, signer.sign(pae(PAYLOAD_TYPE, payload))
    )
    with pytest.raises(TraceError) as rejected:  # as the agent signed it: still refused
        verify_envelope(envelope, signer=signer.identity, attestation=signer.attestation)
    assert rejected.value.reason is TraceFailure.MALFORMED
