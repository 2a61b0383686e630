"""Where troth keeps state: `$TROTH_HOME`, else the platform's user data dir (platformdirs).

Directories are created 0700 and files 0600; files are written atomically (temp file, fsync,
rename, fsync of the directory), so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, Final

import platformdirs

from troth.errors import ConfigError
from troth.faults import crash_point
from troth.limits import MAX_NODE_FILE_BYTES

__all__ = [
    "STALE_TEMPORARY_AGE",
    "check_kept_dirs",
    "check_private",
    "open_private_log",
    "private_file_writer",
    "read_private_file",
    "secure_dir",
    "sync_dir",
    "troth_home",
    "write_private_file",
]

STALE_TEMPORARY_AGE: Final = 60
"""Seconds after which a temporary file left by a writer whose pid no longer runs here is
removed by the next write of its target (review 45f, files 1)."""
_PID: Final = re.compile(r"[0-9]{1,10}")
"""A writer's pid in a temporary's name: ASCII digits, at most 10 (a pid_t is 32 bits); any
other name is left alone, and never fails the write (review 45k, files 1)."""


def troth_home() -> Path:
    """Where troth keeps its state: $TROTH_HOME, else the platform's user data directory."""
    env = os.environ.get("TROTH_HOME")
    return Path(env) if env else platformdirs.user_data_path("troth", appauthor=False)


def inside_nodes(target: Path, nodes: Path) -> bool:
    """Whether `target`, a file to write, is inside `nodes` (a home's node directories,
    through symlinked directories too), where troth keeps node databases, configurations and
    vault keys (review 49g, cli 7: `--out .../vault.key` replaced the key); False when either
    cannot be resolved (a symlink loop: the write will say why)."""
    try:
        return (target.parent.resolve() / target.name).is_relative_to(nodes.resolve())
    except (OSError, RuntimeError):
        return False


def check_not_taken_over(path: Path) -> None:
    """ConfigError when home `path` holds other files and no nodes yet, and others can
    read it: not troth's to change. Taken, it was made 0700 and given the nodes: `TROTH_HOME=
    $STATE/` with STATE unset, run as root, made `/` 0700 and shut every other user out of
    every file (review 61n, cli 4; /home, /etc, a project directory alike). An empty directory
    is made 0700 as before; so is one that is already a home (its `nodes` there). Checked by
    `init_node` and by the command line's home (`troth.cli.common.home`)."""
    try:
        mode = os.stat(path).st_mode
        if not mode & 0o077 or (path / "nodes").exists():
            return
        with os.scandir(path) as entries:
            other_files = any(True for _ in entries)
    except OSError as exc:
        raise ConfigError(f"cannot look at {path}: {exc.strerror or exc}") from None
    if other_files:
        raise ConfigError(
            f"troth's home {path} ({stat.filemode(mode)}) holds other files, and others can read "
            "it: troth would make it 0700 and keep its nodes among them. Name a new or empty "
            "directory for troth (or chmod 700 this one to give it to troth)"
        )


def secure_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed and make it 0700. An existing directory of another
    user is refused, not taken: as root, a home another user owns (or one like /tmp) was made
    0700 and the nodes kept where that user controls them (review 57d, cli 2). A link of
    another user on the way is refused (`_check_links`), also one planted as it is made, or
    put in place of a directory on the way (`_open_dir`: review 57p, home 2). The missing parts
    are made on that walk, each in the directory opened before it: `Path.mkdir(parents=True)`
    followed a link planted after `_check_links` looked (review 57t, home 2)."""
    try:  # the directory looked at is the one changed, reached (and made) one part at a time
        _check_links(path)  # before: nothing made through another user's link
        fd = _open_dir(path, make=True)  # a link planted meanwhile (review 57k, cli 3; 57t, 2)
        fd = _reopen(fd, ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # to change it
        try:
            owner = os.fstat(fd).st_uid
            if owner != os.geteuid():
                raise ConfigError(
                    f"{path} belongs to uid {owner}, not this user: another user could "
                    "replace the node's files there; use a directory of this user's"
                )
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)
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
    _remove_stale_temporaries(path)
    sync_dir(path.parent)


def sync_dir(path: Path) -> None:
    """fsync directory `path`: a rename or unlink in it is durable once this returns."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files killed writers of `path` left beside it (review 45f, files
    1: each write killed before its rename left one for good, a delegated chain or a node.json
    in it): named as `private_file_writer` names them, regular files of this user, of a pid
    not running here, unmodified for STALE_TEMPORARY_AGE seconds (a live writer holds its own
    for one write: milliseconds). Anything else, and any failure, is left alone."""
    prefix = f".{path.name}."
    now = time.time()
    try:
        entries = os.scandir(path.parent)
    except OSError:
        return
    with entries:
        for entry in entries:
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(".tmp")):
                continue
            parts = name[len(prefix) : -len(".tmp")].split(".")
            if len(parts) != 2 or not _PID.fullmatch(parts[0]) or len(parts[1]) != 16:
                continue  # not a writer's pid (Unicode digits, past any pid: review 45k)
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (
                not stat.S_ISREG(info.st_mode)
                or info.st_uid != os.geteuid()
                or now - info.st_mtime < STALE_TEMPORARY_AGE
                or _running(int(parts[0]))
            ):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _running(pid: int) -> bool:
    """Whether a process `pid` runs here (one of another user's included)."""
    if pid <= 0:
        return True  # not a writer's pid: left alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: it runs, as someone else; past a pid_t: no pid
        return True
    return True


def write_private_file(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write `data` to `path` atomically with mode 0600. `exclusive`: fail if `path` exists."""
    with private_file_writer(path, exclusive=exclusive) as handle:
        handle.write(data)


def check_kept_dirs(*paths: Path) -> None:
    """ConfigError unless each of `paths` is a directory of this user (or root) that no one else
    can write in (as ssh's StrictModes): a node started in one others write in had its control
    socket and log replaced by theirs (review 53u, control 4). A link of another user on the
    way is refused (`_open_dir`)."""
    for path in paths:
        try:
            fd = _open_dir(path)
            try:
                info = os.fstat(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise ConfigError(f"cannot look at {path}: {exc}") from exc
        if info.st_uid not in (os.geteuid(), 0):  # chmod would change nothing (57k, cli 4)
            raise ConfigError(
                f"{path} belongs to uid {info.st_uid}, not this user (uid {os.geteuid()}) or "
                "root: its owner could replace the node's control socket or files there; use "
                "a directory of this user's, or chown it"
            )
        if info.st_mode & 0o022:
            raise ConfigError(
                f"{path} ({stat.filemode(info.st_mode)}, uid {info.st_uid}) is writable by "
                "others: another user could replace the node's control socket or files there; "
                "chmod 700 it (as `troth node create` made it)"
            )


_MAX_LINKS: Final = 40
"""Links `_check_links` and `_open_dir` follow on one path, as Linux's MAXSYMLINKS (then
ELOOP)."""


def _check_links(path: Path) -> None:
    """ConfigError when a link on the way to `path` (itself included) is another user's (not
    root's): its owner chooses, and changes at will, the directory `path` names. Every other
    check looks at that directory (`os.stat`, `mkdir`, `chmod` follow links), so a link planted
    by another user where a home was to be made (TROTH_HOME in a shared directory), pointing
    at a directory of this user's (as root: /etc), passed them: that directory was made 0700
    and given the nodes (review 57k, cli 1). The path is walked as the kernel resolves it, each
    link followed and `..` taken in the directory reached (review 57p, home 1: a `..` after a
    link, dropped with it by `os.path.abspath`, let a path through another user's link pass);
    a part not there (yet) is made by this user."""
    pending = list(reversed(_absolute(path).parts))
    where, followed = Path("/"), 0
    while pending:
        name = pending.pop()
        if name in ("/", "..", "."):
            where = Path("/") if name == "/" else where.parent if name == ".." else where
            continue
        part = where / name
        try:
            info = os.lstat(part)
        except OSError:  # not there (yet): made by this user, or a failure where it is used
            where = part
            continue
        if not stat.S_ISLNK(info.st_mode):
            where = part
            continue
        if info.st_uid not in (os.geteuid(), 0):
            raise ConfigError(
                f"{part} is a link of uid {info.st_uid}, not this user's or root's: its owner "
                f"chooses where {path} is; use a path without it"
            )
        followed += 1
        if followed > _MAX_LINKS:
            return  # a loop: the kernel refuses the path where it is used (ELOOP)
        pending.extend(reversed(Path(os.readlink(part)).parts))  # from the link's directory


_DIR_FLAGS: Final = os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW | getattr(os, "O_PATH", 0)
"""`_open_dir`'s opening of each part: O_PATH where there is one (Linux), which needs search
permission only, as the kernel's resolution does (a directory others may search but not list,
0711, is no refusal); else O_RDONLY (0)."""


def _absolute(path: Path) -> Path:
    """`path` from the working directory when relative: an absolute one never asks for it (a
    removed working directory failed every absolute home: review 57t, home 1)."""
    return path if path.is_absolute() else Path(os.getcwd(), path)


def _open_part(name: str, fd: int, *, make: bool, last: bool) -> int:
    """Directory `name` in directory `fd` opened with `_DIR_FLAGS`; made first when not there
    and `make` (0700 when `last`, as `Path.mkdir(mode=0o700, parents=True)` makes a path)."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=fd)  # "/": dir_fd unused
    except FileNotFoundError:
        if not make:
            raise
    with contextlib.suppress(FileExistsError):  # made meanwhile: opened as it is
        os.mkdir(name, 0o700 if last else 0o777, dir_fd=fd)
    return os.open(name, _DIR_FLAGS, dir_fd=fd)


def _open_dir(path: Path, *, make: bool = False) -> int:
    """A descriptor of the directory `path` names, reached as the kernel resolves it but one
    part at a time, each opened in the directory opened before it without following a link
    (`_DIR_FLAGS`): a link is followed only once seen to be this user's or root's (else
    ConfigError, as `_check_links`). Opening the whole path followed a link put in place of a
    directory on the way after `_check_links` looked (review 57p, home 2: another user owning
    that directory renamed it and planted one; the directory of this user's it led to was made
    0700). `make`: a part not there is made (`_open_part`). OSError for a part not there, or
    a loop."""
    pending = list(reversed(_absolute(path).parts))
    fd, followed = os.open("/", _DIR_FLAGS), 0
    try:
        while pending:
            name = pending.pop()
            if name == ".":
                continue
            try:
                opened = _open_part(name, fd, make=make, last=not pending)
            except OSError as exc:
                try:
                    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    raise exc from None  # why it could not be opened (or made), not the stat's
                if not stat.S_ISLNK(info.st_mode):
                    raise
            else:
                os.close(fd)
                fd = opened
                continue
            if info.st_uid not in (os.geteuid(), 0):
                raise ConfigError(
                    f"{name!r} on the way to {path} is a link of uid {info.st_uid}, not this "
                    f"user's or root's: its owner chooses where {path} is; use a path without it"
                )
            target = os.readlink(name, dir_fd=fd)
            again = os.stat(name, dir_fd=fd, follow_symlinks=False)
            followed += 1
            if again.st_ino != info.st_ino or again.st_uid != info.st_uid:
                raise ConfigError(f"a link on the way to {path} ({name}) changed meanwhile")
            if followed > _MAX_LINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
            pending.extend(reversed(Path(target).parts))  # from the link's directory
        return fd
    except BaseException:
        os.close(fd)
        raise


def _reopen(fd: int, name: str, flags: int) -> int:
    """`name` opened in directory `fd` with `flags`; `fd` closed (also when that fails)."""
    try:
        return os.open(name, flags, dir_fd=fd)
    finally:
        os.close(fd)


def open_private_log(path: Path) -> BinaryIO:
    """`path` opened to append, made 0600: never through a link, and only a regular file of this
    user (a link planted at a node's node.log had another file of the owner's made private and
    the node's output appended to it: review 53u, control 3); ConfigError else."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot open {path} (a link there is not followed): {exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise ConfigError(f"{path} is not a regular file of this user")
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "ab")
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot open {path}: {exc}") from exc
        raise


def check_private(info: os.stat_result, path: Path | str, *, readable: str, owned: str) -> None:
    """ConfigError unless the file `info` describes (its open descriptor's, never its path's:
    review 53q, keyfile 1) is private, as ssh wants a private key: no access by group or others
    (`readable` ends that message: what follows for the file), and this user's or root's
    (`owned` ends that one: review 53k, home 1; review 53j, vault 1)."""
    if info.st_mode & 0o077:
        raise ConfigError(
            f"{path} is accessible by others (mode {info.st_mode & 0o777:o}){readable}"
        )
    if info.st_uid not in (os.geteuid(), 0):
        raise ConfigError(
            f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}) "
            f"or root: {owned}"
        )


def read_private_file(path: Path, max_bytes: int = MAX_NODE_FILE_BYTES) -> bytes:
    """Read a file that must not be readable by group or others (like ssh's private keys) and
    is this user's or root's (review 53k, home 1: run as root over a home another user can
    write, a file of theirs was trusted, node.json naming the PKCS#11 module root loaded): a
    regular file of at most `max_bytes`, else ConfigError. It is opened without waiting (a
    FIFO at a node.json hung every command that lists the nodes) and read no further than
    the limit (a huge one was read whole; review 46b, home 1 and 2)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:  # checked before the file object (a directory's is an IsADirectoryError: review 46f)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        check_private(
            info,
            path,
            readable="; chmod 600 it",
            owned="its owner could rewrite it; chown it, or run troth as its owner",
        )
        file = os.fdopen(fd, "rb")
    except BaseException as exc:
        os.close(fd)  # never left open (each failure leaked one)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        raise
    with file:
        try:
            data = file.read(max_bytes + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
    if len(data) > max_bytes:
        raise ConfigError(f"{path} is larger than {max_bytes} bytes")
    return data
