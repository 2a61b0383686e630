"""Review 58w (short review of this session's CLI commands): attacks that did not work, each a
real attempt that fails if the defence breaks."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.support.cli import run, run_json
from tests.support.traces import record_on_node
from tests.test_review57i_restore import _restored_after_rotation

_HOSTILE = "x\u202ey\x1b[31m\x07"  # a bidi override, an ANSI colour, a bell


def _raw(text: str) -> bool:
    return any(c in text for c in ("\u202e", "\x1b", "\x07"))


def test_the_release_refusal_names_a_command_that_works_verbatim(troth_home: Path) -> None:
    """`troth identity release-restored` refused (no feed can tell) names the next step as a
    command line: run as shown (its --node included), it releases the identity."""
    _restored_after_rotation(troth_home)
    said = run_json("identity", "release-restored", "clerk", "--node", "laptop", code=1)
    assert said["error"] == "IdentityError"
    step = said["message"].split("taken: troth ", 1)[1].split(" (docs/", 1)[0]
    assert run_json(*shlex.split(step))["released"] is True


def test_hostile_arguments_come_back_escaped_in_one_json_document(tmp_path: Path) -> None:
    """A bidi override, an ANSI sequence and a bell in the IDENTITY of release-restored, the
    --holder of lease revoke and the --checkpoint path of trace verify: with --json one
    document (typed error, the exit code the table says), in text escaped, never raw."""
    run("identity", "create", "support")
    for args in (
        ("identity", "release-restored", _HOSTILE),
        ("lease", "revoke", "--holder", _HOSTILE),
    ):
        said = run_json(*args, code=2)
        assert (said["error"], said["exit_code"]) == ("NotFound", 2)
        assert not _raw(run(*args, code=2).stderr)
    kept = str(tmp_path / _HOSTILE)
    said = run("trace", "verify", "--checkpoint", kept)
    assert not _raw(said.stdout + said.stderr)
    assert run_json("trace", "verify", "--checkpoint", str(tmp_path / "other"))


def test_declare_lost_refused_on_a_live_log_names_nothing_lost(troth_home: Path) -> None:
    """`troth trace declare-lost` on a node whose trace.db holds its log (an operator's slip):
    refused (StorageError, exit 4, one JSON document) and nothing is named lost: the log still
    verifies, no `lost_logs`."""
    run("identity", "create", "support")
    record_on_node(troth_home, 1)
    said = run_json("trace", "declare-lost", code=4)
    assert (said["error"], said["exit_code"]) == ("StorageError", 4)
    verified = run_json("trace", "verify")
    assert verified["records"] == 1
    assert "lost_logs" not in verified
