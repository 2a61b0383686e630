"""Review 65q: attacks on review 65i's trace fork judgement and review 65b's CBOR item limit
that did not work (each would fail if the defence it names broke).

- A false inconsistency on an honest log from the prefix root: for every kept size N and
  every larger tree, the line of record N-1's inclusion proof gives exactly the root of the
  first N leaves (`prefix_root`), so an honest line never reads INCONSISTENT, whatever key
  signed its checkpoint (65i now refuses a mismatch without the kept note's key).
- An honest log kept at 1 record (the smallest note a line can prove: a one-leaf prefix, the
  leaf itself) and at 0, its key renewed since, grown by records of several agents: its
  export and the bundle of record 0 read `unanchored` (never INCONSISTENT); under the kept
  note's key the export is `valid`.
- A kept note of the export's own size, re-signed by the renewed key over the same root, is
  the kept one (`valid`), and a fork of that size under the renewed key is FORKED.
- A fork's export without the line of the kept size's last record (known, docs/traces.md:
  nothing then proves the larger tree grew from the kept one) is never taken as `valid`: it
  reads `unanchored`, with that line INCONSISTENT, and its bundle of a later record alone
  `unanchored`.
- The item limit refuses nothing a decoder reads: the largest control answer the CLI takes
  (`MAX_CONTROL_ANSWER_ITEMS`, counted as the decoder counts, the document one) is encoded;
  `encode_counted` (service messages) takes a value at its own `max_items` as before.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth import limits
from troth.clock import FixedClock
from troth.encoding import cbor
from troth.errors import TraceError, TraceFailure
from troth.trace.checkpoint import AnchorStatus
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.merkle import MemoryTree, leaf_hash, prefix_root


def test_the_prefix_root_of_an_honest_line_is_the_kept_root() -> None:
    leaves = [leaf_hash(bytes([n])) for n in range(40)]
    tree = MemoryTree(leaves)
    for size in range(1, 41):
        root = tree.root(size)
        for kept in range(1, size + 1):
            proof = tree.inclusion_proof(kept - 1, size)
            found = prefix_root(kept - 1, size, leaves[kept - 1], proof, root)
            assert found == tree.root(kept), (kept, size)


def _copy(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")


def _export(log: object) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)  # type: ignore[arg-type]
    return out.getvalue().encode().splitlines()


@pytest.mark.parametrize("kept_size", [0, 1])
def test_an_honest_log_kept_small_and_renewed_is_never_inconsistent(
    tmp_path: Path, kept_size: int
) -> None:
    clock = FixedClock(NOW)
    owner, agents = Held(), [Held(), Held()]
    log = open_log(tmp_path / "log.db", clock, owner)
    for agent in agents[:kept_size]:
        recorder(log, agent, clock).record(tool_call())
    kept = log.checkpoint().note
    for agent in agents:
        recorder(log, agent, clock).record(tool_call("more"))
    same_key = _export(log)
    log.close()
    assert verify_export(same_key, anchor=kept).status is (
        AnchorStatus.VALID if kept_size else AnchorStatus.UNANCHORED
    )
    owner.rotate(NOW + 100)
    later = FixedClock(NOW + 200)
    log = open_log(tmp_path / "log.db", later, owner)
    for agent in agents:
        recorder(log, agent, later).record(tool_call("renewed"))
    renewed = _export(log)
    log.close()
    assert verify_export(renewed, anchor=kept).status is AnchorStatus.UNANCHORED
    assert verify_bundle(renewed[0], anchor=kept).status is AnchorStatus.UNANCHORED


def test_a_kept_note_of_the_exports_size_under_a_renewed_key(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    log = open_log(tmp_path / "log.db", clock, owner)
    recorder(log, agent, clock).record(tool_call())
    log.close()
    _copy(tmp_path / "log.db", tmp_path / "fork.db")
    log = open_log(tmp_path / "log.db", clock, owner)
    recorder(log, agent, clock).record(tool_call("real"))
    kept = log.checkpoint().note
    log.close()
    owner.rotate(NOW + 100)
    later = FixedClock(NOW + 200)
    log = open_log(tmp_path / "log.db", later, owner)
    log.checkpoint()  # the same size and root, signed by the new key
    honest = _export(log)
    log.close()
    assert verify_export(honest, anchor=kept).status is AnchorStatus.VALID
    fork = open_log(tmp_path / "fork.db", later, owner)
    recorder(fork, agent, later).record(tool_call("forked"))
    forked = _export(fork)
    fork.close()
    with pytest.raises(TraceError) as caught:
        verify_export(forked, anchor=kept)
    assert caught.value.reason is TraceFailure.FORKED


def test_the_largest_control_answer_is_encoded() -> None:
    most = limits.MAX_CONTROL_ANSWER_ITEMS
    answer = {"ok": True, "entries": [0] * (most - 5)}  # 1 + 4 + (most - 5) items
    data = cbor.encode(answer)
    decoded = cbor.decode(data, max_bytes=limits.MAX_CONTROL_ANSWER, max_items=most)
    assert len(decoded["entries"]) == most - 5
    data, within = cbor.encode_counted([0] * (limits.MAX_CBOR_ITEMS - 1))
    assert within


def test_a_fork_without_the_kept_sizes_last_line_is_never_valid(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    log = open_log(tmp_path / "log.db", clock, owner)
    recorder(log, agent, clock).record(tool_call())
    log.close()
    _copy(tmp_path / "log.db", tmp_path / "fork.db")
    log = open_log(tmp_path / "log.db", clock, owner)
    recorder(log, agent, clock).record(tool_call("real"))
    kept = log.checkpoint().note
    log.close()
    fork = open_log(tmp_path / "fork.db", clock, owner)
    for name in ("forked", "more", "most"):
        recorder(fork, agent, clock).record(tool_call(name))
    lines = _export(fork)
    fork.close()
    with pytest.raises(TraceError) as caught:
        verify_export(lines, anchor=kept)
    assert caught.value.reason is TraceFailure.INCONSISTENT
    without = [line for at, line in enumerate(lines) if at != 1]
    assert verify_export(without, anchor=kept).status is AnchorStatus.UNANCHORED
    assert verify_bundle(lines[3], anchor=kept).status is AnchorStatus.UNANCHORED
