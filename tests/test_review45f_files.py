"""Review 45f, crash consistency of the node's private files (node.json through
`update_config`; own-relays.json and the CLI's --out files go the same way:
`troth.node.home.private_file_writer`), with real processes killed (TROTH_CRASH_AT) at
`node.file.before-rename` and `node.file.after-rename`.

A write is a new temporary file beside the target (random name), written, fsynced, renamed
over it, then the directory fsynced: killed before the rename, the old file is whole and the
temporary is left; after it, the new one is whole. The lock of `update_config` (an flock) goes
with the killed process: the next update is not held up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from troth.faults import CRASH_ENV, CRASH_EXIT_CODE
from troth.node import init_node
from troth.node.config import NodeConfig

_UPDATE = """
import sys
from pathlib import Path
from troth.node.config import update_config
update_config(Path(sys.argv[1]), lambda config: config.with_listen(sys.argv[2]))
"""


def update(path: Path, listen: str, crash: str | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    if crash is not None:
        env[CRASH_ENV] = crash
    result = subprocess.run(
        [sys.executable, "-c", _UPDATE, str(path), listen],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    code = 0 if crash is None else CRASH_EXIT_CODE
    if result.returncode != code:
        raise AssertionError((crash, result.returncode, result.stdout, result.stderr))


def listen(path: Path) -> str | None:
    return NodeConfig.from_json(path.read_bytes(), path).listen


def strays(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def test_a_config_update_killed_around_its_rename_leaves_a_whole_file(troth_home: Path) -> None:
    """Killed before the rename: the old node.json, whole, and the next update goes through
    (the lock went with the process). Killed after it: the new one. Again: nothing to do."""
    init_node("hub")
    path = troth_home / "nodes" / "hub" / "node.json"
    update(path, "127.0.0.1:4100", "node.file.before-rename")
    assert listen(path) is None
    assert len(strays(path)) == 1
    update(path, "127.0.0.1:4100", "node.file.after-rename")
    assert listen(path) == "127.0.0.1:4100"
    update(path, "127.0.0.1:4100")
    assert listen(path) == "127.0.0.1:4100"


def test_a_killed_writers_temporary_file_is_removed_by_a_later_write(troth_home: Path) -> None:
    """Review 45f, files 1 (a strict xfail until fixed). Each write killed before its
    rename left its temporary file (a chain written by
    `credential delegate`, a node.json) beside the target for good: nothing ever removed
    them, one more at each crash. A later write of the same file removes those of writers no
    longer running that are over a minute old (a live writer holds its own for
    milliseconds); a recent one, or a running writer's, stays."""
    init_node("hub")
    path = troth_home / "nodes" / "hub" / "node.json"
    update(path, "127.0.0.1:4100", "node.file.before-rename")
    update(path, "127.0.0.1:4101", "node.file.before-rename")
    old = strays(path)
    assert len(old) == 2
    an_hour_ago = time.time() - 3600
    for stray in old:
        os.utime(stray, (an_hour_ago, an_hour_ago))
    update(path, "127.0.0.1:4102", "node.file.before-rename")  # a recent one: kept
    recent = [s for s in strays(path) if s not in old]
    live = path.with_name(f".{path.name}.{os.getpid()}.0123456789abcdef.tmp")  # running writer
    live.write_bytes(b"")
    os.utime(live, (an_hour_ago, an_hour_ago))
    update(path, "127.0.0.1:4103")
    assert listen(path) == "127.0.0.1:4103"
    assert strays(path) == sorted([*recent, live])
