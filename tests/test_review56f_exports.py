"""Review 56f, exports: an offline verifier's view of `troth trace export`.

1. `troth trace export --json` without --out built every proof bundle of the log in a list and
   then the whole JSON document as one string before printing it: memory grew with the log
   (a few KiB a record, twice). The document is now written one bundle at a time to a
   spooled temporary file (in memory up to `TRACE_EXPORT_SPOOL_BYTES`, on disk past it) and
   printed from there once every bundle is made, so a failure part-way still prints only the
   error object. The text is the same as before.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json
from tests.support.traces import record_on_node
from troth.cli import output_stream
from troth.cli.output import json_text
from troth.cli.output_stream import json_chunks
from troth.errors import TraceError, TraceFailure
from troth.node import trace_reads  # the CLI's library call (review 60g)
from troth.trace.export import export_bundles

RECORDS = 12


class _Bundle(dict[str, Any]):
    """A proof bundle that can be watched (a weak reference) while the export runs."""


def test_exports1_json_without_out_holds_one_bundle_at_a_time(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, RECORDS)
    made: list[weakref.ref[_Bundle]] = []
    held: list[int] = []
    real = export_bundles

    def watched(*args: Any, **kwargs: Any) -> tuple[Any, Iterator[dict[str, Any]]]:
        checkpoint, bundles = real(*args, **kwargs)

        def each() -> Iterator[dict[str, Any]]:
            for bundle in bundles:
                held.append(sum(ref() is not None for ref in made))  # before this one is made
                made.append(weakref.ref(watching := _Bundle(bundle)))
                yield watching

        return checkpoint, each()

    monkeypatch.setattr(trace_reads, "export_bundles", watched)
    document = run_json("trace", "export")
    assert len(document["proofs"]) == len(held) == RECORDS
    assert max(held) <= 1, held  # the previous bundle at most, never the ones before it


def test_exports1_the_document_is_the_one_printed_before(troth_home: Path) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 3)
    lines = run("trace", "export").stdout.splitlines()
    document = json.loads(run("trace", "export", "--json").stdout)
    assert list(document) == ["out", "proofs", "checkpoint"]
    assert document["out"] is None
    assert [p["record"] for p in document["proofs"]] == [json.loads(x)["record"] for x in lines]


@pytest.mark.parametrize("count", [0, 1, 3])
def test_exports1_the_chunks_are_the_text_of_the_whole_result(count: int) -> None:
    item = {"text": "é\u202e\udcff\n", "in": {"a": [], "b": [1, {}]}}
    items = [{"n": n, **item} for n in range(count)]
    data = {"out": None, "proofs": ["ignored"], "checkpoint": {"note": "x\ny", "size": 2}}
    whole = json_text({**data, "proofs": items})
    assert "".join(json_chunks(data, "proofs", iter(items))) == whole


def test_exports1_a_failure_part_way_prints_only_the_error_object(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 3)
    real = export_bundles

    def failing(*args: Any, **kwargs: Any) -> tuple[Any, Iterator[dict[str, Any]]]:
        checkpoint, bundles = real(*args, **kwargs)

        def each() -> Iterator[dict[str, Any]]:
            yield next(bundles)
            raise TraceError(TraceFailure.MALFORMED, "the disk went away")

        return checkpoint, each()

    monkeypatch.setattr(trace_reads, "export_bundles", failing)
    error = json.loads(run("trace", "export", "--json", code=1).stdout)  # one document
    assert "the disk went away" in error["message"]


def test_exports1_a_document_past_the_spool_comes_from_disk_whole(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 3)
    whole = run("trace", "export", "--json").stdout
    monkeypatch.setattr(output_stream, "TRACE_EXPORT_SPOOL_BYTES", 64)
    monkeypatch.setattr(output_stream, "_COPY_CHUNK", 100)  # many reads of the spool
    spilled = run("trace", "export", "--json").stdout
    assert len(whole) > 1000
    assert json.loads(spilled)["proofs"] == json.loads(whole)["proofs"]
