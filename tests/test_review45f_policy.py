"""Review 45f, crash consistency of installing a signed policy bundle (`install_bundle`, what
`troth policy push` runs), killed (TROTH_CRASH_AT) around the commit of the node's bundle table
(`node.policy-bundle.*`).

The bundle is verified, stored in one commit, then activated in memory and a running node told
(`policy.reload`): killed before the commit, the table keeps the revision it held; after it,
the new one, which the next open of the node activates (a running node takes it up at its next
maintenance round: tests/test_review34d_crash.py), and the same push again is a no-op."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.gates import POLICIES, TOOLS
from troth.clock import SystemClock
from troth.faults import CRASH_ENV, CRASH_EXIT_CODE
from troth.gates import create_bundle
from troth.node import init_node, open_node
from troth.node.services.policy import stored_bundles

_PUSH = """
import json, sys
from pathlib import Path
from troth.clock import SystemClock
from troth.node.services.policy import install_bundle
summary = install_bundle(Path(sys.argv[1]), "acme", Path(sys.argv[2]).read_bytes(),
                         clock=SystemClock())
print(json.dumps({"revision": summary["revision"], "new": summary["new"]}))
"""


def push(home: Path, bundle: Path, crash: str | None = None) -> dict[str, object] | None:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    if crash is not None:
        env[CRASH_ENV] = crash
    result = subprocess.run(
        [sys.executable, "-c", _PUSH, str(home), str(bundle)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    code = 0 if crash is None else CRASH_EXIT_CODE
    if result.returncode != code:
        raise AssertionError((crash, result.returncode, result.stdout, result.stderr))
    return None if crash is not None else dict(json.loads(result.stdout))


def bundles(home: Path, tmp: Path) -> tuple[Path, Path]:
    """Node `acme` hosting authority acme, and revisions 1 and 2 of its bundle (files)."""
    now = int(time.time())
    init_node("acme", home=home)
    with open_node("acme", home=home) as node:
        authority = node.create_authority("acme", now=now).identifier
        signer = node.identities.signer("acme", now=now)
        paths = []
        for revision in (1, 2):
            path = tmp / f"rev{revision}.bundle"
            path.write_bytes(
                create_bundle(
                    signer,
                    authority=authority,
                    policies=POLICIES,
                    schema="",
                    tools=TOOLS,
                    revision=revision,
                    now=now,
                    ttl=3600,
                )
            )
            paths.append(path)
    return paths[0], paths[1]


def held(home: Path) -> list[int]:
    """The revisions node acme's table holds, each in force (what `troth policy show` says)."""
    shown = stored_bundles(home, "acme", clock=SystemClock())
    assert all(bundle["in_force"] for bundle in shown)
    return [int(bundle["revision"]) for bundle in shown]


def test_a_push_killed_around_its_commit_leaves_one_revision_whole(
    troth_home: Path, tmp_path: Path
) -> None:
    first, second = bundles(troth_home, tmp_path)
    assert push(troth_home, first) == {"revision": 1, "new": True}
    assert push(troth_home, second, "node.policy-bundle.before-commit") is None
    assert held(troth_home) == [1]
    assert push(troth_home, second, "node.policy-bundle.after-commit") is None
    assert held(troth_home) == [2]
    assert push(troth_home, second) == {"revision": 2, "new": False}  # done: a no-op
    assert held(troth_home) == [2]
