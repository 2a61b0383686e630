"""How commands report: `--json` to stdout, human text to stdout, diagnostics to stderr, and
one exit code per error class (0 ok, 1 invalid/denied, 2 usage, 3 config, 4 I/O)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from troth.errors import (
    ConfigError,
    ConflictError,
    CredentialError,
    CryptoError,
    DecodeError,
    IdentityError,
    NotFound,
    StorageError,
    TrothError,
    VaultError,
)

__all__ = [
    "EXIT_CONFIG",
    "EXIT_INVALID",
    "EXIT_IO",
    "EXIT_USAGE",
    "Reporter",
    "escape_text",
    "exit_code",
    "json_command",
    "kv",
]

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_IO = 4

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
    )
)
_ESCAPES_KEEPING_NEWLINES = {k: v for k, v in _ESCAPES.items() if k != ord("\n")}


def escape_text(text: object, *, keep_newlines: bool = False) -> str:
    """`text` made safe for a terminal: control characters (C0 including newline and CR, DEL,
    C1 including ESC sequences' CSI) and bidi controls become visible escapes (`\\n`,
    `\\x1b`, `\\u202e`), so text from a document cannot forge, erase or reorder lines.

    Every document-derived value in human output goes through here; `--json` output does not
    need it (JSON escapes control characters). Backslashes are left as they are: a literal
    `\\n` typed into a purpose reads the same as an escaped newline, but it cannot break a
    line."""
    table = _ESCAPES_KEEPING_NEWLINES if keep_newlines else _ESCAPES
    return str(text).translate(table)


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, DecodeError | CryptoError | IdentityError | ConflictError):
        return EXIT_INVALID
    if isinstance(exc, NotFound | ValueError):
        return EXIT_USAGE
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, StorageError | VaultError | OSError):
        return EXIT_IO
    return EXIT_INVALID


def error_object(exc: BaseException) -> dict[str, Any]:
    data: dict[str, Any] = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, IdentityError):
        data.update(reason=exc.reason.value, change=exc.change, detail=exc.detail)
    return data


def invalid_object(exc: IdentityError | CredentialError) -> dict[str, Any]:
    """What `verify` commands print for something that did not verify."""
    where = {"change": exc.change} if isinstance(exc, IdentityError) else {"link": exc.link}
    return {"valid": False, "reason": exc.reason.value, **where, "detail": exc.detail}


class Reporter:
    """Prints a command's result in the format the user asked for."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def result(self, data: dict[str, Any] | list[Any], text: str | None = None) -> None:
        if self.as_json:
            click.echo(json.dumps(data, indent=2, sort_keys=False))
        elif text is not None:
            # commands escape each document-derived value (newlines too); this catches any
            # other control or bidi character before it reaches a terminal
            click.echo(escape_text(text, keep_newlines=True))

    def info(self, text: str) -> None:
        """Progress and notes for people: stderr, never mixed into --json output."""
        click.echo(escape_text(text, keep_newlines=True), err=True)

    def fail(
        self, exc: BaseException, code: int | None = None, payload: dict[str, Any] | None = None
    ) -> NoReturn:
        """Report `exc` on stderr (with --json, also `payload` or an error object on stdout)
        and exit with its code."""
        code = exit_code(exc) if code is None else code
        if self.as_json:
            click.echo(json.dumps(payload or error_object(exc), indent=2))
        message = exc.diagnostics() if isinstance(exc, TrothError) else str(exc)
        click.echo(f"troth: {escape_text(message)}", err=True)
        sys.exit(code)


def json_command(func: Callable[..., R]) -> Callable[..., R]:
    """Add `--json` and map troth's errors to exit codes; the command gets a `reporter`."""

    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @functools.wraps(func)
    def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> Any:
        reporter = Reporter(as_json)
        try:
            return func(*args, reporter=reporter, **kwargs)
        except (TrothError, ValueError, OSError) as exc:
            reporter.fail(exc)

    return wrapper


def kv(pairs: dict[str, Any]) -> str:
    """Human output: aligned `key: value` lines, each value escaped (`escape_text`)."""
    width = max(len(k) for k in pairs)
    return "\n".join(f"{k + ':':<{width + 1}} {escape_text(v)}" for k, v in pairs.items())
