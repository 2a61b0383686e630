"""Attacks on the limits that failed (review 48g, limits): the code was right.

A trace service cuts each refusal's detail at MAX_TRACE_REFUSAL_DETAIL characters, not bytes:
256 refused records with 1,024 four-byte characters each would make receipts of over 1 MiB,
an answer over the service message limit (`failed`, and the client never learns which records
were refused). A detail that quotes a submitted text cannot get there: the text it quotes rides
in the record's envelope in base64 (4/3 of its bytes), so the receipts stay smaller than the
submission, which is at most a service message. Tried with the longest quotable text: a record
payload with an unknown member whose name is 1,024 four-byte characters ("record: unknown
member ..."), as many as a submission holds.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tests.support.fixed_vault import FixedKeyVault
from tests.support.traces import bare_collector
from tests.vectors.trace.generate import RECORDED, counter, signer
from troth import limits
from troth.clock import FixedClock
from troth.crypto import KeyType
from troth.encoding import cbor
from troth.errors import TraceFailure
from troth.identity import Signer, attest_purpose_key, new_identity
from troth.node.services.protocol import RESPONSE, VERSION
from troth.trace.dsse import encode_envelope, pae
from troth.trace.log import TraceLog
from troth.trace.record import PAYLOAD_TYPE, Kind, ToolCall, canonical_json
from troth.trace.signing import RecordContent, keyid_of, sign_record
from troth.trace.submit import Status, Submission, SubmittedRecord
from troth.vault import KeyPurpose

NAME = "\U0001f600" * limits.MAX_TRACE_REFUSAL_DETAIL  # 4 bytes each in UTF-8, printable


def _agent() -> Signer:
    vault = FixedKeyVault([(KeyType.ED25519, bytes([0xC0 + n]) * 32) for n in range(3)])
    held = new_identity(vault, KeyType.ED25519, now=RECORDED, valid_for=3650 * 86_400)
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        vault,
        held.primary,
        held.identity,
        KeyPurpose.SIGNING,
        vault.public_key(handle),
        now=RECORDED,
        expires_at=RECORDED + 86_400,
    )
    return Signer(held.identity, vault, handle, attestation, RECORDED + 86_400)


def _unknown_member_record(agent: Signer, seq: int) -> bytes:
    """A record signed by `agent` whose payload carries a member no decoder knows, named by
    the longest text a refusal quotes."""
    made = sign_record(
        agent,
        RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("refund", f"call_{seq}")),
        seq=0,  # refused before its place in the agent's chain is looked at
        prev=None,
        time=RECORDED,
        random=counter(seq),
    )
    payload = json.loads(made.record.encode())
    payload[NAME] = 1
    data = canonical_json(payload)
    signature = agent.sign(pae(PAYLOAD_TYPE, data))
    return encode_envelope(PAYLOAD_TYPE, data, keyid_of(agent.attestation), signature)


def test_receipts_quoting_submitted_text_stay_within_a_service_message() -> None:
    agent = _agent()
    one = _unknown_member_record(agent, 0)
    room = limits.MAX_SERVICE_MESSAGE - 4096 - len(agent.identity.history)
    count = min(limits.MAX_TRACE_SUBMIT_RECORDS, room // (len(one) + 16))
    records = tuple(SubmittedRecord(_unknown_member_record(agent, seq)) for seq in range(count))
    submission = Submission(agent.identity.history, (agent.attestation,), (), records)
    assert len(cbor.encode(submission.to_cbor())) <= limits.MAX_SERVICE_MESSAGE
    log_signer = signer("log")
    with tempfile.TemporaryDirectory() as directory:
        log = TraceLog.open(
            Path(directory) / "trace.db",
            clock=FixedClock(RECORDED),
            signer=lambda now: log_signer,
        )
        collector = bare_collector(log, None)
        receipts = collector.submit(submission, submitter=None, now=RECORDED)
        log.close()
    assert {r.status for r in receipts.results} == {Status.REFUSED}
    assert {r.reason for r in receipts.results} == {TraceFailure.MALFORMED}
    longest = max(len(r.detail.encode()) for r in receipts.results)
    assert longest > 3 * limits.MAX_TRACE_REFUSAL_DETAIL  # the quoted name, near its longest
    answer = cbor.encode([RESPONSE, VERSION, (1 << 64) - 1, True, receipts.to_cbor()])
    assert len(answer) <= limits.MAX_SERVICE_MESSAGE
