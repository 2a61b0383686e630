"""Review 28b, collection 1: a record appended while its chain's issuer histories are not
stored stays so for good: the resend that recovers is answered `already` and stores none.

Review 27t (collection 3) moved the storing of a chain's new issuer histories from the chain's
verification to after the append (`TraceCollector._keep_issuers`, once the log answered
`appended`). The trace log is its own database (`trace.db`), the identity store the node's: the
two are not one transaction. When the node dies between the log's commit and that store (or the
store fails: the node's database locked by another process past its timeout), the client has
no answer and sends the batch again, byte for byte (docs/traces.md, "Batching"): the log holds
the record, the collector answers `already` with its index before it even looks at the chain,
and `_keep_issuers` skips records that are not `appended`. The record stands in the log under
a chain whose issuers the node never stored, against the rule that it stores them (so later
copies of them are judged against these: a rollback to a rotated-away key refused), and
nothing ever mends it but another record under that chain.

Was a strict xfail until the collector also stored the issuer histories of the chains that
records answered `already` name (the chain verified again, as for an append:
`TraceCollector._already_under`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.parties import make_channel_party
from tests.test_review23a_histories import Desk
from tests.test_review27t_histories import Hub, desk  # noqa: F401  (the fixture)
from tests.test_trust_scope import NOW
from troth.identity import VerifiedIdentity
from troth.trace import Authority, Kind, RecordContent, ToolCall
from troth.trace.batcher import TraceBatcher
from troth.trace.collect import TraceCollector
from troth.trace.submit import Status


class Died(Exception):
    """The node's process ends here (a crash, a kill)."""


def test_a_resend_after_a_crash_stores_the_chains_issuers(
    desk: Desk,  # noqa: F811
    tmp_path: Path,
) -> None:
    hub = Hub(desk, tmp_path / "trace.db")
    mallory = make_channel_party(desk.vault, now=NOW)
    _claim, chain = desk.flood_chain(mallory)
    content = RecordContent(
        Kind.TOOL_INVOCATION, tool=ToolCall("lookup"), authority=Authority.from_chain(chain)
    )
    batcher = TraceBatcher(lambda now: mallory.party.signer)
    batcher.set_head(None)  # the service holds none of hers
    batcher.add(content, chain=chain, now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    observe = desk.node.identities.observe

    def dies_at_the_issuers(identity: VerifiedIdentity) -> None:
        if identity.identifier != mallory.party.identifier:  # the batch's signer: stored
            raise Died("after the log's commit, before the issuers are stored")
        observe(identity)

    crashing = TraceCollector(
        hub.log,
        verifier=lambda: desk.trust.verifier,
        feeds=lambda: desk.trust.feeds,
        observe=dies_at_the_issuers,
        vouched=desk.trust.vouchers.of,
    )
    with pytest.raises(Died):
        crashing.submit(batch.submission, submitter=mallory.party.identifier, now=NOW)
    assert hub.log.size() == 1  # the record is in the log
    # the node restarted: the client, never answered, sends the batch again byte for byte
    receipts = hub.collector.submit(batch.submission, submitter=mallory.party.identifier, now=NOW)
    (result,) = receipts.results
    assert (result.status, result.index) == (Status.ALREADY, 0)
    verifier = desk.trust.verifier
    assert verifier is not None
    credential = verifier.verify(
        chain, presenter=mallory.party.identifier, feeds=desk.trust.feeds, now=NOW
    )
    stored = desk.node.identities.stored_changes
    assert [stored(issuer.identifier) for issuer in credential.issuers] == [1] * len(
        credential.issuers
    )
