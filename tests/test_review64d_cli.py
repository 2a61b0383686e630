"""Review 64d, CLI: review of 63w2's extension of the --out guard (`_outside_devices`) to the
directories on /dev's own filesystem.

1. (low: a root CLI run replaced a device link by a file) Where /dev is no filesystem of its
   own (a static /dev on the root filesystem: a chroot, a container image, a system without
   devtmpfs), the guard refused only /dev itself: "a directory on /dev's filesystem" was then
   every directory of the root's, so the check was skipped, and `--out /dev/char/1:3` (a link
   to ../null) or /dev/disk/by-uuid/X was replaced by a file, as 63w2, cli 1 found on a /dev
   of its own. The guard now also refuses any directory that resolves below /dev (links, then
   `..`), /dev/shm still written. The test runs in a mount namespace of its own (`unshare
   --mount`, root only) whose /dev is a directory of the test's tmp_path bind-mounted there
   (on the root filesystem): nothing is written to the machine's /dev.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_WRITE = """
import sys
from troth.cli.common import output_file
for name in sys.argv[1:]:
    try:
        with output_file(name) as f:
            f.write(b"x")
        print("written", name)
    except ValueError:
        print("refused", name)
"""


def _in_namespace(fake: Path, *names: str) -> list[str]:
    """`output_file` of each of `names`, run in a mount namespace whose /dev is `fake`."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (a mount namespace of its own)")
    probe = ["unshare", "--mount", "--propagation", "private", "true"]
    if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        pytest.skip("no mount namespace here")
    src = str(Path(__file__).parent.parent / "src")
    script = 'mount --bind "$1" /dev && shift && exec "$@"'  # no mount: nothing runs
    namespace = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    result = subprocess.run(
        [*namespace, str(fake), sys.executable, "-c", _WRITE, *names],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": src},
    )
    return result.stdout.splitlines()


def test_cli1_a_link_below_a_static_dev_is_never_replaced(tmp_path: Path) -> None:
    fake = tmp_path / "dev"  # on the root filesystem, as a static /dev is
    (fake / "char").mkdir(parents=True)
    (fake / "shm").mkdir()
    (fake / "null").write_bytes(b"")
    (fake / "char" / "1:3").symlink_to("../null")
    said = _in_namespace(fake, "/dev/char/1:3", "/dev/shm/kept", "/dev/char/../char/new")
    assert said == [
        "refused /dev/char/1:3",
        "written /dev/shm/kept",
        "refused /dev/char/../char/new",
    ]
    assert (fake / "char" / "1:3").is_symlink()
    assert not (fake / "char" / "new").exists()
    assert (fake / "shm" / "kept").read_bytes() == b"x"
