"""Review 75c, refuted: attacks on the batcher's one check of a record (`check_content`) and on
its values encoded once (at `add`, signed as such by `next_batch`) that did not work."""

from __future__ import annotations

import json
from typing import Any

from tests.support.traces import NOW, Held
from troth.identity import Identifier
from troth.trace import Kind, Links, RecordContent, ToolCall
from troth.trace.batcher import TraceBatcher
from troth.trace.signing import VerifiedRecord, verify_envelope


def _signed(held: Held, content: RecordContent, after: Any = None) -> VerifiedRecord:
    """`content` added to a batcher of `held`'s, `after(content)` run, its batch's record
    verified as a collector verifies it (its disclosures opening their commitments)."""
    batcher = TraceBatcher(held.signer)
    batcher.set_head(None)
    batcher.add(content, now=NOW)
    if after is not None:
        after(content)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    (sent,) = batch.submission.records
    signer = held.signer()
    return verify_envelope(
        sent.envelope,
        signer=signer.identity,
        attestation=signer.attestation,
        disclosures=sent.disclosures,
    )


def test_a_parent_agent_that_is_the_checks_own_stand_in_is_queued_and_signed() -> None:
    """Tried: `check_content` builds the record at the chain's farthest place as a stand-in
    agent; a content naming that very identifier as its parent's agent would be refused there
    as a parent of the record's own agent ("names no parent agent"), which signing (as the
    real agent) takes: the stand-in is another identifier then, the record is signed."""
    links = Links(parent="0" * 31 + "1", parent_agent=Identifier(bytes(32)))
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), links=links)
    verified = _signed(Held(), content)
    assert verified.record.links.parent_agent == Identifier(bytes(32))


def test_a_value_added_to_the_callers_mapping_after_add_is_not_signed() -> None:
    """Tried: the values signed are the ones encoded at `add` (kept as their canonical JSON,
    not the caller's mapping): a value the caller adds to its mapping, or one it changes,
    after `add` is not in the signed record, whose disclosures open their commitments."""
    values: dict[str, Any] = {"args": {"order": "o1"}}

    def change(content: RecordContent) -> None:
        values["result"] = "refunded"
        values["args"]["order"] = "o2"

    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values=values)
    verified = _signed(Held(), content, change)
    assert set(verified.record.digests) == {"args"}
    assert json.loads(verified.disclosures["args"].value) == {"order": "o1"}
