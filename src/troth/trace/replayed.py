"""A record a trace service refused REPLAYED, judged by the log's copy of it (review 71g,
outbox2 2, closing review 70b outbox 6).

A batch the log appended whose answer was lost, then signed again by a rotation before its
resend (troth.trace.outbox_rotation), goes again with other bytes under the same ids. A
current trace service answers each `already` (the same record signed again: review 70o,
outbox2 3); one of before it answers REPLAYED (`another record of yours with this id is in
the log`), and the outbox set such a record aside, the `record()` waiting on it answered with
that refusal, though the log holds it. Taking REPLAYED for delivered is not sound (a thief
holding the agent's key could have put its own record under a queued id first), so the
client asks the service for the log's copy (`prove` [record id], one query per record refused
so, its answer bounded by the channel's message limit) and the outbox counts the record
delivered, at the copy's index, only when the copy is the record it sent (the same id, agent
and content, its commitments among them: `signed_again`) signed by a key of the agent's own
history (as the outbox's signer holds it, not the bundle's) that could sign it then
(`verify_envelope`). A copy of other content (a thief's record under the id), one that does
not verify, or no copy (a service that proves nothing, an error) leaves the refusal as it
was: set aside. The copy's inclusion proof is not checked, nor which log the bundle is of
(review 71o, wave2e: decided, not a hole): the service's word on its log is taken as its
receipts are, which carry an index and no proof (APPENDED, ALREADY), and the client holds no
checkpoint of the log to check a proof against; a service that would drop a record can answer
it APPENDED. What the copy must show is what a receipt cannot: that the bytes the log holds
under the id are the agent's record, not a thief's. The cost is bounded by the batch: one
`prove` per record refused so (at most MAX_TRACE_SUBMIT_RECORDS an answer, each answer within
MAX_SERVICE_MESSAGE), each record then delivered or set aside; only a busy answer has them
asked again, after the client's backoff, as a busy `submit` has the batch sent again.
"""

from __future__ import annotations

from typing import Any

from troth import limits
from troth.encoding.ijson import load_json
from troth.errors import DecodeError, TraceError
from troth.identity import VerifiedIdentity
from troth.trace.dsse import b64decode
from troth.trace.signing import open_envelope, signed_again, verify_envelope

__all__ = ["logged_index"]


def logged_index(answer: Any, sent: bytes, identity: VerifiedIdentity) -> int | None:
    """The index of the log's copy of the record the outbox sent as envelope `sent`, from
    `answer` (a `prove` answer: a proof bundle's JSON text), when that copy is the same record
    signed by a key of `identity`'s history (module docstring); None otherwise."""
    if not isinstance(answer, str) or len(answer) > limits.MAX_SERVICE_MESSAGE:
        return None
    try:
        value = load_json(answer.encode(), max_bytes=limits.MAX_SERVICE_MESSAGE, what="bundle")
        index, envelope, signer = value["index"], value["envelope"], value["signer"]
        if type(index) is not int or index < 0 or type(envelope) is not str:
            return None
        attestation = b64decode(signer["attestation"], "attestation")
        copy = envelope.encode("ascii")
        if not signed_again(copy, open_envelope(sent)[0]):
            return None  # another record under the id (a thief's), or none that decodes
        verify_envelope(copy, signer=identity, attestation=attestation)
    except (DecodeError, TraceError, KeyError, TypeError, ValueError):
        return None
    return index
