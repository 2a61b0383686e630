"""Where a node's control socket is made (troth.node.daemon's part): `control.sock` in the node
directory, or, when that path is too long for AF_UNIX, a name in a private directory of this
user (`troth-<uid>` under $XDG_RUNTIME_DIR or the temporary directory), checked before
anything is done through it (reviews 34d, 36b, 36d)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from troth.errors import ConfigError

__all__: list[str] = []  # troth.node.daemon's private helpers only

_MAX_LINKS = 40  # links followed resolving the base: Linux's own limit (ELOOP past it)


def _socket_path(directory: Path) -> Path:
    path = directory / "control.sock"
    if len(os.fsencode(path)) < 100:  # AF_UNIX paths: ~108 bytes (review 34d, node home 7)
        return path
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    runtime = base / f"troth-{os.getuid()}"
    # checked before anything is done through the name (/tmp is shared: a symlink planted
    # there had the victim's directory chmod-ed 0700; review 34d, node home 3)
    try:
        _no_renames_by_others(base)
        with contextlib.suppress(FileExistsError):
            os.mkdir(runtime, 0o700)
        info = runtime.lstat()
        loose = info.st_mode
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(runtime, 0o700)  # ours, and not a link: only we can rename it (sticky /tmp)
            info = runtime.lstat()
    except OSError as exc:
        raise ConfigError(f"cannot create directory {runtime}: {exc}") from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(f"{runtime} is not a private directory of this user")
    try:  # now that no one else can add one, loose until now or not (review 36d, socket dir 1)
        _none_of_others(runtime, loose)
    except OSError as exc:
        raise ConfigError(f"cannot list directory {runtime}: {exc}") from exc
    return runtime / (hashlib.sha256(str(directory).encode()).hexdigest()[:20] + ".sock")


def _no_renames_by_others(base: Path) -> None:
    """ConfigError unless only this user (or root) can rename entries of `base`, the directory
    `troth-<uid>` is made in, and of every directory above it: each ours or root's, and not
    writable by group or others unless sticky (/tmp). Else another user renames our checked
    `troth-<uid>` (or a directory holding it) away and puts theirs, or a link, in its place,
    and every check of it is moot (review 36d, socket dir 2 and 3). A link on the path (macOS's
    /tmp) must itself be ours or root's, in a directory as above: another user's link in /tmp
    is theirs to point elsewhere, the sticky bit notwithstanding (review 55r, socket dir 1).
    The path is walked as the kernel resolves it, every directory and link met looked at: a
    link behind a link, or before a `..` (dropped as written by os.path.abspath), passed
    unseen, and a link loop was a RuntimeError (review 55x, socket dir 1 to 3)."""
    real, todo, links = Path("/"), list((Path.cwd() / base).parts), 0
    while todo:
        part = todo.pop(0)
        if part == "/":
            real = Path("/")
        elif part == "..":
            real = real.parent  # already looked at, on the way down
            continue
        else:
            real = real / part
        info = os.lstat(real)
        _kept(real, info, base)
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise ConfigError(f"{base}: too many levels of links (a loop?)")
            todo[:0] = Path(os.readlink(real)).parts
            real = real.parent


def _kept(entry: Path, info: os.stat_result, base: Path) -> None:
    """ConfigError unless `entry` (a directory or a link; `info`, its own) is ours or root's
    and, a directory, not writable by group or others unless sticky."""
    sticky = bool(info.st_mode & stat.S_ISVTX)
    loose = stat.S_ISDIR(info.st_mode) and info.st_mode & 0o022 and not sticky
    if info.st_uid not in (0, os.getuid()) or loose:
        raise ConfigError(
            f"{entry} ({stat.filemode(info.st_mode)}, uid {info.st_uid}) lets another "
            f"user rename or change what is in it, so the control socket's directory under "
            f"{base} would not stay ours. Use a directory of this user, on a path only it "
            "and root can change (directories with the sticky bit, as /tmp, count; links "
            "only this user's or root's), as $XDG_RUNTIME_DIR"
        )


def _none_of_others(runtime: Path, mode: int) -> None:
    """ConfigError when `runtime`, ours and private now (`mode`: as it was found), holds an
    entry of another user: what they put there while they could (it was loose, made so by
    hand or before an older troth's chmod) stays after the chmod (at the socket's own name, a
    directory of theirs made the node fail with a bare OSError; review 36b, socket dir 2;
    review 36d, socket dir 1: a directory already 0700 is looked at too). Nothing of theirs
    is removed: the operator decides. Entries are looked at (lstat), never followed."""
    me = os.getuid()
    had = (
        f"had group/other permissions ({stat.filemode(mode)})"
        if mode & 0o077
        else "is private, but was not always"
    )
    with os.scandir(runtime) as entries:
        for entry in entries:
            owner = entry.stat(follow_symlinks=False).st_uid
            if owner != me:
                raise ConfigError(
                    f"{runtime} {had} and {entry.name} belongs to uid {owner}: remove what "
                    "is not yours there, or the directory itself, and start again"
                )
