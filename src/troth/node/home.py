"""Where troth keeps state: `$TROTH_HOME`, else the platform's user data dir (platformdirs).

Directories are created 0700 and files 0600; files are written atomically (temp file, fsync,
rename, fsync of the directory), so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import platformdirs

from troth.errors import ConfigError
from troth.faults import crash_point

__all__ = [
    "private_file_writer",
    "read_private_file",
    "secure_dir",
    "troth_home",
    "write_private_file",
]


def troth_home() -> Path:
    """Where troth keeps its state: $TROTH_HOME, else the platform's user data directory."""
    env = os.environ.get("TROTH_HOME")
    return Path(env) if env else platformdirs.user_data_path("troth", appauthor=False)


def secure_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed and make it 0700."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create directory {path}: {exc}") from exc
    return path


@contextlib.contextmanager
def private_file_writer(
    path: Path, *, exclusive: bool = False, text: bool = False
) -> Iterator[IO[Any]]:
    """A file to write `path` through, atomically with mode 0600: a new temporary file beside it
    (O_EXCL: never one planted there), fsynced, then renamed over `path` (a symlink at `path`
    is replaced, never followed) and the directory fsynced; removed if the block fails.
    `exclusive`: fail with FileExistsError if `path` exists.

    The temporary name is random per write, not only the writer's pid: one a killed writer
    left (a SIGKILL between open and rename) blocked every later write of `path` by a process
    with its pid (pid 1 in a container, at every restart), and a name planted beside a file
    written in a shared directory blocked that write (review 34d, node home 2)."""
    for attempt in range(8):  # 64 random bits taken: planted, or a killed writer's
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            break
        except FileExistsError:
            if attempt == 7:
                raise
    try:
        with os.fdopen(fd, "w" if text else "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        crash_point("node.file.before-rename")  # the old file whole, a temporary one beside it
        if exclusive:
            os.link(tmp, path)  # fails with FileExistsError if another writer won
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    crash_point("node.file.after-rename")
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_private_file(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write `data` to `path` atomically with mode 0600. `exclusive`: fail if `path` exists."""
    with private_file_writer(path, exclusive=exclusive) as handle:
        handle.write(data)


def read_private_file(path: Path) -> bytes:
    """Read a file that must not be readable by group or others (like ssh's private keys)."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise ConfigError(
                f"{path} is accessible by others (mode {mode & 0o777:o}); chmod 600 it"
            )
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
