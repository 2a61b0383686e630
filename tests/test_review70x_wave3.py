"""Review 70x (area: wave3): a review of 70s (a record signed again verified before ALREADY),
70t (a held authority answers no repeated enrollment) and 70v (a member's link revocation
reason bound).

1. (70s: a retired key's resigning acknowledged, low) A record the log holds, signed again
   (70o's `signed_again`: other time, seq or key) by a key the signer retired, and sent under
   the signer's older history (the thief of that key holds both), was verified against that
   older history only, where the key is current and may sign at any time: answered ALREADY,
   though the node's copy of the signer is past that key (`behind`: a rotation, a compromised
   one too, or a supersession its authority published) and an append of that very record is
   refused ATTESTATION_STALE. A record signed again is now refused as an append is while its
   signer is behind (ATTESTATION_STALE: the honest client signs it again with its newest key
   and is answered ALREADY); a resend byte for byte stays ALREADY (review 48a, resend 1).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.support.traces import Held
from tests.test_identity_observe import observer
from tests.test_review47i_collector import _batch, _long_collector
from tests.test_review47l_windows import EARLY
from tests.test_review70s_collector import resent
from troth.clock import FixedClock
from troth.errors import TraceFailure
from troth.trace.signing import open_envelope, resign_record
from troth.trace.submit import Status


def test_a_logged_record_signed_again_by_a_retired_key_under_its_older_history_is_refused(
    tmp_path: Path,
) -> None:
    """70x wave3 1: the agent's record is in the log; the agent rotates and the node's store
    learns it; the thief of the retired key signs the log's record again (dated after the
    rotation) and sends it under the older history: refused ATTESTATION_STALE as an append of
    it is, not acknowledged ALREADY. The agent's own resend byte for byte is still ALREADY,
    and its signing again with its newest key too."""
    agent = Held()
    clock = FixedClock(EARLY)
    collector = _long_collector(tmp_path / "trace.db", lambda _c, _h: True, clock)
    store = observer(tmp_path / "node.db")
    collector._observe = store.observe
    stolen = agent.signer(EARLY)
    submission = _batch(collector, stolen, EARLY)
    (first,) = collector.submit(submission, submitter=None, now=EARLY).results
    assert first.status is Status.APPENDED, first
    agent.rotate(EARLY + 10)
    store.observe(agent.identity)  # the node learns the rotation (the agent's channel)
    at = EARLY + 20
    item = submission.records[0]
    record = open_envelope(item.envelope)[0]
    again = resign_record(
        stolen, record, item.disclosures, seq=record.seq, prev=record.prev, time=at
    )
    thiefs = resent(submission, again.record, open_envelope(again.envelope)[2])
    (answer,) = collector.submit(thiefs, submitter=None, now=at).results
    assert (answer.status, answer.reason) == (Status.REFUSED, TraceFailure.ATTESTATION_STALE)
    (same,) = collector.submit(submission, submitter=None, now=at).results
    assert (same.status, same.index) == (Status.ALREADY, first.index)
    newest = agent.signer(at)
    assert newest.attestation != stolen.attestation
    honest = resign_record(
        newest, record, item.disclosures, seq=record.seq, prev=record.prev, time=at
    )
    signed = resent(
        submission,
        honest.record,
        open_envelope(honest.envelope)[2],
        attestations=(newest.attestation,),
    )
    signed = dataclasses.replace(signed, history=newest.identity.history)
    (ok,) = collector.submit(signed, submitter=None, now=at).results
    assert (ok.status, ok.index) == (Status.ALREADY, first.index), ok
    assert collector.log.size() == 1
    collector.log.close()
