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

wave1 2 (medium: one node directory this user cannot read blocked every revocation and rotation
here) 69d notify 4 had the telling list the home's nodes past a damaged node.json; a node
directory this user cannot enter (made by `sudo troth node ...`: root's, mode 0700) is not a
damaged file but an OSError where `list_nodes` looks for its node.json (`Path.is_file` raises
EACCES). It was not caught (`except TrothError`): `local_nodes_due`, entered before the
authority's commit, raised an untyped PermissionError out of every revocation with an authority
on this machine (`Authority.revoke`, `troth revoke link`, `authority members remove`) and of every
rotation announced here, none of them made; and the telling raised it past a committed one.
Now `list_nodes` puts such a node with the unreadable ones (its ConfigError, typed, when not
asked to), and the home's nodes directory itself that cannot be listed is a ConfigError.
"""

from __future__ import annotations

import errno
import logging
import pathlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import troth
import troth.node.traces
from tests.conftest import NOW
from tests.support.enroll import enroll_in_process
from tests.test_review69d_notify import _all_running
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.errors import ConfigError
from troth.node import init_node, open_node
from troth.node.authorities import announce_here
from troth.node.node import list_nodes
from troth.node.rotation import rotate_local

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


def test_wave1_2_a_node_directory_not_ours_blocks_no_revocation(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Node `locked`'s directory cannot be entered by this user (stood in for: the tests run
    as root, whom no mode stops; `Path.is_file` raises as it does for EACCES). The revocation
    is made, and the node logged as neither marked nor told."""
    with troth.Node.open("hub") as hub:
        acme = hub.create_authority()
        locked = troth_home / "nodes" / "locked"
        locked.mkdir(parents=True)
        real = pathlib.Path.is_file

        def is_file(self: pathlib.Path) -> bool:
            if self.parent == locked:
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(pathlib.Path, "is_file", is_file)
        with caplog.at_level(logging.WARNING, logger=troth.node.traces.log.name):
            assert acme.revoke(b"\x01" * 32) == 0
    assert "'locked' was not told of the revocation" in caplog.text
    with pytest.raises(ConfigError, match="Permission denied"):
        list_nodes(troth_home)  # (`troth node list` without `unreadable`: typed)


def test_wave1_3_a_damaged_node_here_holds_back_no_rotations_supersession(
    troth_home: Path,
) -> None:
    """`agent` (node `owner`), a member of acme (hosted by node `acme` here), rotates as
    compromised while node `broken`'s node.json is damaged: acme takes the supersession."""
    clock = FixedClock(NOW)
    for name in ("acme", "owner", "broken"):
        init_node(name)
    (troth_home / "nodes" / "broken" / "node.json").write_bytes(b"{damaged")
    with open_node("owner") as owner:
        owner.identities.create(now=NOW, name="agent")
        with open_node("acme") as hosting:
            authority = hosting.create_authority("acme", now=NOW)
            ticket = authority.create_ticket(
                creator=authority.identifier, attributes=Attributes(), address="node:acme", now=NOW
            )
            enroll_in_process(owner, "agent", authority, str(ticket), clock)
        clock.advance(60)
        rotate_local(owner, "agent", clock=clock, compromised=True)
        (done,), remote = announce_here(owner, "agent", now=clock.now())
    assert remote == []
    assert done.error is None
    assert done.seq is not None
