"""Review 56d, concurrency 1: two processes of one node writing at once (a CLI command and the
running node, or two commands). A revocation by the node's authority is committed in node.db,
then recorded in the node's trace log (trace.db) as the next record of the authority's
per-agent chain (`troth.node.traces.record_revocation`). Each process reads the chain's head,
signs the next record and appends it; another process's record appended in between has it
refused (CHAIN_BROKEN), and `TraceRecorder.record` tries again only `_ATTEMPTS` (3) times.
Seen with real processes: three processes revoking 12 times each, at once, failed about
one revocation in 40 (`troth: the credential is revoked (feed entry 21), but the revocation
could not be recorded in the trace: ... per-agent chain broken (seq 23 does not follow seq
23)`): the command failed (exit 4) for a revocation that stood, and the trace lacks its
record. Made certain here: another process appends a record of the same agent between each
of the recorder's first three head reads and its append, as a busy peer does by chance. Fixed
by review 56n: a record refused because its agent's chain moved is signed again in the log's
chain turn (`<log>.chains`) until it is in, for up to MAX_TRACE_CHAIN_RETRY_SECONDS; the same
with real processes revoking at once: tests/test_review56n_concurrency.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import troth
from troth.clock import SystemClock
from troth.node import open_node
from troth.trace.log import open_node_log
from troth.trace.recorder import TraceRecorder

_INTERLOPER = """\
import os, troth
with troth.Node.open("acme") as node:
    node.authority().revoke(os.urandom(32))
"""


def test_concurrency1_a_revocation_is_recorded_whatever_another_process_records(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with troth.Node.open("acme") as acme:
        authority = acme.create_authority()
        authority.revoke(b"\1" * 32)  # the chain's first record: the log exists
        signed = TraceRecorder._signed
        interloped: list[int | None] = []

        def signed_then_another_process_records(self: TraceRecorder, *args: Any) -> Any:
            record = signed(self, *args)
            if len(interloped) < 3:  # (as many as the recorder tries now)
                child = subprocess.Popen([sys.executable, "-c", _INTERLOPER])
                try:
                    interloped.append(child.wait(timeout=20))
                except subprocess.TimeoutExpired:  # it waits for this one's turn: a fix
                    interloped.append(None)
            return record

        monkeypatch.setattr(TraceRecorder, "_signed", signed_then_another_process_records)
        authority.revoke(b"\2" * 32)  # raised StorageError: revoked, but not recorded
        assert interloped == [0, 0, 0]  # each interloper recorded its own, without waiting
    with open_node("acme") as node, open_node_log(node, clock=SystemClock()) as log:
        head = log.head(authority.identifier)
        assert head is not None
        assert head[0] == 4  # the first, three interlopers', this one: none lost
