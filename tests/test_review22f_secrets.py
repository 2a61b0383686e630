"""Review 22f (secrets): http-inject's redaction (`_char_forms`) knows a non-ASCII character
of the secret as itself, percent-escaped, `\\u00fc` (JSON) and as HTML references; the C-style
`\\xHH` escape only for an ASCII one (JavaScript's). But the commonest way a Python upstream
shows bytes it decoded is their repr: `f"bad credentials {base64.b64decode(value)}"` writes
`b'svc:Geheimnis-f\\xc3\\xbcr-...'`, one `\\xHH` per UTF-8 byte (Ruby's `inspect` of a binary
string does the same); Python's `unicode_escape` and `ascii()`, and YAML's emitters (PyYAML's
default, allow_unicode=False), write `\\xfc` for U+00FC and `\\U0001f600` past U+FFFF.

1. a Basic secret whose password is not ASCII: an upstream answering the decoded credential
   as a bytes repr, or the password `unicode_escape`d, hands the agent the password (which it
   reads back with one `.decode("unicode_escape")`).

2. (slow) the forms of `\\` are `\\` itself and its JSON and JavaScript escape `\\\\` (the same
   two characters, listed twice): a secret holding a run of backslashes matches a run of
   backslashes in as many ways as there are ways to split it, and a search that fails tries
   them all. A secret with 16 backslashes in a row makes a body of 32 backslashes take ~5 s a
   search (each one more doubles it), on the broker's thread, for any answer an agent makes
   the upstream echo.

Each test asserts the correct behaviour and was a strict xfail until its fix (1: `_char_forms`
also knows `\\xHH` of each UTF-8 byte of a non-ASCII character, and of a character up to
U+00FF, and the 8-digit `\\U` escape; 2: a run of backslashes in the secret is matched as one
run of raw backslashes, as sent or doubled, taken possessively).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld
from tests.support.upstreams import answering, forward_once
from tests.test_secrets_postgres import now, world  # noqa: F401 - `world` is a fixture

_PASSWORD = "Geheimnis-für-den-Dienst-7f3a-\U0001f511"
_BASIC = "Basic " + base64.b64encode(f"svc:{_PASSWORD}".encode()).decode()
_SHOWN: dict[str, Callable[[bytes], str]] = {
    "bytes repr": lambda decoded: f"bad credentials {decoded!r}",  # as f"{decoded}" writes it
    "unicode_escape": lambda decoded: decoded.decode().encode("unicode_escape").decode(),
}


@pytest.mark.parametrize("shown", sorted(_SHOWN))
def test_an_upstream_showing_the_decoded_credential_python_escaped_leaks_no_password(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    shown: str,
) -> None:
    """The upstream decodes the Basic credential and answers it as Python shows it; the agent
    undoes the escapes and reads no password."""

    def page(authorization: str) -> bytes:
        decoded = base64.b64decode(authorization.partition(" ")[2])
        return _SHOWN[shown](decoded).encode()

    answer = forward_once(tmp_path, world, answering(page), _BASIC.encode(), now=now())
    assert answer.status == 401
    read = answer.body.decode("unicode_escape").encode("latin-1", "replace").decode(errors="ignore")
    assert _PASSWORD not in read
    assert _PASSWORD not in answer.body.decode("unicode_escape")


_BACKSLASHES = """\
import sys
from troth.secrets.engines.redaction import echo_pattern as _echo_pattern
run = int(sys.argv[1])
secret = "Bearer " + "\\\\" * run + "x" * 10
pattern = _echo_pattern(secret.encode())
for echo in (secret, secret.replace("\\\\", "\\\\" * 2), secret.replace("\\\\", "%5C")):
    print("echo", pattern.search(echo.encode()) is not None, flush=True)
print("body", pattern.search(b"\\\\" * (2 * run) + b"y"))
"""


def test_a_secret_with_a_run_of_backslashes_is_searched_in_linear_time() -> None:
    """A secret with 20 backslashes in a row: its echoes (as sent, JSON-escaped,
    percent-escaped) are found, and a body of 40 backslashes is searched to its end, in a child
    process given 15 s (before a fix the search takes ~80 s: 16 backslashes take ~5 s, and
    each one more doubles it)."""
    try:
        child = subprocess.run(
            [sys.executable, "-c", _BACKSLASHES, "20"], capture_output=True, text=True, timeout=15
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the search of 40 backslashes did not end within 15 s")
    assert child.returncode == 0, child.stderr[-300:]
    assert child.stdout.split("\n") == ["echo True"] * 3 + ["body None", ""]
