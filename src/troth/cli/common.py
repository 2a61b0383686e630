"""Options and helpers shared by commands: one meaning per option name.

--node NODE            the node whose vault and store a command uses
--as IDENTITY          the local identity that acts (delegates, enrolls, holds, revokes)
--authority AUTHORITY  a local authority, by name or identifier
--trust AUTHORITY      a trust anchor: a local authority's name, or any identifier
--out FILE             the file a command writes
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, Final, TypeVar

import click

from troth.authority.client import parse_authority_pin
from troth.bounded_read import read_bounded
from troth.cli.names import Directory
from troth.cli.text import parse_duration
from troth.clock import SystemClock
from troth.credentials import Attributes
from troth.enrollment import OVER_COPY_NEEDS_PIN
from troth.errors import ArgumentError, ConfigError
from troth.node import DEFAULT_NODE, Node, open_node, troth_home
from troth.node.home import (
    check_kept_dirs,
    check_not_taken_over,
    inside_nodes,
    private_file_writer,
)

F = TypeVar("F", bound=Callable[..., Any])

CLOCK = SystemClock()

IDENTITY_HELP = "a local name or an identifier (T…)"
AUTHORITY_HELP = "A local authority: its name or its identifier (troth authority list)."


def node_option(func: F) -> F:
    """`--node NODE`: the node whose vault and store the command uses."""
    return click.option(
        "--node",
        "node_name",
        metavar="NODE",
        default=lambda: os.environ.get("TROTH_NODE", DEFAULT_NODE),
        show_default="$TROTH_NODE or 'default'",
        help="The node whose vault and store to use.",
    )(func)


def as_option(help_text: str) -> Callable[[F], F]:
    """`--as IDENTITY`: the local identity that acts (required)."""
    return click.option(
        "--as", "as_name", required=True, metavar="IDENTITY", help=f"{help_text}: {IDENTITY_HELP}."
    )


def enroll_options(func: F) -> F:
    """`troth enroll`'s word on the ticket's authority: `--authority-pin PIN` and
    `--over-copy` (troth.authority.client, `check_ticket`)."""
    func = click.option(
        "--over-copy",
        "over_copy",
        is_flag=True,
        help="Take the ticket's authority history over a copy of that authority this node "
        "holds only on another authority's word and that it conflicts with (refused without "
        "it, naming that authority, the change and the ticket's pin): only with "
        "--authority-pin, the pin the authority's operator read out (troth authority list, on "
        "its machine), checked against the ticket (a usage error without it). For this "
        "enrollment only; never over a copy this node checked; the result says whether the "
        "copy was replaced. Only when the authority is on this machine (a node:NAME ticket): "
        "over the network the channel to it refuses its history while that copy stands.",
    )(func)
    return click.option(
        "--authority-pin",
        "pin",
        metavar="PIN",
        callback=_authority_pin,
        help="The authority's pin, IDENTIFIER:KEY, confirmed with its operator (troth authority "
        "list, on its machine): required for a ticket of an authority past 64 changes that this "
        "node has never seen, and with --over-copy; checked whenever given.",
    )(func)


def _authority_pin(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--authority-pin`'s form checked before anything is read: a usage error (exit 2), its
    value cut short, where it was a ConfigError (exit 3: the node's configuration) once the
    ticket was read, echoing all of it (review 68l, enroll 3)."""
    if value is not None:
        try:
            parse_authority_pin(value)
        except ConfigError:
            shown = value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
            raise click.BadParameter(
                f"{shown!r} is not an authority pin: IDENTIFIER:KEY (hex), as troth authority "
                "list prints it",
                ctx,
                param,
            ) from None
    return value


_SHOWN: Final = 80
"""How much of a refused `--authority-pin` its usage error repeats."""


def over_copy_needs_pin(over_copy: bool, pin: str | None) -> None:
    """A usage error (exit 2) for `--over-copy` without `--authority-pin`, before anything is
    read or sent (`troth.enrollment.check_over_copy`: review 68l, enroll 1)."""
    if over_copy and pin is None:
        raise click.UsageError(
            f"--over-copy needs --authority-pin PIN, the authority's pin: {OVER_COPY_NEEDS_PIN}"
        )


def authority_copy_text(data: dict[str, Any], over_copy: bool) -> str:
    """What became of the node's copy of the enrolling authority's history (the result's
    `authority_copy`, troth.enrollment.AuthorityCopy), as lines to add for people: always with
    `--over-copy`, which can succeed while the copy stands (review 68l, enroll 2)."""
    copy = data.get("authority_copy")
    if copy == "replaced":
        return "\nthe ticket's authority history replaced the conflicting copy (recorded refuted)"
    if copy == "stands":
        return (
            "\nNOT replaced: a conflicting copy of the authority's history stands (stored or "
            "linked meanwhile); the ticket's history was not stored"
        )
    if not over_copy:
        return ""
    if copy == "agreed":
        return "\n--over-copy: nothing replaced (the ticket's history agreed with the copy held)"
    return "\n--over-copy: whether the copy was replaced is unknown (the node did not say)"


def authority_option(*, required: bool = True, help_text: str = AUTHORITY_HELP) -> Callable[[F], F]:
    """`--authority AUTHORITY`: a local authority by name or identifier."""
    return click.option(
        "--authority", "authority_ref", required=required, metavar="AUTHORITY", help=help_text
    )


def renamed(old: str, new: str) -> Callable[[F], F]:
    """A spelling this command no longer takes: hidden, and refused with the new spelling (the
    old meaning is never guessed: `--from` meant an identity in one command, a node in another)."""

    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            raise click.UsageError(f"{old} is gone: use {new}", ctx)

    dest = "renamed_" + old.lstrip("-").replace("-", "_")  # never a real parameter's name
    return click.option(old, dest, hidden=True, expose_value=False, callback=refuse, is_eager=True)


def home() -> Path:
    """The troth home ($TROTH_HOME, else the platform data directory). ConfigError (exit 3)
    when it exists and is another user's (not root's) or others can write in it, as `troth
    node start` refuses (`check_kept_dirs`): taken, the first command made it 0700 (TROTH_HOME
    =/tmp, or another user's directory, shut everyone else out) and kept the nodes where its
    owner, or anyone, could rename them away and plant others (review 57d, cli 2). One that
    does not exist yet is made 0700 as before."""
    path = troth_home()
    if path.exists():
        check_kept_dirs(path)
        check_not_taken_over(path)
    return path


def open_cli_node(name: str) -> Node:
    """Open a node; the default node is created (software vault) on first use."""
    return open_node(name, home=home(), create_default=True)


def local_identity(names: Directory, ref: str, node_name: str) -> str:
    """`ref` when node `node_name` holds that identity's key; else NotFound naming the node
    that does (`add --node ...`), or how to create it: what `--as` is checked with before a
    command hands the name to a node runtime."""
    with open_cli_node(node_name) as node:
        return names.local(ref, node)


def open_authority_node(names: Directory, ref: str) -> Node:
    """The node hosting the local authority `ref` (its name or identifier)."""
    return open_node(names.authority(ref).node, home=home())


INPUT_FILE = click.Path(dir_okay=False, allow_dash=True)
"""The click type of an input file argument: a file path, or `-` for stdin."""


class _NamedFile(click.Path):
    """A file the command writes, or reads where it cannot read stdin, by name: `-` and an
    empty name are refused (a usage error, saying why), never taken as a file's name or as
    none. An output wrote a file named `-` where every input reads `-` as stdin, and stdout
    cannot carry the file beside the command's result (review 44c, CLI 2). A file `written`
    (an output, a kept file) refuses stdin's other names too (`_reads_stdin`: /dev/stdin,
    /dev/fd/0, a link to one), which were replaced as paths (review 63e, cli 1); a kept file
    (no `descriptors`) any descriptor's name (/dev/stdout, /dev/fd/N: `_descriptor`)."""

    def __init__(self, dash: str, *, written: bool = True, descriptors: bool = True) -> None:
        super().__init__(dir_okay=False)
        self.dash = dash
        self.written = written
        self.descriptors = descriptors

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "-":
            self.fail(f"- is not a file name here: {self.dash}", param, ctx)
        if self.written and isinstance(value, str) and _reads_stdin(value):
            # stdin by another name (/dev/stdin, /dev/fd/0, a link to it): replaced as a path,
            # as root the machine's /dev/stdin link (review 63e, cli 1)
            self.fail(f"{value} is stdin, which cannot be written: {self.dash}", param, ctx)
        if not self.descriptors and isinstance(value, str) and _descriptor(value) is not None:
            # read by reopening, then written through it: a pipe's read waited for good
            # (review 63e, cli 2)
            self.fail(f"{value} is a descriptor, not a file: {self.dash}", param, ctx)
        if value == "":  # taken for no file at all (review 44c, CLI 5)
            self.fail("an empty file name", param, ctx)
        return super().convert(value, param, ctx)


OUTPUT_FILE = _NamedFile("name a file, or /dev/stdout")
"""The click type of an output file option (--out): a file path; `-` is refused."""
KEPT_FILE = _NamedFile(
    "the file is read, then replaced: name a file (stdin cannot be replaced)", descriptors=False
)
"""The click type of a file read and then rewritten (trace verify --checkpoint): `-` is refused:
taken as a name, a checkpoint piped in was ignored, unanchored (review 44c, CLI 4)."""
FEED_FILE = _NamedFile("a feed is read from a file, not stdin: name the file", written=False)
"""The click type of a revocation feed file (--feed), read as a stream of pages: `-` is refused:
taken as a name, a file named `-` planted in the working directory was read where a script
piped the fresh feed in, and a revocation it named was missed (review 55g, cli 3)."""


_LINK_HOPS = 8  # symlinks followed from an input's name to one of stdin's


def _reads_stdin(value: str | None) -> bool:
    """Whether input `value` is stdin: `-`, or a path naming it (review 55m, cli 1: compared
    as text, /dev//stdin, /proc/PID/fd/0 or a symlink to /dev/stdin was another file): one of
    stdin's names (`_descriptor`), or a symlink followed, each target read from its link's
    directory as the system reads it, to one."""
    if value is None:
        return False
    if value == "-":
        return True
    path = value
    for _ in range(_LINK_HOPS):
        if _descriptor(path) == 0:  # (its directory resolved: review 63q, cli 1)
            return True
        try:
            target = os.readlink(path)
        except (OSError, ValueError):  # not a symlink, or no such file: a file of its own
            return False
        # its target read from the link's directory as the system reads it: `L/..` is the
        # parent of what L names, never the text's (review 63x, cli 1)
        path = os.path.join(os.path.dirname(path) or ".", target)
    return False


def stdin_once(**inputs: str | None) -> None:
    """A usage error (exit 2) when more than one of a command's `inputs` (option name: its
    value) is `-`: stdin is read once, by the first; the second read nothing, and the command
    judged that (exit 1), a secret's value piped in parsed as its configuration (review 46b,
    cli 2). Stdin's other names count as `-` (/dev/stdin reopens a file redirected to stdin:
    a configuration was stored as the secret's value, review 55g, cli 11), however spelled
    (`_reads_stdin`). Called before any input is read."""
    dashes = [name for name, value in inputs.items() if _reads_stdin(value)]
    if len(dashes) > 1:
        raise click.UsageError(
            f"{' and '.join(dashes)} both read stdin (-), which can be read once: "
            "give all but one of them as a file"
        )


def feed_inputs(feed_files: tuple[str, ...]) -> dict[str, str]:
    """`stdin_once`'s inputs for the --feed files: a feed named /dev/stdin (or another of stdin's
    names; `-` is refused) read it again after the chain from `-` had, and the verdict was
    "revocation feed invalid", exit 1 (review 65h, cli 5). A name given twice is two inputs
    (`--feed /dev/stdin --feed /dev/stdin` read stdin twice, and was one key: review 65m, cli 1)."""
    inputs: dict[str, str] = {}
    for number, name in enumerate(feed_files, 1):
        key = f"--feed {name}"
        inputs[key if key not in inputs else f"{key} (--feed #{number})"] = name
    return inputs


def stdin_bytes() -> BinaryIO:
    """Standard input, as bytes: OSError (exit 4) when it is closed (`<&-`: Python has no
    sys.stdin, and reading it died in an AttributeError traceback, exit 1, read by a script
    as a verdict; review 46b, cli 3)."""
    if sys.stdin is None:
        raise OSError("cannot read stdin: stdin is closed (give the input as a file)")
    return sys.stdin.buffer


def read_input(path: str, limit: int, what: str) -> bytes:
    """The bytes of input file `path` (`-`: stdin), read up to `limit` before anything parses
    them: a larger input (`/dev/zero`) fails at once, after reading limit + 1 bytes.

    Failures are `OSError` (exit 4, I/O): the input was not read, so there is no verdict on it
    (exit 1 means "read, and invalid")."""
    return read_bounded(path, limit, what, stream=stdin_bytes() if path == "-" else None)


def attributes_of(assignments: tuple[str, ...], option: str = "--attr") -> Attributes:
    """The attributes `--attr KEY=VALUE` options give (a usage error saying what is wrong with
    them, as it was before `Attributes` raised ArgumentError: review 51e, exports 8)."""
    try:
        return Attributes.from_assignments(assignments)
    except ArgumentError as exc:
        raise click.BadParameter(exc.got, param_hint=option) from None


def text_value(limit: int) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback for an option whose text troth signs or records (a purpose, a caveat, a
    reason; each value of a repeated option): at most `limit` characters of valid Unicode
    (argv's bytes that are not UTF-8 are lone surrogates), else a usage error, exit 2. The
    library refused them as a request or link it judged invalid, exit 1: a verdict (review
    55g, cli 9)."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        for text in value if isinstance(value, tuple) else (value,):
            if text is None:
                continue
            if len(text) > limit:
                raise click.BadParameter(f"longer than {limit} characters", ctx, param)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise click.BadParameter(
                    "not valid Unicode text (bytes that are not UTF-8)", ctx, param
                ) from None
        return value

    return check


def _to_seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def duration_option(*names: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option taking a duration (90, 30s, 10m, 1h30m, 2d), converted to seconds."""
    return click.option(*names, type=str, callback=_to_seconds, metavar="DURATION", **kwargs)


_DESCRIPTOR_NAME = re.compile(
    r"/dev/(stdin|stdout|stderr)"
    r"|/(?:dev|proc/self|proc/thread-self|proc/([0-9]{1,9})(?:/task/[0-9]{1,9})?)/fd/([0-9]{1,9})"
)
"""The names of this process's own descriptors: written through the descriptor itself."""
_DEVICES = "/dev"
_STREAMS = {"stdin": 0, "stdout": 1, "stderr": 2}


def _descriptor(path: str) -> int | None:
    """The descriptor `path` names (/dev/stdout, /dev/stderr, /dev/stdin, /dev/fd/N,
    /proc/self/fd/N, /proc/thread-self/fd/N, /proc/PID/fd/N of this process), however spelt:
    `//dev/stdout`, `/dev/./stdout`, `../dev/stdout` from / name the same link, which was
    written as a path, so replaced by a file (review 61q, cli 2: as root, the machine's
    /dev/stdout); so do `D/stdout` for a link D to /dev or a directory /dev is mounted on
    (review 63q, cli 1: its directory is resolved, not only its text read). The name itself is
    not followed: a link planted at `path` is replaced, never written through."""
    try:
        name = os.path.abspath(path)  # (keeps a leading `//`: POSIX leaves it to the system)
        joined = os.path.join(os.getcwd(), path)  # `..` kept: resolved after the links before
    except OSError:  # (the working directory removed)
        name = joined = os.path.normpath(path)
    joined = _without_trailing(joined)
    found = _descriptor_named(name) if name.startswith("/") else None
    if found is None and joined.startswith("/"):
        found = _descriptor_named(_in_resolved_directory(joined))
    return found


def _without_trailing(name: str) -> str:
    """`name` without its trailing `/` and `/.` (never `/..`), as `Path`, which writes an
    --out, drops them: split there, `L/../stderr/` had the descriptor's own name as its
    directory (its real path the descriptor's tty or pipe) and named none, and the write
    replaced `L/../stderr`, as root the machine's /dev/stderr (review 63u2, cli 1)."""
    while len(name) > 1:
        if name.endswith("/"):
            name = name[:-1]
        elif name.endswith("/."):
            name = name[:-2]
        else:
            break
    return name or "/"


def _descriptor_named(name: str) -> int | None:
    """The descriptor absolute `name` names as text (`_DESCRIPTOR_NAME`), or None."""
    found = _DESCRIPTOR_NAME.fullmatch("/" + name.lstrip("/"))
    if found is None:
        return None
    stream, pid, number = found.groups()
    if pid is not None and int(pid) != os.getpid():  # another process's: a path of its own
        return None
    return int(number) if number is not None else _STREAMS[stream]


def _in_resolved_directory(name: str) -> str:
    """Absolute `name` in its directory's real path (symlinks resolved; a directory /dev is
    mounted on as /dev), its last part as it is. `name` as given, not made normal as text: the
    system takes `L/../stdout` for a link L to /dev/pts as /dev/stdout, where its text, made
    normal, is `./stdout` (review 63x, cli 1: as root the machine's /dev/stdout replaced)."""
    directory, base = os.path.split(name)
    try:
        real = os.path.realpath(directory)
        if os.path.samestat(os.stat(real), os.stat(_DEVICES)):
            real = _DEVICES
    except (OSError, ValueError):  # not there (no descriptor's), or a name too long
        return name
    return os.path.join(real, base)


def names_stdout(path: object) -> bool:
    """Whether `path`, an --out, is written to stdout (/dev/stdout, /dev/fd/1,
    /proc/self/fd/1): the file is then all stdout carries (`json_command`)."""
    return isinstance(path, str) and _descriptor(path) == 1


def names_terminal(path: str) -> bool:
    """Whether `path`, an --out, is a terminal: one of this process's descriptors that is one
    (/dev/stdout on one), or a terminal's device (/dev/tty, /dev/pts/N, a link to one: review
    61q, cli 1, it got a record's controls raw); a document is then written as to a terminal
    (`terminal_json`). A character device is opened to ask (O_NOCTTY: never made this
    process's controlling terminal; O_NONBLOCK: no wait for a serial line's carrier)."""
    descriptor = _descriptor(path)
    try:
        if descriptor is not None:
            return os.isatty(descriptor)
        if not stat.S_ISCHR(os.stat(path).st_mode):
            return False
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def _held_file(descriptor: int) -> Path | None:
    """The file `descriptor`, named by an --out (/dev/fd/N, /proc/self/fd/N), is open on (None:
    a pipe, a terminal, or not known): one the command itself holds, its node's database, was
    written into, its header overwritten by the export (review 61s, cli 1: `--out /dev/fd/3`
    with no `3>` redirect is the first file the command opens)."""
    try:
        held = os.readlink(f"/proc/self/fd/{descriptor}")
    except OSError:
        return None
    return Path(held) if held.startswith("/") else None


def _open_special(target: Path, text: bool) -> IO[Any]:
    """`target`, a special file, opened to write in place: a device, or a FIFO or socket of
    this user (another user's FIFO, planted in a shared directory, would get the output:
    refused; review 34d, CLI files 1)."""
    fd = os.open(target, os.O_WRONLY | os.O_NOFOLLOW | os.O_NOCTTY)
    try:
        info = os.fstat(fd)
        if not (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)) and (
            info.st_uid != os.geteuid()
        ):
            raise OSError(
                f"it is a FIFO of another user (uid {info.st_uid}), who would read the output: "
                "choose another name"
            )
        return os.fdopen(fd, "w" if text else "wb")
    except BaseException:
        os.close(fd)
        raise


def outside_home(target: Path) -> None:
    """ValueError (exit 2) when `target`, a file a command is to write, is inside troth's home's
    node directories (`$TROTH_HOME/nodes`, through symlinked directories too): there troth
    keeps node databases, configurations and vault keys, and an --out naming one replaced it
    (`--out .../vault.key`: every key sealed under it lost; review 49g, cli 7). The home itself
    holds nothing else of troth's, and the README's story writes its files there."""
    nodes_dir = troth_home() / "nodes"
    if inside_nodes(target, nodes_dir):
        raise ValueError(
            f"{target} is inside troth's home, in {nodes_dir.resolve()}, where troth keeps node "
            "databases, configurations and vault keys: write it elsewhere"
        )


def _outside_devices(target: Path) -> None:
    """ValueError (exit 2) when `target`, a file to be replaced, is in /dev as the system
    resolves its directory (links, then `..`, as the replace itself does): a name there that is
    no descriptor this process holds is one spelt in a way `_descriptor` does not know, and
    replacing it replaced, as root, the machine's /dev/stdout (reviews 63e, 63q, 63x, 63u2: each
    found another spelling). Whatever the spelling, nothing in /dev is replaced by a file, nor
    in a directory on /dev's own filesystem (`/dev/char`, `/dev/disk/by-uuid`: links to
    devices; review 63w2, cli 1), nor below /dev as the system resolves it where /dev is no
    filesystem of its own (a static /dev on the root's: a chroot, a container; review 64d, cli
    1); /dev/shm, a filesystem of its own or not, is written."""
    try:
        directory = os.stat(target.parent)
        devices = os.stat(_DEVICES)
        root = os.stat("/")
        resolved = os.path.realpath(target.parent)
    except (OSError, ValueError):  # not there: the write says why
        return
    on_devices = directory.st_dev == devices.st_dev and devices.st_dev != root.st_dev
    below = os.path.commonpath([resolved, _DEVICES]) == _DEVICES
    if os.path.samestat(directory, devices) or (
        (on_devices or below) and not _shared_memory(resolved)
    ):
        raise ValueError(
            f"{target} names a file in {_DEVICES}, which is never replaced by one (a device or "
            "a descriptor by another name): name a file elsewhere"
        )


def _shared_memory(resolved: str) -> bool:
    """Whether `resolved` (a directory, links resolved) is /dev/shm or below it (where a /dev
    that is one tmpfs, with no shm mount of its own, keeps its shared memory files)."""
    shared = f"{_DEVICES}/shm"
    return os.path.commonpath([resolved, shared]) == shared


@contextlib.contextmanager
def output_file(path: str, *, text: bool = False) -> Iterator[IO[Any]]:
    """A file to write `path` through, atomically (`troth.node.home.private_file_writer`: a
    crash leaves the old file or the new one, and a symlink planted at `path` is replaced,
    never followed, so it cannot make a command overwrite, say, a key file). A device (/dev/null)
    or a FIFO of this user at `path` is written in place, and so is one of this process's
    descriptors named by /dev/stdout, /dev/stderr, /dev/fd/N or /proc/self/fd/N (symlinks:
    they were replaced, review 34d, CLI files 2); a FIFO of another user is refused. OSError
    naming the file and the reason: exit 4. A file inside troth's node directories is refused
    (ValueError: exit 2, `outside_home`), named or held by a descriptor named (`_held_file`),
    and so is any other name in /dev (`_outside_devices`)."""
    target = Path(path)
    descriptor = _descriptor(path)
    held = target if descriptor is None else _held_file(descriptor)
    if held is not None:
        outside_home(held)
    try:  # (a name too long to look at: review 57d, cli 5)
        special = not target.is_symlink() and target.exists() and not target.is_file()
        if descriptor is not None:  # the descriptor itself: no reopening, no truncation
            with os.fdopen(os.dup(descriptor), "w" if text else "wb") as file:
                yield file
        elif special:  # /dev/null, a FIFO: written in place, never replaced
            with _open_special(target, text) as file:
                yield file
        else:
            _outside_devices(target)
            with private_file_writer(target, text=text) as file:
                yield file
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_output(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically (`output_file`)."""
    with output_file(path) as file:
        file.write(data)


def node_running(name: str) -> bool:
    """Whether node `name` runs as a daemon."""
    from troth.node.daemon import node_status  # asyncio: on use only

    return bool(node_status(home(), name)["running"])
