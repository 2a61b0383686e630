"""Mutation fuzzing of the decoders of the trace service's messages and a verifier's kept
files: submissions (versions 1 and 2, with history windows) a log reads from every agent, and
submits to its collector, the receipts an agent reads from the log, a kept checkpoint (the
anchor a verifier holds), the version 2 proof bundle (history windows), a proof bundle checked
against a kept anchor, and the disclosures a log stores, at the limits too
(tests/support/limit_mutations.py: as many records, keys, chains and windows as a submission
carries, and one more). Records, envelopes, notes and
version 1 bundles: tests/test_decoders_mutated_trace.py.

The mutations and the rule every property checks: tests/support/decoder_vectors.py. The
submissions and receipts are canonical CBOR (docs/formats.md, "Encoding"): what decodes encodes
again to the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.decoder_vectors import TRACE, vectors
from tests.support.limit_mutations import QUICK, hostile, values
from tests.support.mutations import mutated, typed
from tests.support.traces import Held, bare_collector
from troth import limits
from troth.clock import FixedClock
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem
from troth.trace import TraceLog, export
from troth.trace.checkpoint import parse_kept
from troth.trace.collect import TraceCollector
from troth.trace.stored import decode_disclosures
from troth.trace.submit import Receipts, Submission

SUBMIT = vectors("trace/submit_vectors.json")
PROOFS = vectors("trace/proof_vectors.json")


@pytest.mark.parametrize("version", ["submit_v1", "submit_v2"])
@QUICK
@given(data=st.data())
def test_submission(version: str, data: st.DataObject) -> None:
    original = bytes.fromhex(SUBMIT[version])
    assert cbor.encode(Submission.from_cbor(cbor.decode(original)).to_cbor()) == original
    mutant = data.draw(hostile(original))
    typed(
        lambda b: Submission.from_cbor(cbor.decode(b)),
        mutant,
        valid_if=lambda s: cbor.encode(s.to_cbor()) == mutant,
    )


@QUICK
@given(data=st.data())
def test_receipts(data: st.DataObject) -> None:
    original = bytes.fromhex(SUBMIT["receipts"])
    expected = len(cbor.decode(original)[2])
    mutant = data.draw(hostile(original))
    typed(
        lambda b: Receipts.from_cbor(cbor.decode(b), expected=expected),
        mutant,
        valid_if=lambda r: cbor.encode(r.to_cbor()) == mutant,
    )


def test_a_submission_of_the_most_records_and_of_one_more() -> None:
    """MAX_TRACE_SUBMIT_RECORDS records decode; one more is refused, as over a limit."""
    value = cbor.decode(bytes.fromhex(SUBMIT["submit_v1"]))
    value[5] = [value[5][0]] * limits.MAX_TRACE_SUBMIT_RECORDS
    assert len(Submission.from_cbor(value).records) == limits.MAX_TRACE_SUBMIT_RECORDS
    value[5].append(value[5][0])
    with pytest.raises(DecodeError) as refused:
        Submission.from_cbor(value)
    assert refused.value.problem is DecodeProblem.OVER_LIMIT


@QUICK
@given(data=st.data())
def test_kept_checkpoint(data: st.DataObject) -> None:
    """The checkpoint note a verifier kept, mutated: parsed, or TraceError (it says so of the
    kept one); a proof bundle checked against it answers, or TraceError."""
    anchor = data.draw(mutated(TRACE["checkpoint"].encode()))
    typed(parse_kept, anchor)
    bundle = PROOFS["bundles"][0].encode()
    typed(lambda b: export.verify_bundle(bundle, anchor=b), anchor)


@QUICK
@given(data=st.data())
def test_proof_bundle_v2(data: st.DataObject) -> None:
    """The version 2 proof bundle (the signer's history in windows), mutated."""
    original = PROOFS["bundle_v2"].encode()
    assert export.verify_bundle(original).index == 0
    typed(export.verify_bundle, data.draw(mutated(original, is_json=True)))


DISCLOSURES = json.dumps(
    {
        name: [disclosure["salt"], json.dumps(disclosure["value"], separators=(",", ":"))]
        for name, disclosure in TRACE["records"][0]["disclosures"].items()
    }
).encode()


@QUICK
@given(data=st.data())
def test_stored_disclosures(data: st.DataObject) -> None:
    """The disclosures a log keeps beside a record (its own column), mutated: TraceError."""
    assert decode_disclosures(DISCLOSURES)
    typed(decode_disclosures, data.draw(mutated(DISCLOSURES, is_json=True)))


# -- a log's collector: submissions mutated, as a member's node sends them --------------------


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TraceCollector]:
    """A collector into a log of its own (a fresh log identity), trusting no authority: the
    records of the vectors' agent are taken as a stranger's."""
    owner = Held(now=TRACE["created_at"])
    path = tmp_path_factory.mktemp("log") / "trace.db"
    log = TraceLog.open(path, clock=FixedClock(AT), signer=lambda now: owner.signer(now))
    try:
        yield bare_collector(log, None)
    finally:
        log.close()


AT = json.loads(TRACE["records"][1]["payload"])["time"] + 10  # the log's time: after the records


@settings(QUICK, suppress_health_check=list(HealthCheck))  # the module's log
@given(data=st.data())
def test_submission_to_a_log(collector: TraceCollector, data: st.DataObject) -> None:
    """A submission (versions 1 and 2) mutated, at the limits too, and submitted as a local
    caller's: receipts (each record appended or refused with its reason), or DecodeError
    before (the service answers it as a failure); never another exception."""
    original = bytes.fromhex(SUBMIT[data.draw(st.sampled_from(["submit_v1", "submit_v2"]))])
    mutant = data.draw(values(original))

    def submit(b: bytes) -> object:
        receipts = collector.submit(Submission.from_cbor(cbor.decode(b)), submitter=None, now=AT)
        assert len(receipts.results) == len(cbor.decode(b)[5])
        return receipts

    typed(submit, mutant)
