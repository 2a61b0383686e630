"""Review 54b, decoders 3: a count or a size one past its named limit (src/troth/limits/) is
refused as `DecodeProblem.OVER_LIMIT` (src/troth/errors.py: "`problem` says which"), as the CBOR
decoder and an identity's history say it, not as `MALFORMED`: found growing counts and sizes to
each limit and one past it (tests/support/limit_mutations.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.decoder_vectors import SECRETS, vectors
from troth import limits
from troth.authority.tickets import TICKET_PREFIX, Ticket
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem
from troth.routing import RoutedMessage
from troth.secrets import wire
from troth.secrets.lease import LeaseId
from troth.trace.submit import Submission

SUBMIT = cbor.decode(bytes.fromhex(vectors("trace/submit_vectors.json")["submit_v2"]))
LEASE_ID = LeaseId.parse(SECRETS["lease"]["text"]).text()
FORWARD = {"lease_id": LEASE_ID, "method": "GET", "target": "/", "headers": [], "body": b""}
RESPONSE = {"status": 200, "reason": "OK", "headers": [], "body": b""}


def _submission(at: int, value: Any) -> Callable[[], object]:
    fields = list(SUBMIT)
    fields[at] = value
    return lambda: Submission.from_cbor(fields)


def _record(envelope: bytes) -> Callable[[], object]:
    return _submission(5, [[envelope, {}]])


OVER: dict[str, Callable[[], object]] = {
    "submission records": _submission(5, SUBMIT[5][:1] * (limits.MAX_TRACE_SUBMIT_RECORDS + 1)),
    "submission keys": _submission(3, SUBMIT[3][:1] * (limits.MAX_TRACE_SUBMIT_KEYS + 1)),
    "submission chains": _submission(4, [b"c"] * (limits.MAX_TRACE_SUBMIT_CHAINS + 1)),
    "submission windows": _submission(6, SUBMIT[6][:1] * (limits.MAX_TRACE_SUBMIT_WINDOWS + 1)),
    "submission history": _submission(2, bytes(limits.MAX_IDENTITY_HISTORY_BYTES + 1)),
    "submission window": _submission(6, [bytes(limits.MAX_IDENTITY_HISTORY_BYTES + 1)]),
    "submission chain": _submission(4, [bytes(limits.MAX_CHAIN_BYTES + 1)]),
    "submission envelope": _record(bytes(limits.MAX_TRACE_ENVELOPE_BYTES + 1)),
    "lease scopes": lambda: wire.IssueArgs.from_wire(
        {"secret": "s", "scope": ["a"] * (limits.MAX_LEASE_SCOPES + 1), "ttl": None}
    ),
    "forward headers": lambda: wire.ForwardArgs.from_wire(
        {**FORWARD, "headers": [["a", "b"]] * (limits.MAX_INJECT_HEADERS + 1)}
    ),
    "forward body": lambda: wire.ForwardArgs.from_wire(
        {**FORWARD, "body": bytes(limits.MAX_INJECT_REQUEST_BYTES + 1)}
    ),
    "response body": lambda: wire.decode_response(
        {**RESPONSE, "body": bytes(limits.MAX_INJECT_RESPONSE_BYTES + 1)}
    ),
    "leases": lambda: wire.decode_leases({"leases": [None] * (limits.MAX_LEASE_LIST + 1)}),
    "routed message": lambda: RoutedMessage.decode(bytes(limits.MAX_TRANSPORT_FRAME + 1)),
    "ticket": lambda: Ticket.parse(TICKET_PREFIX + "A" * (limits.MAX_TICKET_BYTES * 4 // 3 + 5)),
}


@pytest.mark.parametrize("case", sorted(OVER))
def test_one_past_a_limit_is_over_the_limit(case: str) -> None:
    with pytest.raises(DecodeError) as refused:
        OVER[case]()
    assert refused.value.problem is DecodeProblem.OVER_LIMIT
