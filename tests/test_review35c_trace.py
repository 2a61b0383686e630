"""Review 35c, traces: attacks on review 34g's export checks (docs/traces.md)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from tests.support.traces import (
    NOW,
    Held,
    open_log,
    recorder,
    set_newest_history,
    tool_call,
)
from tests.test_review34g_trace import _insert
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import verify_log
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.signing import sign_record


def test_a_line_carrying_an_older_history_does_not_hide_its_keys_retirement(
    tmp_path: Path,
) -> None:
    """Each line of an export carries its signer's history, which no signature covers (the
    log signs the envelope's leaf, not the bundle around it). The agent rotated at NOW + 100;
    a thief of its rotated-out key signs seq 1 at NOW + 150, after the rotation, chained after
    seq 0 (a log re-signed with it: a stolen log key, a colluding operator). `verify_log`
    judges every record of an agent by the newest history it holds: the key had retired. In
    the export, seq 0's line carries that newest history, and seq 1's line the agent's
    history from before the rotation, where the key is current: each line verifies alone, and
    review 34g's checks between the lines (hash, time, key change) all pass. An agent's keys
    are judged by the newest of its histories the export carries, as `verify_log` judges by
    the log's.

    Review 35c, trace 1: was a strict xfail until `verify_export` checked each agent's keys
    against the newest history of the agent its lines carry (troth.trace.export_check).
    """
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    rec = recorder(log, agent, clock)
    old = agent.signer(NOW)
    before = old.identity.history
    rec.record(tool_call())  # seq 0, by the key the rotation retires
    agent.rotate(NOW + 100)
    after = agent.identity
    head = log.head(agent.identifier)
    assert head is not None
    log.close()
    stolen = sign_record(old, tool_call(args={"amount": 5000}), seq=1, prev=head[1], time=NOW + 150)
    _insert(log, 1, stolen)
    set_newest_history(log, agent, after)  # the rotated one
    clock.advance(200)
    forged = open_log(tmp_path / "trace.db", clock, owner)
    with pytest.raises(TraceError) as whole:
        verify_log(forged)
    assert whole.value.reason in (TraceFailure.KEY_RETIRED, TraceFailure.ATTESTATION_INVALID)

    out = io.StringIO()
    export_jsonl(forged, out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["index"] for line in lines] == [0, 1]
    newest = base64.b64encode(after.history).decode()
    lines[0]["signer"]["history"] = newest  # seq 0: signed before the rotation, fine under it
    lines[1]["signer"]["history"] = base64.b64encode(before).decode()  # the key current there
    encoded = [json.dumps(line).encode() for line in lines]
    for line in encoded:
        verify_bundle(line)  # each alone verifies
    with pytest.raises(TraceError) as caught:
        verify_export(encoded)
    assert caught.value.reason is TraceFailure.KEY_RETIRED
    assert f"record at {NOW + 150}" in caught.value.detail
    assert caught.value.index == 1
