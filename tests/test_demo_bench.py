"""`troth demo` tells its story (each chapter's text pinned by a snapshot, with identifiers,
times, durations, ports and hex normalised: tests/snapshots/demo/chapterN.txt); `troth bench
--json` reports figures beside their floors.

A chapter's text changed on purpose: `TROTH_UPDATE_SNAPSHOTS=1 pytest tests/test_demo_bench.py`
rewrites the snapshots; review the diff and commit it. A new chapter needs its snapshot too."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.demo import normalise
from tests.support.postgres import require_postgres
from troth.cli.main import cli
from troth.demo import CHAPTERS
from troth.demo.story import Story

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots" / "demo"
UPDATE = os.environ.get("TROTH_UPDATE_SNAPSHOTS") == "1"
BENCH_EXTRA = ("biscuit_auth", "noise")
needs_bench_extra = pytest.mark.skipif(
    any(importlib.util.find_spec(module) is None for module in BENCH_EXTRA),
    reason="the bench extra is missing (biscuit-python, noiseprotocol): pip install -e '.[bench]'",
)


def _told(*chapters: int) -> str:
    args = [arg for number in chapters for arg in ("--chapter", str(number))]
    result = CliRunner().invoke(cli, ["demo", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_demo_chapter_matches_its_snapshot(chapter: int) -> None:
    if chapter == 5:  # its database scenes run only with PostgreSQL
        require_postgres()
    told = normalise(_told(chapter))
    snapshot = SNAPSHOTS / f"chapter{chapter}.txt"
    if UPDATE:
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(told)
    assert snapshot.is_file(), f"no snapshot for chapter {chapter}: TROTH_UPDATE_SNAPSHOTS=1"
    assert "must never happen" not in told
    assert told == snapshot.read_text(), f"chapter {chapter} changed: see {snapshot}"


def test_every_snapshot_is_of_a_chapter() -> None:
    assert sorted(p.name for p in SNAPSHOTS.glob("*.txt")) == sorted(
        f"chapter{n}.txt" for n in CHAPTERS
    )


def test_the_story_names_every_party_and_sums_up_every_chapter() -> None:
    lines: list[str] = []
    story = Story(lines.append)
    story.chapter(1, "One")
    customer = "T" + "ab" * 32
    stranger = "T" + "cd" * 32
    assert story.meet("customer", customer) == "customer (Tabab…abab)"
    story.say(f"{customer} meets {stranger}")
    story.proved("the first thing")
    story.chapter(2, "Two, which records nothing")
    story.chapter(3, "Three")
    story.proved("the third thing")
    story.summary()
    assert "customer (Tabab…abab) meets Tcdcd…cdcd" in lines
    assert lines[lines.index("== What the story proved") :] == [
        "== What the story proved",
        "Chapter 1. One",
        "  - the first thing",
        "Chapter 2. Two, which records nothing",
        "Chapter 3. Three",
        "  - the third thing",
    ]


def test_proved_before_any_chapter_is_refused() -> None:
    with pytest.raises(ValueError, match=r"before Story\.chapter\(\)"):
        Story(print).proved("nothing yet")


def test_the_demo_ends_with_every_chapter_told_and_no_benchmark() -> None:
    told = _told(1, 2)
    summary = told[told.index("== What the story proved") :]
    assert "Chapter 1. Identity" in summary
    assert "Chapter 2. Credentials" in summary
    assert "Chapter 3." not in summary
    assert told.rstrip().endswith("troth bench")
    assert re.search(r"\d[\d,.]* ?[a-z]*/s\b", told) is None  # no rates inside the story


def test_demo_unknown_chapter() -> None:
    result = CliRunner().invoke(cli, ["demo", "--chapter", "99"])
    assert result.exit_code == 2


@needs_bench_extra
def test_bench_json_shape() -> None:
    """Every case runs and reports its figures in the documented shape: `--smoke` (one short
    round of each; the figures themselves are `troth bench`'s business, not this test's)."""
    result = CliRunner().invoke(cli, ["bench", "--smoke", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    names = {row["name"] for row in rows}
    assert {
        "identity.create.memory",
        "identity.create.persisted",
        "identity.create.persisted.single",
        "identity.verify.1",
        "identity.verify.5",
        "identity.rotate",
        "credential.issue",
        "credential.verify",
        "chain.verify.2.cold.floor",
        "chain.verify.5.cold.floor",
        "chain.verify.2.warm.biscuit",
        "enroll.200",
        "service.rtt.1.ceiling",
        "service.rtt.100.ceiling",
        "trace.append.ceiling",
        "trace.append.concurrent.bound",
        "trace.append.processes",
    } <= names
    for row in rows:
        assert {"name", "value", "unit", "baseline", "ratio"} <= row.keys()
        assert row["value"] > 0
        assert row["baseline_value"] > 0
        assert abs(row["ratio"] - row["value"] / row["baseline_value"]) < 1e-9


def test_bench_only_filters_and_rejects_unknown() -> None:
    result = CliRunner().invoke(cli, ["bench", "--quick", "--json", "--only", "identity.verify"])
    assert {row["name"] for row in json.loads(result.stdout)} == {
        "identity.verify.1",
        "identity.verify.5",
    }
    result = CliRunner().invoke(cli, ["bench", "--only", "no-such-bench"])
    assert result.exit_code == 2
