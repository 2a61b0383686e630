"""Review 47b, limits end to end: pairs checked and found consistent (what one side may send,
the other accepts), pinned here."""

from __future__ import annotations

from pathlib import Path

from tests.support.gates import T
from tests.support.parties import make_party
from tests.test_review27t_collect import NOW, _collector
from troth import limits
from troth.channel.payloads import MAX_AUTH_PAYLOAD, AuthPayload, fitting_chains
from troth.encoding import cbor
from troth.errors import TraceFailure
from troth.trace.dsse import encode_envelope
from troth.trace.record import PAYLOAD_TYPE
from troth.trace.signing import keyid_of
from troth.trace.submit import Submission, SubmittedRecord
from troth.vault import SoftwareVault


def test_a_handshake_carries_a_presented_chain_beside_the_largest_history() -> None:
    """A chain `delegate` makes (at most MAX_PRESENTED_CHAIN_BYTES) fits a handshake's auth
    payload beside a history and an attestation at their limits; of eight such chains, those
    that do not fit beside it are left out (`fitting_chains`), never sent over the frame."""
    history = b"h" * limits.MAX_IDENTITY_HISTORY_BYTES
    attestation = b"a" * limits.MAX_ATTESTATION_BYTES
    chain = b"c" * limits.MAX_PRESENTED_CHAIN_BYTES
    one = AuthPayload(history, attestation, (chain,)).encode()
    assert len(one) <= MAX_AUTH_PAYLOAD
    kept = fitting_chains(history, attestation, (chain,) * limits.MAX_CHANNEL_CREDENTIALS)
    assert kept == (chain,)
    assert len(AuthPayload(history, attestation, kept).encode()) <= MAX_AUTH_PAYLOAD


def test_refusals_quoting_a_record_are_no_larger_than_the_record(tmp_path: Path) -> None:
    """The receipts of a submission may hold 256 refusals of MAX_TRACE_REFUSAL_DETAIL
    characters, over MAX_SERVICE_MESSAGE in 4-byte characters; but a detail quotes at most
    what the refused record itself carries (here a payload type of 4-byte characters, quoted
    by the decoder), so the answer stays smaller than the submission that caused it."""
    _world, _log, collector = _collector(tmp_path)
    signer = make_party(SoftwareVault(), now=T).signer
    payload = ('{"type":"' + "\U0001f600" * 2000 + '"}').encode()
    envelope = encode_envelope(PAYLOAD_TYPE, payload, keyid_of(signer.attestation), bytes(64))
    count = limits.MAX_SERVICE_MESSAGE // (len(envelope) + 64)
    submission = Submission(
        signer.identity.history,
        (signer.attestation,),
        (),
        (SubmittedRecord(envelope),) * count,
    )
    sent = len(cbor.encode(submission.to_cbor()))
    assert sent <= limits.MAX_SERVICE_MESSAGE
    receipts = collector.submit(submission, submitter=None, now=NOW)
    assert all(r.reason is not None for r in receipts.results)
    assert {r.reason for r in receipts.results} != {TraceFailure.SIGNER_INVALID}
    assert len(cbor.encode(receipts.to_cbor())) < sent
