"""Review 54v, errors: an error that quotes text the caller or a peer gave (a name, a host, a
path, a reason) could hold a lone surrogate: what Python makes of bytes that are not UTF-8 in
argv, a file name or an environment variable (`"\\udcff"`), or text a Python caller or a peer
passes. The error was right, but its text was no UTF-8: `print(exc)`, `str(exc).encode()` or
a log line to a UTF-8 stream raised UnicodeEncodeError instead of reporting it.

- errors 1: the Python API. `Node.serve(listen=("\\ud800", 0))` raised the right ConfigError
  (`cannot listen on ...`), as did `Node.open` under a `$TROTH_HOME` of bytes that are not
  UTF-8 (`cannot create directory ...`), but their text could not be encoded or printed.
- errors 2: a peer's or a document's text in a typed error's `detail`, `reasons`, `messages`
  or `record` (Denied, CredentialError, IdentityError, AuthorityError, PolicyError,
  ChannelError, TraceError, SecretError): the same; and a service handler whose error quoted
  such text was answered nothing, for the answer could not be encoded (`failure_response`
  raised a DecodeError, `cannot encode value`).
- errors 3: a log line of such an error to a UTF-8 stream was lost (logging's "--- Logging
  error ---" instead).
- errors 6: a peer's error answer (failed, busy, denied, no route) was raised with its text as
  it came, newlines and escape sequences too: a node logging it (a trace batch not delivered,
  a policy push refused) wrote the peer's lines into node.log as if they were its own.
- errors 4: the CLI's `--json` error object of a path from argv, or of a `$TROTH_HOME`, that
  is not UTF-8 held a lone surrogate as a `\\udcff` JSON escape: JSON that strict parsers
  (I-JSON, RFC 7493 section 2.1; troth's own decoder) refuse.
- errors 5: `escape_text`, through which the CLI's human output goes, left lone surrogates as
  they were: a stdout that encodes strictly (a UTF-8 locale) raised on them.

Was a strict xfail each until TrothError's text, the typed errors' quoted fields and
`cut_text` gave lone surrogates as `\\udcff` escapes (`troth.errors.encodable_text`), the
CLI's error objects likewise, and `escape_text` escaped them as it escapes control characters;
and (errors 6) until `result_of` gave a peer's error text on one line (`one_line_text`).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import troth
from troth.cli.output import error_object, escape_text
from troth.clock import FixedClock
from troth.errors import (
    ArgumentError,
    AuthorityError,
    AuthorityFailure,
    ChannelError,
    ChannelFailure,
    ConfigError,
    CredentialError,
    CredentialFailure,
    Denied,
    IdentityError,
    IdentityFailure,
    PolicyError,
    PolicyFailure,
    RemoteError,
    SecretError,
    SecretFailure,
    TraceError,
    TraceFailure,
    TrothError,
    cut_text,
)
from troth.node.services.protocol import (
    BUSY,
    DENIED,
    FAILED,
    NO_ROUTE,
    decode_response,
    error_response,
    failure_response,
    result_of,
)

LONE = "a\udcffb"
SRC = str(Path(troth.__file__).resolve().parents[1])


def _strings(value: Any) -> list[str]:
    """Every string of a JSON value, keys too."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- errors 1: the Python API ---------------------------------------------------------------------


def test_serve_on_a_host_that_is_not_unicode_says_so_in_utf8(clock: FixedClock) -> None:
    async def serve(node: troth.Node) -> None:
        async with node.serve(listen=("\ud800", 0)):
            pass

    # refused as an argument before any socket (review 59e, api 2: a ConfigError from the
    # socket before, as docs/python.md promises for text with a lone surrogate)
    with troth.Node.open("agents", clock=clock) as node, pytest.raises(ArgumentError) as raised:
        asyncio.run(serve(node))
    assert str(raised.value).startswith("Node.serve: listen must be text (no lone surrogate)")
    assert _encodes(str(raised.value))


def test_a_home_that_is_not_utf8_is_said_in_utf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_bytes(b"")
    monkeypatch.setenv("TROTH_HOME", os.fsdecode(os.fsencode(tmp_path) + b"/file/\xff"))
    with pytest.raises(ConfigError) as raised:
        troth.Node.open("x")
    assert "cannot create directory" in str(raised.value)
    assert "file/\\udcff" in str(raised.value)
    assert _encodes(str(raised.value))
    print(raised.value)  # what the review did: it raised UnicodeEncodeError on a strict stdout


# -- errors 2: a peer's text in a typed error's fields ---------------------------------------------

ERRORS: dict[str, Callable[[str], TrothError]] = {
    "ConfigError": lambda t: ConfigError(f"cannot read {t}"),
    "RemoteError": lambda t: RemoteError(t),
    "Denied": lambda t: Denied((f"peer {t} refused", t)),
    "CredentialError": lambda t: CredentialError(CredentialFailure.MALFORMED, t, link=1),
    "IdentityError": lambda t: IdentityError(IdentityFailure.MALFORMED, t, change=0),
    "AuthorityError": lambda t: AuthorityError(AuthorityFailure.REQUEST_INVALID, t),
    "PolicyError": lambda t: PolicyError(PolicyFailure.POLICIES_INVALID, t, (t, "x")),
    "ChannelError": lambda t: ChannelError(ChannelFailure.PEER_NOT_ALLOWED, t),
    "TraceError": lambda t: TraceError(TraceFailure.MALFORMED, t, index=1, record=t),
    "SecretError": lambda t: SecretError(SecretFailure.BAD_REQUEST, t),
    "ArgumentError": lambda t: ArgumentError("f", "x", "text", t),
}


def _texts_of(exc: TrothError) -> list[str]:
    fields = [str(exc), exc.diagnostics()]
    for name in ("detail", "record"):
        value = getattr(exc, name, None)
        if isinstance(value, str):
            fields.append(value)
    for name in ("reasons", "messages"):
        fields.extend(getattr(exc, name, ()))
    return fields


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_an_error_quoting_a_lone_surrogate_is_utf8(kind: str) -> None:
    exc = ERRORS[kind](LONE)
    assert all(_encodes(text) for text in _texts_of(exc)), [ascii(t) for t in _texts_of(exc)]
    assert "a\\udcffb" in str(exc)


@pytest.mark.parametrize("kind", ["RemoteError", "Denied"])
def test_a_handler_error_quoting_a_lone_surrogate_is_answered(kind: str) -> None:
    answer = failure_response(ERRORS[kind](LONE), 7)
    assert b"a\\udcffb" in answer


# -- errors 3: log lines ---------------------------------------------------------------------------


def test_a_log_line_of_such_an_error_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # a lost line is not raised
    out = io.BytesIO()
    stream = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("troth.test54v")
    log.addHandler(handler)
    try:
        log.error("%s", ConfigError(f"cannot listen on {LONE}:0: no"))
    finally:
        log.removeHandler(handler)
    assert out.getvalue() == b"cannot listen on a\\udcffb:0: no\n"


# -- errors 6: a peer's error text, one line ------------------------------------------------------

FORGED = "x\n2026-12-05 12:00:00,000 troth.node admin logged in\x1b[2K"


@pytest.mark.parametrize("kind", [FAILED, BUSY, DENIED, NO_ROUTE])
def test_a_peers_error_text_is_one_line(kind: str) -> None:
    answer = error_response(kind, f"busy: {FORGED}", (FORGED,), request=3)
    with pytest.raises(TrothError) as raised:
        result_of(decode_response(answer)[1])
    for text in _texts_of(raised.value):
        assert "\n" not in text, ascii(text)
        assert "\x1b" not in text, ascii(text)
    assert "x\\n2026" in str(raised.value)


# -- errors 4-5: the CLI ---------------------------------------------------------------------------


def _troth(args: list[bytes], home: bytes) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONIOENCODING": "utf-8:strict"}
    env_bytes = {k.encode(): v.encode() for k, v in env.items()}
    env_bytes[b"TROTH_HOME"] = home
    return subprocess.run(
        [sys.executable.encode(), b"-m", b"troth.cli.main", *args],
        capture_output=True,
        timeout=90,
        env=env_bytes,
    )


def test_a_json_error_of_a_path_not_utf8_is_strict_json(tmp_path: Path) -> None:
    home = os.fsencode(tmp_path / "home")
    result = _troth([b"credential", b"show", b"--json", os.fsencode(tmp_path) + b"/\xff"], home)
    assert result.returncode == 4, result
    data = json.loads(result.stdout)
    assert data["error"] == "OSError"
    assert "\\udcff" in data["message"]
    assert all(_encodes(s) for s in _strings(data)), data


def test_a_json_error_of_a_home_not_utf8_is_strict_json(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    result = _troth([b"identity", b"list", b"--json"], os.fsencode(tmp_path) + b"/file/\xff")
    assert result.returncode == 3, result
    data = json.loads(result.stdout)
    assert data["error"] == "ConfigError"
    assert all(_encodes(s) for s in _strings(data)), data


def test_escape_text_escapes_lone_surrogates() -> None:
    assert escape_text(LONE) == "a\\udcffb"
    assert escape_text(f"x\n{LONE}", keep_newlines=True) == "x\na\\udcffb"


# -- a property: any text, wherever an error quotes it ---------------------------------------------

TEXTS = st.text(max_size=20) | st.builds(
    lambda head, lone, tail: f"{head}{lone}{tail}",
    st.text(max_size=8),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.text(max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(text=TEXTS)
def test_any_quoted_text_makes_utf8_errors(text: str) -> None:
    for make in ERRORS.values():
        exc = make(text)
        for shown in _texts_of(exc):
            shown.encode("utf-8")
        data = json.loads(json.dumps(error_object(exc), indent=2))
        for string in _strings(data):
            string.encode("utf-8")
        if _encodes(text):  # ordinary text is quoted as it is
            assert text in str(exc)
    cut_text(text, 5).encode("utf-8")
    escape_text(text).encode("utf-8")
    escape_text(text, keep_newlines=True).encode("utf-8")
