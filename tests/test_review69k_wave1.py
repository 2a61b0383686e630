"""Review 69k, wave1: this session's fixes to rotation telling (69d) and channel renewal (69c),
attacked.

wave1 1 (medium: a stopping process waited for a silent daemon; the promise of
`AuthorityService.tell_local_nodes`, "a stopping node waits for no telling", broken) Review
69d, notify 2 asked the daemons running here at once from a `ThreadPoolExecutor`. Its worker
threads are not daemon threads: the interpreter joins them when it exits (concurrent.futures'
exit hook). The tellings run in the background (the hosting daemon's `troth-tell-local-nodes`
thread after a revocation or a rotation taken over the network, a running node's after it
announced a rotation, 69d notify 3) were daemon threads so that a node stopping waits for
none of them; their pool's workers now held the stopping process until every silent daemon's
control request timed out (30 s each, `MAX_NODES_TOLD_AT_ONCE` at a time: a home of silent
daemons held `troth node stop`'s process minutes), and a telling begun after the interpreter
started exiting failed with RuntimeError ("cannot schedule new futures after interpreter
shutdown"). Now the daemons are asked from daemon threads (`_tell_all`), the caller's own
among them, and one telling failing in any way is logged, the others told.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import troth.node.traces
from tests.conftest import NOW
from tests.test_review69d_notify import _all_running
from troth.node import init_node, open_node

ROOT = Path(__file__).resolve().parent.parent

_EXITING = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from types import SimpleNamespace

    import troth.node.traces as traces
    from troth.identity import Identifier

    asked = threading.Event()

    def silent(home, name, status, op, arguments):  # a daemon stopped with Ctrl-Z
        asked.set()
        threading.Event().wait()

    traces._control = silent
    traces.list_nodes = lambda home, unreadable=None: [SimpleNamespace(name="other")]
    import troth.node.daemon
    troth.node.daemon.node_status = lambda home, name: {"name": name, "running": True}
    node = SimpleNamespace(path=Path(sys.argv[1]) / "nodes" / "me" / "node.json", name="me")
    authority = Identifier.parse(sys.argv[2])
    threading.Thread(  # as the authority service's and the announcer's telling
        target=traces.tell_local_nodes, args=(node, authority), daemon=True
    ).start()
    assert asked.wait(10)
    print("exiting", flush=True)
    """
)


def test_wave1_1_a_process_exiting_waits_for_no_silent_daemon(tmp_path: Path) -> None:
    """A process whose background telling is held by a daemon that never answers exits at
    once: on the unfixed code the interpreter joined the pool's worker at exit, and this
    process hung (here without end: the stand-in daemon never answers)."""
    from troth.identity import Identifier

    authority = str(Identifier(bytes(32)))
    try:
        done = subprocess.run(
            [sys.executable, "-c", _EXITING, str(tmp_path), authority],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the process hung at exit: {exc.stdout!r}") from None
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"exiting\n"


def test_wave1_1_a_telling_failing_unexpectedly_is_logged_and_the_others_told(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One daemon's telling fails with an error that is neither a TrothError nor an OSError:
    the others are told, it is logged, and the caller (a committed revocation, a rotation's
    `announce_here` in its `finally`) is not failed by it. The unfixed pool raised it from
    `.result()` to the caller."""
    for name in ("revoker", "a", "b", "c"):
        init_node(name)
    told: list[str] = []

    def control(home: object, name: str, status: object, op: str, arguments: object) -> None:
        if name == "b":
            raise ValueError("an answer no one expected")
        told.append(name)

    _all_running(monkeypatch)
    monkeypatch.setattr(troth.node.traces, "_control", control)
    with open_node("revoker") as node:
        authority = node.identities.create(now=NOW, name="x").identifier
        with caplog.at_level(logging.WARNING, logger=troth.node.traces.log.name):
            troth.node.traces.tell_local_nodes(node, authority)
    assert sorted(told) == ["a", "c"]
    assert any("'b' was not told" in r.getMessage() for r in caplog.records)
