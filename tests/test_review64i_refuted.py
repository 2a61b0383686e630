"""Review 64i: attacks on the OTel export and on trace export/prove/verify that did not work.
Each test is a real attempt that fails if the defence it names breaks."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import ConfigError, TraceError, TraceFailure
from troth.trace import AnchorStatus, TraceLog
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.otel import export_otel, otlp_exporter

SECRET = "sk-live-0123456789abcdef"


def _log(path: Path, **values: Any) -> TraceLog:
    clock = FixedClock(NOW)
    log = open_log(path, clock)
    agent = recorder(log, Held(), clock)
    agent.record(tool_call(**values))
    agent.record(tool_call("lookup"))
    return log


def _lines(log: TraceLog) -> list[dict[str, Any]]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture
def two(tmp_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bytes]:
    """The lines of two logs' exports, and the second log's checkpoint note."""
    first, second = _log(tmp_path / "a.db"), _log(tmp_path / "b.db")
    lines = _lines(first), _lines(second), second.checkpoint().note
    first.close()
    second.close()
    return lines


def _refused(data: dict[str, Any] | bytes) -> TraceError:
    with pytest.raises(TraceError) as caught:
        verify_bundle(data if isinstance(data, bytes) else json.dumps(data).encode())
    return caught.value


def test_a_bundle_whose_checkpoint_another_log_s_key_signed_is_refused(two: Any) -> None:
    ours, theirs, _ = two
    note, other = ours[1]["checkpoint"], theirs[1]["checkpoint"]
    # the other log's signature line, relabelled with this log's name
    signature = other.strip().split("\n")[-1].replace(other.split("\n")[0], note.split("\n")[0])
    forged = "\n".join([*note.strip().split("\n")[:-1], signature]) + "\n"
    fault = _refused({**ours[1], "checkpoint": forged})
    assert (fault.reason, fault.index) == (TraceFailure.CHECKPOINT_INVALID, 1)


def test_a_bundle_of_another_log_is_not_valid_against_the_kept_checkpoint(two: Any) -> None:
    ours, _, kept = two
    report = verify_bundle(json.dumps(ours[1]).encode(), anchor=kept)
    assert report.status is AnchorStatus.UNANCHORED
    assert report.checkpoint.origin == ours[1]["checkpoint"].split("\n")[0]


@pytest.mark.parametrize("field", ["log", "checkpoint"])
def test_a_bundle_carrying_another_log_s_history_or_checkpoint_is_refused(
    two: Any, field: str
) -> None:
    ours, theirs, _ = two
    fault = _refused({**ours[1], field: theirs[1][field]})
    assert (fault.reason, fault.index) == (TraceFailure.SIGNER_INVALID, 1)


def test_a_bundle_nested_without_end_is_malformed() -> None:
    assert _refused(b"[" * 100_000 + b"]" * 100_000).reason is TraceFailure.MALFORMED


def test_a_bundle_naming_a_member_twice_is_malformed(two: Any) -> None:
    text = json.dumps(two[0][1]).replace('"index": 1', '"index": 0, "index": 1')
    assert _refused(text.encode()).reason is TraceFailure.MALFORMED


def test_an_export_of_lines_of_two_logs_is_refused_at_the_line_from_the_other(two: Any) -> None:
    ours, theirs, _ = two
    with pytest.raises(TraceError) as caught:
        verify_export([json.dumps(ours[0]).encode(), json.dumps(theirs[1]).encode()])
    assert (caught.value.reason, caught.value.index) == (TraceFailure.MALFORMED, 1)
    assert "different checkpoints" in str(caught.value)


def test_an_export_repeating_a_record_names_it(two: Any) -> None:
    ours, _, _ = two
    lines = [json.dumps(line).encode() for line in ours]
    with pytest.raises(TraceError) as caught:
        verify_export([*lines, lines[1]])
    assert (caught.value.reason, caught.value.index) == (TraceFailure.REPLAYED, 1)


def test_the_otel_spans_carry_no_tool_argument_or_result(tmp_path: Path) -> None:
    log = _log(tmp_path / "trace.db", args={"api_key": SECRET}, result=SECRET)
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == 2
    said = json.dumps([dict(span.attributes or {}) for span in exporter.get_finished_spans()])
    assert SECRET not in said
    assert "api_key" not in said
    log.close()


@pytest.mark.parametrize(
    "endpoint",
    [f"ftp://user:{SECRET}@collector:4318/v1/traces", f"collector:4318/v1?key={SECRET}"],
)
def test_an_endpoint_refused_never_says_its_credentials(endpoint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        otlp_exporter(endpoint)
    assert SECRET not in str(caught.value)
