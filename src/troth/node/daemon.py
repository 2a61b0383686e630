"""Running a node in the background: a process with a pid file, a log file, a status file and
a control socket in its node directory (docs/protocols.md, "Node control").

    <node dir>/node.pid      the daemon's pid
    <node dir>/node.log      its log (appended)
    <node dir>/status.json   pid and its start time ("starting" while the runtime starts); once
                             ready, its listening address and control socket path
    <node dir>/node.lock     held (flock) by the one process running the node
    <node dir>/control.sock  Unix socket, 0600 in a 0700 directory: CBOR requests from the CLI

The daemon is `python -m troth.node NAME [--tcp-listen HOST:PORT]` (troth.node.__main__): the
node does not depend on the CLI.

The control protocol: a transport frame (troth.transport.framing) holding the CBOR map
{"op": text, "args": map}; the answer {"ok": bool, "result": any} or {"ok": false, "error": text,
"kind": error class name, "reasons": [text]} (reasons: a denial's). The operations are the
typed table in troth.node.control.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from troth import limits
from troth.child_path import child_environment
from troth.encoding import cbor
from troth.encoding.ijson import load_json
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    ChannelError,
    ChannelFailure,
    ConfigError,
    DecodeError,
    Denied,
    NotFound,
    RemoteError,
    RoutingError,
    StorageError,
    TrothError,
    Unreachable,
    VaultError,
)
from troth.node.config import NodeConfig, update_config
from troth.node.home import check_kept_dirs, open_private_log, read_private_file, write_private_file
from troth.node.lock_holders import _alive, _flock_holders, _has_open, _holds_flock_on
from troth.node.node import node_dir, open_node
from troth.node.process import own_user, peer_credentials, send_signal, start_time, still
from troth.node.socket_dir import _socket_path
from troth.transport.framing import FRAME_HEADER, check_header, frame

if TYPE_CHECKING:
    from troth.node.runtime import NodeRuntime

__all__ = [
    "answer_frame",
    "control",
    "control_failure",
    "node_status",
    "record_listen",
    "run_transient",
    "serve",
    "start_daemon",
    "stop_daemon",
]

START_TIMEOUT: Final = 15.0
STOP_TIMEOUT: Final = 10.0
CONTROL_IO_TIMEOUT: Final = 10.0
"""Seconds a control client has to send its whole request, and then to take its whole answer:
past either, the node drops the connection (a client that never read its answer held the
connection, its handler and the answer, up to MAX_CONTROL_ANSWER, forever: review 46b,
control 1)."""
log = logging.getLogger("troth.node.daemon")


def _dir(home: Path, name: str) -> Path:
    path = node_dir(home, name)
    if not (path / "node.json").is_file():
        raise NotFound(f"no node {name!r} (create it with: troth node create {name})")
    return path


def _kept_dir(home: Path, name: str) -> Path:
    """Node `name`'s directory, to run it in: it, the nodes directory and the home writable by
    no one else (review 53u, control 4)."""
    path = _dir(home, name)
    check_kept_dirs(path, path.parent, home)
    return path


def _parse_listen(text: str) -> tuple[str, int]:
    from troth.routing import Address

    return Address("tcp", text).host_port()


def record_listen(home: Path, name: str, listen: str) -> NodeConfig:
    """Record in node `name`'s configuration that it listens on `listen` (host:port), so its
    tickets carry that address whether or not it runs (a port of 0 is not recorded)."""
    _parse_listen(listen)  # ValueError / RoutingError for a bad address
    if listen.endswith(":0"):
        return _config(home, name)
    return update_config(_dir(home, name) / "node.json", lambda config: config.with_listen(listen))


def _is_our_node(pid: int, name: str, directory: Path) -> bool:
    """Whether `pid` is alive, this user's, and is node `name` of `directory`: the process
    holding its node.lock; not one holding another flock (another node: every node holds its
    own), unless its own descriptors say it holds node.lock (`_holds_flock_on`: where
    /proc/locks names the lock's device otherwise than stat, btrfs or an overlay, review 35b,
    node home 1); else, where /proc/locks does not tell, one whose command line is `python -m
    troth.node NAME` (or `troth node start NAME --foreground`) with node.lock open (review 49i,
    lifecycle 1). A stale pid may be reused: by
    another user's process naming the node in its command line on purpose (the node's is
    world-readable), which kept the node from starting and failed its stop (review 34d, node
    home 5), or by the node of that name in another home, which `troth node stop` then
    stopped (review 34d, node home 6)."""
    if not _alive(pid):
        return False
    try:
        if os.stat(f"/proc/{pid}").st_uid != os.geteuid():
            return False
        holders = _flock_holders(directory / "node.lock")
        if holders is not None and pid in holders[0]:
            return True
        if holders is not None and pid in holders[1]:
            # /proc/locks names a device as the file system's superblock does, stat() as the
            # file system reports it: they differ on btrfs and on an overlay over two file
            # systems, where the node's own lock matched nothing (review 35b, node home 1)
            return _holds_flock_on(pid, directory / "node.lock")
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:  # gone since `_alive` (a killed node's zombie reaped meanwhile:
        # it was taken for a running node, lead session 72), unless there is no /proc at all
        return not Path("/proc/self").exists()
    except OSError:
        return True  # no /proc: trust the pid file
    started = b"troth.node" in words or (b"node" in words and b"start" in words)  # foreground
    if not (started and name.encode() in words):
        return False
    # the command line alone is no proof: a process of this user that holds no lock and only
    # names the node (`ssh box troth node start web`) was taken for it, and `troth node stop`
    # sent it SIGTERM (review 49i, lifecycle 1); the node has its node.lock open as long as it
    # runs, whatever pids /proc/locks shows (another pid namespace's)
    opened = _has_open(pid, directory / "node.lock")
    return opened if opened is not None else holders is None


def node_status(home: Path, name: str) -> dict[str, Any]:
    """Whether node `name` runs, and its status file (pid, listening, control socket)."""
    directory = _dir(home, name)
    status_file = directory / "status.json"
    try:  # as written (write_private_file); opened without waiting and checked after it is
        # open (a FIFO swapped in after an `is_file` check hung it: review 46f, left)
        data = read_private_file(status_file, limits.MAX_NODE_FILE_BYTES)
        status = load_json(data, max_bytes=limits.MAX_NODE_FILE_BYTES, what=str(status_file))
    except (DecodeError, ConfigError):  # missing, not a regular file, not ours, too large
        return {"name": name, "running": False}
    pid = status.get("pid") if isinstance(status, dict) else None
    if type(pid) is not int or pid <= 0:
        return {"name": name, "running": False}
    started = status.get("started")
    if not _is_our_node(pid, name, directory) or not still(pid, started):
        # (a start time that is not the pid's: another process was given it, one that may
        # hold node.lock too, `troth vault rekey`: review 50e, lifecycle 2)
        return {"name": name, "running": False, "stale_pid": pid}
    if status.get("starting") is True:  # it holds the lock and starts (review 50e,
        # lifecycle 1): not running yet (no control socket), but `troth node stop` stops it
        return {"name": name, "running": False, "starting": True, "pid": pid, "started": started}
    return {"name": name, "running": True, **status}


def start_daemon(home: Path, name: str, tcp_listen: str | None) -> dict[str, Any]:
    """Start node `name` in the background (listening on `tcp_listen`, recorded in its
    configuration once the node listens there, else on the configured address); its status
    once it is ready. A start that fails, or is killed before the node is up, leaves the
    recorded address as it was."""
    running = node_status(home, name)
    if running["running"] or running.get("starting"):
        raise ConfigError(
            f"node {name!r} is already {'running' if running['running'] else 'starting'}"
        )
    _kept_dir(home, name)
    if tcp_listen:
        _parse_listen(tcp_listen)  # ValueError / RoutingError for a bad address
    # The node is given the address as an argument; it is recorded only once the node is up:
    # recorded first and put back when the start failed, a start killed meanwhile (SIGKILL)
    # never put it back, and every later start failed on it (review 49m, cli 4)
    status = _spawn(home, name, tcp_listen)
    if tcp_listen:
        record_listen(home, name, tcp_listen)
    return status


def _config(home: Path, name: str) -> NodeConfig:
    path = _dir(home, name) / "node.json"
    return NodeConfig.from_json(read_private_file(path), path)


def _spawn(home: Path, name: str, tcp_listen: str | None) -> dict[str, Any]:
    """Run `python -m troth.node NAME` in the background; its status once it is ready."""
    directory = _dir(home, name)
    # status.json is left as it is (a start that lost a race to another deleted the running
    # node's, which ran on hidden from status, stop and every later start: review 34d, node
    # home 1); the wait below takes only a status file written since (the daemon replaces it:
    # a new inode) naming the pid spawned here (a stale one may name it: pids are reused)
    stale = _file_id(directory / "status.json")
    # -P: `-m` puts the working directory first on the module path, and a module planted in
    # the directory the command ran in (/tmp, a shared checkout) ran in the daemon, which holds
    # the vault key and the PIN (review 53f, node home 4; as the policy child, gates/policies)
    command = [sys.executable, "-P", "-m", "troth.node", name]
    if tcp_listen:
        command += ["--tcp-listen", tcp_listen]
    log_file = directory / "node.log"
    with open_private_log(log_file) as out:  # never through a link (review 53u, control 3)
        before = out.tell()  # what this start writes begins here (older runs' lines are above)
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            # in its node's directory, with no empty PYTHONPATH entry: neither means the
            # directory the start ran in (review 53q, import path 1)
            cwd=directory.absolute(),
            env=child_environment({**os.environ, "TROTH_HOME": str(home.absolute())}),
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            # its status file, told from a stale one by its start time (the daemon writes it
            # twice, starting and then up, so the second may be given the stale file's freed
            # inode: review 50e, lifecycle 1), else, without /proc, by its inode
            fresh = _file_id(directory / "status.json") not in (None, stale)
            started = start_time(process.pid)
            if fresh or started is not None:
                status = node_status(home, name)
                if (
                    status["running"]
                    and status.get("pid") == process.pid
                    and (fresh or status.get("started") == started)
                ):
                    return status
            if process.poll() is not None:
                with open(log_file, "rb") as log:
                    log.seek(before)
                    tail = log.read().decode(errors="replace").splitlines()[-5:]
                raise ConfigError(f"node {name!r} failed to start: " + " | ".join(tail))
            time.sleep(0.05)
    except KeyboardInterrupt:
        # Ctrl-C while it comes up: the start is abandoned, so is the node (its own session,
        # which the terminal's Ctrl-C never reaches, ran on: review 49g, cli 3)
        _end(process)
        raise
    process.kill()
    raise ConfigError(f"node {name!r} did not become ready within {START_TIMEOUT} s")


def _end(process: subprocess.Popen[bytes]) -> None:
    """Stop a node process this start spawned: SIGTERM (the daemon stops as `troth node stop`
    stops it), SIGKILL when it has not ended within STOP_TIMEOUT."""
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _file_id(path: Path) -> tuple[int, int] | None:
    """The device and inode of the file at `path` (None when there is none)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def stop_daemon(home: Path, name: str) -> bool:
    """Stop a running node, or one starting (it stops once started: review 50e, lifecycle 1):
    SIGTERM, then SIGKILL after a grace period. False if neither. The process is signalled
    only while it is still the one that wrote the status file (its start time: review 50e,
    lifecycle 2)."""
    status = node_status(home, name)
    if not (status["running"] or status.get("starting")):
        return False
    pid, started = int(status["pid"]), status.get("started")
    directory = _dir(home, name)

    def running() -> bool:
        return _is_our_node(pid, name, directory) and still(pid, started)

    with contextlib.suppress(ProcessLookupError):  # ended since it was looked at: stopped
        # (the signal failed the stop: review 49i, lifecycle 3)
        send_signal(pid, started, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and running():
            time.sleep(0.05)
        if running():
            send_signal(pid, started, signal.SIGKILL)
    # what a killed node left, removed only while no node runs: a node started since the stop
    # saw this one end had its status file deleted, and ran on hidden from status, stop and
    # every later start (review 49i, lifecycle 2); a SIGKILL drops the lock at once
    with contextlib.suppress(ConfigError), _running_lock(directory, name):
        for leftover in ("status.json", "node.pid"):
            (directory / leftover).unlink(missing_ok=True)
    return True


async def _read_frame(reader: asyncio.StreamReader, limit: int) -> bytes:
    length = check_header(await reader.readexactly(FRAME_HEADER.size), limit)
    return await reader.readexactly(length)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """A control request's frame, whole within CONTROL_IO_TIMEOUT; DecodeError when it did not
    come whole (the client closed, or sent too slowly): the client's failure, logged as such in
    one line, never with a traceback (review 46b, control 2)."""
    try:
        return await asyncio.wait_for(
            _read_frame(reader, limits.MAX_CONTROL_REQUEST), CONTROL_IO_TIMEOUT
        )
    except (asyncio.IncompleteReadError, TimeoutError) as exc:
        why = "closed" if isinstance(exc, asyncio.IncompleteReadError) else "too slow"
        log.info("control request not received whole: the client %s", why)
        raise DecodeError(
            f"the request did not come whole within {CONTROL_IO_TIMEOUT:g} s"
        ) from None


def _control_frame(value: Any, limit: int) -> bytes:
    """`value` in a control frame (transport framing) of at most `limit` bytes: a request
    MAX_CONTROL_REQUEST, an answer MAX_CONTROL_ANSWER (review 34d, control 2; DecodeError
    past it)."""
    return frame(cbor.encode(value), limit)


def answer_frame(answer: dict[str, Any]) -> bytes:
    """The frame of control answer `answer`; of an error answer saying why when the CLI would
    refuse it (`_decode_answer`'s limits: bytes, items, depth), never one sent to be refused
    (review 64z, formats 1: it read answers with the generic 1 MiB and 65,536 items)."""
    try:
        data = _control_frame(answer, limits.MAX_CONTROL_ANSWER)
        cbor.check_limits(data[FRAME_HEADER.size :], max_items=limits.MAX_CONTROL_ANSWER_ITEMS)
    except DecodeError as exc:  # too large: done, but said as an error, never dropped
        unsent = DecodeError(f"the node's answer could not be sent: {exc}", exc.problem)
        return _control_frame(error_answer(unsent), limits.MAX_CONTROL_ANSWER)
    return data


def _decode_answer(data: bytes) -> Any:
    """A control answer's value, read within what the node may send (`answer_frame`)."""
    return cbor.decode(
        data, max_bytes=limits.MAX_CONTROL_ANSWER, max_items=limits.MAX_CONTROL_ANSWER_ITEMS
    )


async def _connect(path: str, op: str, timeout: float) -> socket.socket:
    """A connection to the node's control socket at `path`, waiting up to `timeout` seconds for
    room in its listen backlog: a full backlog (a node busy or hung) fails a connect with
    EAGAIN, never "in progress" (unix(7)), and asyncio returned the socket unconnected, whose
    peer (pid 0) was taken for another process's planted listener (review 55r, control 1)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        client = socket.socket(socket.AF_UNIX)
        client.setblocking(False)
        try:
            client.connect(path)
            return client
        except BlockingIOError:
            client.close()
        except BaseException:
            client.close()
            raise
        if loop.time() >= deadline:
            raise TimeoutError(
                f"the node did not take the control connection of {op} within {timeout:g} s "
                f"(busy or hung: see its node.log); {op} was not sent"
            )
        await asyncio.sleep(0.05)


async def _sent(writer: asyncio.StreamWriter, op: str) -> None:
    """Wait for the request written to be taken by the node, at most CONTROL_IO_TIMEOUT (the
    node drops a request not whole by then); TimeoutError past it. Unbounded, a node that
    accepted the connection and read nothing (hung) held the client for ever once the request
    filled the socket's buffer (review 70i, leftovers 4)."""
    try:
        await asyncio.wait_for(writer.drain(), CONTROL_IO_TIMEOUT)
    except TimeoutError:
        raise TimeoutError(
            f"the node did not take the {op} request within {CONTROL_IO_TIMEOUT:g} s (hung or "
            "busy: see its node.log); it drops a request not whole by then, so it was not done"
        ) from None


async def _answer(reader: asyncio.StreamReader, op: str, timeout: float) -> bytes:
    """The node's answer frame to `op`, within `timeout`; TimeoutError saying so past it."""
    try:
        return await asyncio.wait_for(_read_frame(reader, limits.MAX_CONTROL_ANSWER), timeout)
    except TimeoutError:  # asyncio's says nothing (review 34d, control 3)
        raise TimeoutError(
            f"the node did not answer {op} within {timeout:g} s (hung or slow: it may still "
            "do it; see its node.log)"
        ) from None


async def _control_request(
    path: str, op: str, arguments: dict[str, Any], timeout: float, pid: object = None
) -> Any:
    """`op` asked of the node listening at `path`: only when the kernel says the listener is
    process `pid` (the node's status names it, and it holds the node's lock), else nothing is
    sent (a listener another user put at the socket's name was handed tickets: review 53u,
    control 1). Where the platform cannot tell the listener, the socket's directory is relied
    on alone."""
    reader, writer = await asyncio.open_unix_connection(sock=await _connect(path, op, timeout))
    try:
        peer = peer_credentials(writer.get_extra_info("socket"))
        if peer is not None and peer[0] != pid:  # (a pid the caller's namespace cannot see: 0)
            raise ConnectionRefusedError(
                f"the process listening at {path} (pid {peer[0]}) is not the node (pid {pid}): "
                f"another process took the control socket's name; {op} was not sent to it"
            )
        writer.write(_control_frame({"op": op, "args": arguments}, limits.MAX_CONTROL_REQUEST))
        await _sent(writer, op)
        answer = _decode_answer(await _answer(reader, op, timeout))
    except asyncio.IncompleteReadError:
        # the node stopped or died while it ran the request: an I/O error (exit 4), never the
        # EOFError click takes for an aborted prompt (review 34d, control 1)
        raise ConnectionResetError(
            f"the node closed its control connection without an answer ({op}: it stopped or "
            "died while running it, which may or may not have been done; see its node.log)"
        ) from None
    finally:
        writer.close()
    if not isinstance(answer, dict):
        raise RemoteError(f"malformed control answer: {answer!r}")
    if answer.get("ok") is True:
        return answer.get("result")
    raise answer_error(answer)


_ANSWER_ERRORS: Final[dict[str, type[Exception]]] = {
    cls.__name__: cls
    for cls in (
        ConfigError,
        DecodeError,
        NotFound,
        StorageError,
        VaultError,
        RoutingError,
        Unreachable,
        ValueError,
        OSError,
        ConnectionError,
        ConnectionRefusedError,
        ConnectionResetError,
        BrokenPipeError,
        FileNotFoundError,
        PermissionError,
        TimeoutError,
    )
}


def error_answer(exc: Exception) -> dict[str, Any]:
    """The control answer for a failed request: the message, the error class, a denial's
    reasons, and the typed reason of a channel or authority refusal."""
    answer: dict[str, Any] = {"ok": False, "error": str(exc), "kind": type(exc).__name__}
    if isinstance(exc, Denied):
        answer["reasons"] = list(exc.reasons)
    if isinstance(exc, ChannelError | AuthorityError):
        answer.update(reason=exc.reason.value, detail=exc.detail)
    return answer


def control_failure(exc: Exception) -> dict[str, Any]:
    """A control request failed with `exc`: logged (a bug with its traceback), and the
    caller's answer."""
    if isinstance(exc, OSError):  # the client gone, a disk full: one line (review 50e,
        log.warning("control request failed: %s", exc)  # lifecycle 4), not a traceback
    elif not isinstance(exc, TrothError | ValueError):
        log.error("control request failed", exc_info=exc)
    return error_answer(exc)


def answer_error(answer: dict[Any, Any]) -> Exception:
    """The error a failed control answer reports, as the class that raised it where that
    decides the exit code (a daemon's I/O error stays an I/O error), else RemoteError; the
    message as it came, never prefixed twice."""
    kind, message = str(answer.get("kind")), str(answer.get("error"))
    reasons, reason, detail = answer.get("reasons"), answer.get("reason"), answer.get("detail")
    if kind == "Denied" and isinstance(reasons, list):
        return Denied(tuple(str(r) for r in reasons))
    with contextlib.suppress(ValueError):
        if kind == "ChannelError" and isinstance(reason, int) and isinstance(detail, str):
            return ChannelError(ChannelFailure(reason), detail)
        if kind == "AuthorityError" and isinstance(reason, str) and isinstance(detail, str):
            return AuthorityError(AuthorityFailure(reason), detail)
    if kind in _ANSWER_ERRORS:
        return _ANSWER_ERRORS[kind](message)
    return RemoteError(message)


def control(
    home: Path,
    name: str,
    op: str,
    arguments: dict[str, Any],
    timeout: float = 30.0,
    *,
    status: dict[str, Any] | None = None,
) -> Any:
    """Ask running node `name` to do `op` (NotFound when it is not running); `status` is its
    `node_status` when the caller already read it."""
    status = status or node_status(home, name)
    if not status["running"]:
        raise ConfigError(f"node {name!r} is not running: start it with: troth node start {name}")
    path = status.get("control")
    if not isinstance(path, str) or not path:  # damaged, or rewritten: said, never a TypeError
        # (an internal error, exit 70, for every command asking the node: review 55r, control 2)
        status_file = _dir(home, name) / "status.json"
        raise ConfigError(f"{status_file} names no control socket: {path!r}")
    return asyncio.run(_control_request(path, op, arguments, timeout, status.get("pid")))


def run_transient(home: Path, name: str, op: str, arguments: dict[str, Any]) -> Any:
    """Do `op` with an in-process runtime of node `name` (no listener) and stop it."""
    from troth.node.control import perform  # the runtime: imported by what runs one only
    from troth.node.runtime import NodeRuntime

    async def run() -> Any:
        with open_node(name, home=home) as node:
            runtime = NodeRuntime(node)
            await _start(runtime, None)
            try:
                return await perform(runtime, op, arguments, via="this process")
            finally:
                await runtime.stop()

    return asyncio.run(run())


@contextlib.contextmanager
def _running_lock(directory: Path, name: str) -> Iterator[None]:
    """Hold `<node dir>/node.lock` exclusively while the node runs (ConfigError if another
    process holds it: a second runtime on one node directory would take over its control
    socket and status files). The OS drops the lock when the process dies, even by SIGKILL.
    The node directory itself is locked too: a node.lock deleted while the node runs let a
    second start lock a new file and run beside it (review 45, node lock); node.lock stays the
    file `troth node status` finds in /proc/locks."""
    fds: list[int] = []
    try:
        for path, flags in (
            (directory, os.O_RDONLY | os.O_DIRECTORY),
            (directory / "node.lock", os.O_RDWR | os.O_CREAT),
        ):
            fds.append(os.open(path, flags, 0o600))
            try:
                fcntl.flock(fds[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(
                    f"node {name!r} is already running: stop it first (troth node stop {name})"
                ) from None
        yield
    finally:
        for fd in fds:
            os.close(fd)


async def serve(
    home: Path, name: str, listen: tuple[str, int] | None, *, record: str | None = None
) -> None:
    """Run node `name` until SIGTERM or SIGINT, listening on `listen` (else on its configured
    `listen` address, if any): the body of `python -m troth.node`. `record` (a foreground
    `troth node start --tcp-listen`) is recorded as the node's address once it listens there,
    as the background start records it (review 50e, lifecycle 3).

    Its status file says it is starting from the moment it holds the node's lock, and a
    SIGTERM or SIGINT while it starts stops it once started (`troth node stop` meanwhile said
    "not running" and the node came up: review 50e, lifecycle 1); it records the process's
    start time, so a later process given the same pid is not taken for it (lifecycle 2)."""
    # the runtime is imported here, not with the module: `troth node status`, `start` and
    # `stop` (the control client, the status file) start without it
    from troth.node.control import perform
    from troth.node.runtime import NodeRuntime

    directory = _kept_dir(home, name)
    socket_path = _socket_path(directory)
    with _running_lock(directory, name), open_node(name, home=home) as node:
        socket_path.unlink(missing_ok=True)  # a crashed daemon's: the lock says none runs
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        own = {"pid": os.getpid(), "started": start_time(os.getpid())}
        write_private_file(directory / "node.pid", f"{os.getpid()}\n".encode())
        write_private_file(
            directory / "status.json", json.dumps({**own, "starting": True}).encode()
        )
        try:
            if listen is None and node.config.listen:
                listen = _parse_listen(node.config.listen)
            runtime = NodeRuntime(node)
            await _start(runtime, listen)

            def up() -> None:
                if record:
                    record_listen(home, name, record)

            await _run(runtime, perform, directory, socket_path, own, stop, up)
        finally:
            for leftover in (socket_path, directory / "status.json", directory / "node.pid"):
                leftover.unlink(missing_ok=True)


async def _start(runtime: NodeRuntime, listen: tuple[str, int] | None) -> None:
    """Start `runtime`; a start failing partway (its listen address in use) stops what it
    started before it fails (the services, the trace client, the storage thread: review 62s,
    upkeep 1, they ran on while node.db closed under them)."""
    try:
        await runtime.start(listen)
    except BaseException:
        try:
            await runtime.stop()
        except Exception:  # logged: the start's own error is the one said
            log.exception("stopping node %s after its failed start", runtime.name)
        raise


async def _run(
    runtime: NodeRuntime,
    perform: Callable[[NodeRuntime, str, dict[Any, Any]], Awaitable[Any]],
    directory: Path,
    socket_path: Path,
    own: dict[str, Any],
    stop: asyncio.Event,
    up: Callable[[], None],
) -> None:
    """The started node: its control socket and status file, until `stop` (at once when it
    was set while the node started); `up()` once it is up, before its status says so."""
    name = runtime.name

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            own_user(writer.get_extra_info("socket"))  # review 53u, control 2
            request = cbor.decode(await _read_request(reader))
            if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                raise DecodeError("a control request is a map with an op")
            raw = request.get("args") or {}
            if not isinstance(raw, dict):
                raise DecodeError("control arguments are a map")
            result = await perform(runtime, request["op"], raw)
            answer: dict[str, Any] = {"ok": True, "result": result}
        except Exception as exc:  # any failure is the caller's answer, never the daemon's end
            answer = control_failure(exc)
        data = answer_frame(answer)
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            try:
                await asyncio.wait_for(writer.drain(), CONTROL_IO_TIMEOUT)
            except TimeoutError:  # a client not reading its answer: dropped, with it
                log.info("control answer not taken within %g s: dropped", CONTROL_IO_TIMEOUT)
                writer.transport.abort()
        writer.close()

    server = None
    try:
        if stop.is_set():  # stopped while it started: it does not come up
            log.info("node %s stopped while it started", name)
            return
        up()
        server = await asyncio.start_unix_server(handle, str(socket_path))
        os.chmod(socket_path, 0o600)
        status = {
            **own,
            "listening": None if runtime.listening is None else "{}:{}".format(*runtime.listening),
            "control": str(socket_path),
            "identifier": runtime.status()["identifier"],
        }
        write_private_file(directory / "status.json", json.dumps(status).encode())
        log.info("node %s running: %s", name, status)
        await stop.wait()
    finally:
        log.info("node %s stopping", name)
        if server is not None:
            server.close()
        await runtime.stop()
