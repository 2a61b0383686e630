"""How commands report: `--json` to stdout, human text to stdout, diagnostics to stderr, and
one exit code per error class (0 ok, 1 invalid/denied, 2 usage, 3 config, 4 I/O, 70 internal)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, TypeVar

import click

from troth import limits
from troth.cli.names import Directory
from troth.errors import (
    AuthorityError,
    ChannelError,
    ChannelFailure,
    ConfigError,
    ConflictError,
    CredentialError,
    Denied,
    IdentityError,
    NotFound,
    StorageError,
    TrothError,
    Unreachable,
    VaultError,
    encodable_text,
    one_line_text,
)
from troth.node import troth_home

__all__ = [
    "EXIT_CONFIG",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_IO",
    "EXIT_USAGE",
    "REPORTED_ERRORS",
    "Explained",
    "Progress",
    "Reporter",
    "error_object",
    "escape_text",
    "exit_code",
    "forget_result",
    "internal_error",
    "invalid_object",
    "json_command",
    "json_text",
    "kv",
    "logs_as_warnings",
    "logs_dropped",
    "message_for",
    "terminal_json",
    "to_stderr",
    "write_stdout",
]

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_IO = 4
EXIT_INTERNAL = 70
"""An unexpected exception, a bug in troth: EX_SOFTWARE (sysexits.h); never 1, which a script
reads as a verdict (review 55o, cli 1)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C: 128 + SIGINT, the shell's code for it; never 1, which a script reads as a verdict
(review 44c, interrupt 1)."""

R = TypeVar("R")

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES: dict[int, str] = {
    code: _NAMED_ESCAPES.get(chr(code), f"\\x{code:02x}")
    for code in (*range(0x20), *range(0x7F, 0xA0))  # C0, DEL, C1 (NEL, CSI, ...)
}
_ESCAPES.update(
    (code, f"\\u{code:04x}")
    for code in (
        0x061C,  # ARABIC LETTER MARK
        0x200E,  # LEFT-TO-RIGHT MARK
        0x200F,  # RIGHT-TO-LEFT MARK
        0x2028,  # LINE SEPARATOR
        0x2029,  # PARAGRAPH SEPARATOR
        *range(0x202A, 0x202F),  # bidi embeddings and overrides LRE RLE PDF LRO RLO
        *range(0x2066, 0x206A),  # bidi isolates LRI RLI FSI PDI
        *range(0xD800, 0xE000),  # lone surrogates: argv's or a file name's bytes not UTF-8,
        # which no UTF-8 stream writes (review 54v, errors 5)
    )
)
_ESCAPES_KEEPING_NEWLINES = {k: v for k, v in _ESCAPES.items() if k != ord("\n")}
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in _ESCAPES if code != ord("\n")}


def escape_text(text: object, *, keep_newlines: bool = False) -> str:
    """`text` made safe for a terminal: control characters (C0 including newline and CR, DEL,
    C1 including ESC sequences' CSI) and bidi controls become visible escapes (`\\n`,
    `\\x1b`, `\\u202e`), so text from a document cannot forge, erase or reorder lines; lone
    surrogates too (`\\udcff`), so that it is text a UTF-8 stream can write.

    Every document-derived value in human output goes through here; `--json` output does not
    need it (JSON escapes control characters). Backslashes are left as they are: a literal
    `\\n` typed into a purpose reads the same as an escaped newline, but it cannot break a
    line."""
    table = _ESCAPES_KEEPING_NEWLINES if keep_newlines else _ESCAPES
    return str(text).translate(table)


def terminal_json(text: str) -> str:
    """JSON text `text` with the characters a terminal acts on (DEL, C1, bidi controls; JSON
    escapes C0 itself) as `\\u0085`-style escapes, which keep it the same JSON: how a document
    is written to a terminal (`Reporter.document`, an --out naming one: review 61n, cli 5)."""
    return text.translate(_JSON_ESCAPES)


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """`data` as JSON text: how every `--json` result, error object and JSON document the CLI
    prints or writes is made. Each string, map keys too, as valid Unicode (`encodable_text`:
    a lone surrogate, from argv, a file name or $TROTH_HOME whose bytes are not UTF-8, as the
    text `\\udcff`, as error messages show it; its JSON escape `\\udcff` is no character,
    RFC 8259 section 8.2, and strict parsers refuse it: review 55g, cli 1); NaN and the
    infinities, which are not JSON, refused (ValueError)."""
    return json.dumps(_encodable(data), indent=indent, allow_nan=False)


def _encodable(value: Any) -> Any:
    if isinstance(value, str):
        return encodable_text(value)
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(item) for item in value]
    return value


EXIT_CODES_HELP = """\b
Exit codes:
  0  ok
  1  invalid or denied: something was read and judged (a signature, history, chain,
     ticket), or a node refused
  2  usage: a bad option or value, or a name that does not exist (identity, node,
     authority, member, benchmark)
  3  configuration: a node's setup (its configuration or vault key, a node not running
     or already running, a missing environment variable)
  4  I/O: a file could not be read or written, the network did not answer (connection
     refused or closed, unreachable, timed out), the database or vault failed
  70  internal error: a bug in troth (TROTH_DEBUG=1 prints its traceback)
  130  interrupted (Ctrl-C)"""
"""The exit code table, as `troth --help` prints it (and docs/cli.md, and the README)."""


_NETWORK_FAILURES = frozenset({ChannelFailure.TIMEOUT, ChannelFailure.PEER_CLOSED})
"""A channel that failed as the network did: nothing answered, or the connection under it
closed (a node at its connection limits closes a newcomer's: review 48h, sources 2)."""


def exit_code(exc: BaseException) -> int:
    """The exit code of an error (the table in EXIT_CODES_HELP)."""
    if isinstance(exc, Explained):
        return exit_code(exc.error)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, click.ClickException):
        return exc.exit_code
    if isinstance(exc, ChannelError) and exc.reason in _NETWORK_FAILURES:
        return EXIT_IO
    if isinstance(exc, ConflictError):  # a name taken, a conditional write lost: a verdict
        return EXIT_INVALID
    if isinstance(exc, NotFound | ValueError):
        return EXIT_USAGE
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, StorageError | VaultError | OSError | Unreachable):
        return EXIT_IO
    return EXIT_INVALID


class Explained(Exception):
    """A library error with a message for people (the thing, the reason, the next step); its
    exit code and `--json` object are the original error's."""

    def __init__(self, error: BaseException, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def error_object(exc: BaseException, message: str | None = None) -> dict[str, Any]:
    """What `--json` prints for a failed command: the error class, the message for people and,
    for a refused history or chain, its typed reason."""
    if isinstance(exc, Explained):
        return error_object(exc.error, exc.message)
    message = encodable_text(
        message or (exc.format_message() if isinstance(exc, click.ClickException) else str(exc))
    )
    data: dict[str, Any] = {
        "ok": False,
        "error": type(exc).__name__,
        "message": message,
        "exit_code": exit_code(exc),
    }
    if isinstance(exc, IdentityError):
        data.update(reason=exc.reason.value, change=exc.change, detail=exc.detail)
    elif isinstance(exc, CredentialError):
        data.update(reason=exc.reason.value, link=exc.link, detail=exc.detail)
    elif isinstance(exc, AuthorityError):
        data.update(reason=exc.reason.value, detail=exc.detail)
    elif isinstance(exc, ChannelError):
        data.update(reason=exc.reason.name.lower(), detail=exc.detail)
    elif isinstance(exc, Denied):
        data.update(reasons=list(exc.reasons))
    return data


def invalid_object(exc: IdentityError | CredentialError) -> dict[str, Any]:
    """What `verify` commands print for something that did not verify."""
    where = {"change": exc.change} if isinstance(exc, IdentityError) else {"link": exc.link}
    return {"valid": False, "reason": exc.reason.value, **where, "detail": exc.detail}


def message_for(exc: BaseException) -> str:
    """The text people read for `exc` (a channel refusal says who refused whom and why)."""
    if isinstance(exc, Explained):
        return exc.message
    if isinstance(exc, ChannelError) and exc.reason is ChannelFailure.PEER_NOT_ALLOWED:
        return exc.detail or str(exc)
    if isinstance(exc, Denied) and exc.reasons:
        return "; ".join(exc.reasons)
    if isinstance(exc, click.ClickException):
        return exc.format_message()
    if isinstance(exc, OSError) and exc.filename and exc.strerror:  # not "[Errno 2] ..."
        return f"cannot use {exc.filename}: {exc.strerror}"
    return exc.diagnostics() if isinstance(exc, TrothError) else str(exc)


def to_stderr(text: str, *, nl: bool = True) -> None:
    """`text` on stderr, best effort: a stderr that is closed (`2>&-`), a pipe whose reader has
    gone or a full disk loses it, and nothing else changes. The command's exit code is its own:
    a note or an error that failed to print raised again, an uncaught traceback or click's
    EPIPE exit, 1, read as a verdict (review 61n, cli 2)."""
    with contextlib.suppress(OSError, ValueError):  # (ValueError: a stream closed in-process)
        click.echo(text, err=True, nl=nl)


def _stderr_is_terminal() -> bool:
    """Whether stderr is a terminal: not when it is closed (`2>&-`: Python has no sys.stderr,
    and asking it was an AttributeError, exit 70, before a verifier had verified anything;
    review 61n, cli 1)."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (OSError, ValueError):
        return False


class Progress:
    """A counter on stderr for work that takes more than a second: rewritten in place on a
    terminal, a line per tenth of the work otherwise (a log stays short)."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.tty = _stderr_is_terminal()
        self._next = 0

    def note(self, text: str) -> None:
        """A line of progress that is not a count ("committing ..."): stderr, like the count."""
        to_stderr(text)

    def __call__(self, done: int, total: int | None = None) -> None:
        """`done` of `total` (default: the total given at the start) are done."""
        total = self.total if total is None else total
        if self.tty:
            to_stderr(f"\r{self.label} {done}/{total}", nl=done >= total)
        elif done >= total or done >= self._next:
            to_stderr(f"{self.label} {done}/{total}")
            self._next = done + max(1, total // 10)


STDOUT_CLOSED = "cannot write the result: stdout is closed (redirect it, e.g. to /dev/null)"
"""The error of a command run with stdout closed (`>&-`): Python has no sys.stdout there and
click.echo wrote nothing, silently, so a command's result (a ticket, a checkpoint) was lost
with exit 0, or it died in a traceback writing to None (review 49g, cli 2)."""


def write_stdout(text: str) -> None:
    """`text` and a newline on stdout (click.echo), where a stdout that is closed or fails (a
    full disk, /dev/full) is an OSError saying so (exit 4), never a silent loss or a traceback
    (review 49g, cli 2)."""
    if sys.stdout is None:
        raise OSError(STDOUT_CLOSED)
    try:
        click.echo(text)
    except OSError as exc:
        raise OSError(f"cannot write the result to stdout: {exc.strerror or exc}") from None


def write_stdout_chunks(chunks: Iterable[str]) -> None:
    """`chunks` on stdout as they come (no newline added), failing as `write_stdout` does."""
    if sys.stdout is None:
        raise OSError(STDOUT_CLOSED)
    try:
        for chunk in chunks:
            click.echo(chunk, nl=False)
    except OSError as exc:
        raise OSError(f"cannot write the result to stdout: {exc.strerror or exc}") from None


def _warning(text: str) -> None:
    to_stderr(f"troth: warning: {escape_text(text, keep_newlines=True)}")


class _Shown:
    """Whether this process's command has its result on stdout, whole or in part (`Reporter`
    sets it, `main` clears it): `internal_error` then writes to stderr, as `Reporter.fail`
    does (review 57k, cli 2: its error object came after the result, two documents)."""

    began = False


def forget_result() -> None:
    """A command begins (`main`): no result of it is on stdout yet."""
    _Shown.began = False


class Reporter:
    """Prints a command's result in the format the user asked for: `--json` to stdout (and
    nothing else anywhere on failure), text to stdout, notes to stderr."""

    def __init__(self, as_json: bool, names: Directory | None = None) -> None:
        self.as_json = as_json
        self._names = names
        self._warnings: list[str] = []
        self._began = False  # a result is on stdout (or part of one): `fail` writes no other
        self.stdout_is_out = False
        """--out is stdout: the result's text goes to stderr, after the file (`json_command`):
        on stdout it followed the file's bytes, and `> FILE` kept both (review 61n, cli 3)."""

    @property
    def names(self) -> Directory:
        """The names this machine knows (read on first use)."""
        if self._names is None:
            self._names = Directory(troth_home())
        return self._names

    def label(self, identifier: object) -> str:
        """An identifier with its local name where one is known."""
        return self.names.label(None if identifier is None else str(identifier))

    def result(self, data: dict[str, Any] | list[Any], text: str | None = None) -> None:
        if self.as_json:
            if self._warnings and isinstance(data, dict):
                data = {**data, "warnings": list(self._warnings)}
            for warning in [] if isinstance(data, dict) else self._warnings:
                _warning(warning)  # a list result has no room for them: stderr
            shown = json_text(data)
            self._begin()
            write_stdout(shown)
        elif text is not None:
            # commands escape each document-derived value (newlines too); this catches any
            # other control or bidi character before it reaches a terminal
            shown = escape_text(text, keep_newlines=True)
            if self.stdout_is_out:
                to_stderr(shown)
                return
            self._begin()
            write_stdout(shown)

    def result_listing(self, data: dict[str, Any], key: str, items: Iterable[Any]) -> None:
        """With --json, `result({**data, key: list(items)})` (`key` in its place in `data`),
        holding one item at a time and printed once all are made (review 56f, exports 1)."""
        from troth.cli.output_stream import json_chunks, spooled_result

        if self.as_json:
            extra = {"warnings": list(self._warnings)} if self._warnings else {}
            spooled_result(json_chunks({**data, **extra}, key, items), self._begin)

    def _begin(self) -> None:
        self._began = True
        _Shown.began = True

    def document(self, text: str, *, escaped: bool = True) -> None:
        """A JSON document the command makes (a proof bundle), on stdout in both modes: the
        characters a terminal acts on (DEL, C1, bidi controls; JSON escapes C0 itself) as
        `\\u0085`-style escapes, which keep it the same JSON. `escaped=False` (stdout is no
        terminal): as it is, the bytes `--out` writes (escaped, a document at its limits could
        be past what its readers take: review 63k, limits 3)."""
        shown = terminal_json(text) if escaped else text
        self._begin()
        write_stdout(shown)

    def info(self, text: str) -> None:
        """Notes for people: stderr, and only without --json (the JSON result says it all)."""
        if not self.as_json:
            to_stderr(escape_text(text, keep_newlines=True))

    def warn(self, text: str) -> None:
        """A warning: something to act on that the command's success does not say (a ticket
        file others could read, a rotation not announced). Without --json on stderr as
        `troth: warning: TEXT`; with --json in the result object's `warnings` list (it was
        dropped there, as a note is, where scripts read the result: review 55g, cli 4)."""
        if self.as_json:
            self._warnings.append(text)
        else:
            _warning(text)

    def fail(
        self, exc: BaseException, code: int | None = None, payload: dict[str, Any] | None = None
    ) -> NoReturn:
        """Report `exc` and exit with its code: with --json one JSON object on stdout (`payload`
        or an error object) and nothing on stderr; else the message on stderr, with every
        identifier in it shown with its local name. With --json and a stdout that cannot be
        written (closed, a full disk), the message goes to stderr as without --json: the error
        is never lost in a traceback (review 49g, cli 2). The warnings given before, in the
        object's `warnings` list, else on stderr before it (review 55m, cli 2: they were lost,
        the failure they may explain reported alone). Once the result is on stdout, whole or
        in part (Ctrl-C while a reader is slow to take it, a failure closing the node after
        it), the error goes to stderr as without --json: a second document after the first,
        or after the part of it written, was no JSON a script could read (review 57d, cli 1)."""
        code = exit_code(exc) if code is None else code
        if self.as_json and not self._began:
            error = payload or error_object(exc)
            if self._warnings:
                error = {**error, "warnings": list(self._warnings)}
            try:
                write_stdout(json_text(error))
            except OSError:
                pass
            else:
                sys.exit(code)
        for warning in self._warnings:  # (--json's stdout could not be written)
            _warning(warning)
        message = self.names.label_text(message_for(exc))
        to_stderr(f"troth: {escape_text(message)}")
        sys.exit(code)


def internal_error(exc: BaseException, as_json: bool) -> NoReturn:
    """Report an exception that is none of troth's errors (a bug) and exit 70: one line on
    stderr naming its type, or with --json an error object (`InternalError`), never its
    message, which may hold paths and values; its traceback on stderr only with TROTH_DEBUG=1
    (review 55o, cli 1: a traceback, exit 1, as if something had been denied). After a result
    on stdout, whole or in part, on stderr as without --json (review 57k, cli 2)."""
    as_json = as_json and not _Shown.began
    message = f"internal error: {one_line_text(type(exc).__name__)}"
    message += " (set TROTH_DEBUG=1 for the traceback)"
    if os.environ.get("TROTH_DEBUG", "") not in ("", "0") and sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            traceback.print_exception(exc)
    if as_json:
        data = {
            "ok": False,
            "error": "InternalError",
            "message": message,
            "exit_code": EXIT_INTERNAL,
        }
        try:
            write_stdout(json_text(data))
        except OSError:
            pass
        else:
            sys.exit(EXIT_INTERNAL)
    to_stderr(f"troth: {message}")
    sys.exit(EXIT_INTERNAL)


REPORTED_ERRORS = (TrothError, ValueError, OSError, Explained)
"""The exceptions a command reports with their exit codes (`exit_code`); any other is a bug
(`internal_error`)."""


def _out_is_stdout(out: object) -> bool:
    """Whether a command's --out (`out`) is written to stdout (`names_stdout`)."""
    if out is None:
        return False
    from troth.cli.common import names_stdout  # (imported by every command with an --out)

    return names_stdout(out)


@contextlib.contextmanager
def logs_dropped(name: str) -> Iterator[None]:
    """The records of logger `name` dropped while the block runs: a handler of their own, not
    passed on to the root's, so Python's last resort (or a `--json` command's warnings:
    `logs_as_warnings`) no longer gets them (the OpenTelemetry SDK's, each retry naming the
    endpoint with its query: review 63e, cli 3)."""
    logger = logging.getLogger(name)
    dropped, propagate = logging.NullHandler(), logger.propagate
    logger.addHandler(dropped)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(dropped)
        logger.propagate = propagate


class _AsWarnings(logging.Handler):
    """A `--json` command's log records of WARNING and above as its reporter's warnings."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__(logging.WARNING)
        self.reporter = reporter
        self.kept = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.kept += 1
        if self.kept > limits.MAX_LOGGED_WARNINGS:  # (a server's run: memory for each)
            if self.kept == limits.MAX_LOGGED_WARNINGS + 1:
                self.reporter.warn("more log warnings: dropped")
            return
        try:
            self.reporter.warn(record.getMessage())
        except Exception:  # (a record that cannot be formatted: as logging's own handlers)
            self.handleError(record)


@contextlib.contextmanager
def logs_as_warnings(reporter: Reporter) -> Iterator[None]:
    """While a `--json` command runs, every logger's records of WARNING and above are
    `reporter`'s warnings (the result's, or the error object's, `warnings` list), the rest
    dropped: Python's last resort wrote them to stderr past the document (review 63e, cli 4),
    and dropped, a warning was the only word of what the operator must act on (the daemons
    running here not told of a revocation: review 63q, cli 2)."""
    handler = _AsWarnings(reporter)
    logging.root.addHandler(handler)
    try:
        yield
    finally:
        logging.root.removeHandler(handler)


def json_command(func: Callable[..., R]) -> Callable[..., R]:
    """Add `--json` and map troth's errors to exit codes; the command gets a `reporter`."""

    @click.option(
        "--json", "as_json", is_flag=True, help="Print the result (or the error) as JSON."
    )
    @functools.wraps(func)
    def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> Any:
        reporter = Reporter(as_json)
        if _out_is_stdout(kwargs.get("out")):  # the file is all stdout carries (61n, cli 3)
            if as_json:
                raise click.UsageError(
                    "--out names stdout, where --json prints the result: name a file for "
                    "--out, or leave --json out (the result then goes to stderr)"
                )
            reporter.stdout_is_out = True
        try:
            if sys.stdout is None:  # before the command does anything it could not report
                raise OSError(STDOUT_CLOSED)
            with logs_as_warnings(reporter) if as_json else contextlib.nullcontext():
                return func(*args, reporter=reporter, **kwargs)
        except REPORTED_ERRORS as exc:
            reporter.fail(exc)
        except KeyboardInterrupt:  # Ctrl-C: exit 130, with --json one error object
            reporter.fail(KeyboardInterrupt("interrupted"))

    return wrapper


def kv(pairs: dict[str, Any]) -> str:
    """Human output: aligned `key: value` lines, each value escaped (`escape_text`); keys read
    with spaces (`valid until`), None values are left out."""
    shown = {k.replace("_", " "): v for k, v in pairs.items() if v is not None}
    width = max((len(k) for k in shown), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {escape_text(v)}" for k, v in shown.items())
