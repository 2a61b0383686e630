"""Review 49j, which log vouches for a record (issue #13: "unanchored", never "valid", with
no kept checkpoint).

1. A proof bundle (or export) whose record is an agent's real one, appended to a log of the
   presenter's own (its own log identity signing the checkpoint), verified as `unanchored`
   exactly as the bundle from the agent's real log did: the report named neither the log nor
   its origin, so a verifier holding no checkpoint could not tell a bundle from the log it
   trusts from one from any other. The report's checkpoint names its log (`log`: the log
   identity whose key signed it).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.traces import NOW, Held, open_log, tool_call
from troth.clock import FixedClock
from troth.trace import AnchorStatus
from troth.trace.export import export_jsonl, prove, verify_bundle, verify_export
from troth.trace.signing import sign_record


def test_a_bundle_names_the_log_whose_checkpoint_vouches_for_it(tmp_path: Path) -> None:
    """1."""
    clock, agent, real_owner, other_owner = FixedClock(NOW), Held(), Held(), Held()
    record = sign_record(agent.signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    reports = []
    for name, owner in (("real", real_owner), ("other", other_owner)):
        log = open_log(tmp_path / f"{name}.db", clock, owner)
        log.append(record)
        log.checkpoint()
        bundle = verify_bundle(prove(log, record.record.id))
        out = io.StringIO()
        export_jsonl(log, out)
        export = verify_export(out.getvalue().encode().splitlines())
        assert bundle.status is export.status is AnchorStatus.UNANCHORED
        reports.append((owner, bundle.to_json(), export.to_json()))
    for owner, bundle_json, export_json in reports:
        assert bundle_json["checkpoint"]["log"] == str(owner.identifier), bundle_json
        assert export_json["checkpoint"]["log"] == str(owner.identifier), export_json


def test_the_cli_names_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1, at the CLI: `troth trace verify --file BUNDLE` says whose log's checkpoint."""
    clock, owner = FixedClock(NOW), Held()
    record = sign_record(Held().signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    log = open_log(tmp_path / "trace.db", clock, owner)
    log.append(record)
    log.checkpoint()
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(prove(log, record.record.id), indent=2))
    monkeypatch.setenv("TROTH_HOME", str(tmp_path / "home"))
    run("node", "init", "verifier")
    said = run("trace", "verify", "--file", str(bundle)).stdout
    assert said.startswith(f"unanchored: 1 record(s) verified in log {owner.identifier}"), said
