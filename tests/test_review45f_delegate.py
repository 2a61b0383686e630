"""Review 45f, crash consistency of a delegation: `troth credential delegate` killed
(TROTH_CRASH_AT) at each of its steps, then the node reopened.

Its steps: the output file's temporary opened; the link signed (no commit) and recorded in the
node's trace log (`trace.append.*`: no record, no delegation); the chain written, fsynced and
renamed over `--out` (`node.file.*`). Killed before the record commits: nothing. After it,
before the rename: the record of a link no one holds (its chain in no file: the record keeps
the parent chain and the link's hash), never a file without its record; `troth credential
delegate` again signs another link, recorded and written."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support.enroll import acme_and_agent
from troth.clock import SystemClock
from troth.credentials import CredentialChain
from troth.enrollment import enroll
from troth.faults import CRASH_ENV, CRASH_EXIT_CODE
from troth.identity import Identifier
from troth.node import open_node


def delegate(out: Path, to: Identifier, crash: str | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash is not None:
        env[CRASH_ENV] = crash
    result = subprocess.run(
        [
            sys.executable, "-m", "troth.cli.main", "credential", "delegate", "--as", "agent",
            "--to", str(to), "--attr", "team.name=x", "--ttl", "30m", "--purpose", "help",
            "--out", str(out), "--node", "agent",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )  # fmt: skip
    code = 0 if crash is None else CRASH_EXIT_CODE
    if result.returncode != code:
        raise AssertionError((crash, result.returncode, result.stdout, result.stderr))


def enrolled_with_helper() -> Identifier:
    """Nodes acme and agent, `agent` enrolled at acme; a local identity `helper` to delegate
    to."""
    now = int(time.time())
    with acme_and_agent(None, now) as (authority, agent, _member, ticket):

        def send(request: bytes) -> bytes:
            return authority.enroll(request, now=int(time.time())).encode()

        enroll(agent.identities, agent.wallet, "agent", ticket, clock=SystemClock(), send=send)
        return agent.identities.create(now=now, name="helper").identifier


def records(home: Path) -> int:
    path = home / "nodes" / "agent" / "trace.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM leaves").fetchone()[0])


def strays(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*.tmp"))


def test_a_delegation_killed_at_each_step_never_hands_out_an_unrecorded_chain(
    troth_home: Path, tmp_path: Path
) -> None:
    helper = enrolled_with_helper()
    out = tmp_path / "helper.chain"

    delegate(out, helper, "trace.append.before-commit")
    assert (records(troth_home), out.exists()) == (0, False)

    delegate(out, helper, "trace.append.after-commit")
    assert (records(troth_home), out.exists()) == (1, False)  # recorded, handed out to no one

    delegate(out, helper, "node.file.before-rename")
    assert (records(troth_home), out.exists()) == (2, False)
    # each killed writer left its temporary file (the last one holding the chain): the next
    # write removes them once a minute old (tests/test_review45f_files.py)
    assert len(strays(out)) == 3

    delegate(out, helper, "node.file.after-rename")
    assert records(troth_home) == 3
    chain = CredentialChain.decode(out.read_bytes())  # whole: renamed after its fsync
    assert chain.credentials[-1].hash != b""

    delegate(out, helper)
    assert records(troth_home) == 4
    assert CredentialChain.decode(out.read_bytes()).credentials[-1].hash != (
        chain.credentials[-1].hash
    )
    with open_node("agent") as node:
        node.wallet.hold("helper", out.read_bytes(), now=int(time.time()))
