"""Review 22h (secrets): http-inject's redaction matches a run of backslashes in the secret as
one run of raw backslashes, as sent or doubled, taken possessively (review 22f, secrets 2).
Possessively, it also takes the backslash that begins the next character's escape: Python's
`backslashreplace` (what `sys.stderr` writes, and `str.encode("ascii", "backslashreplace")`)
leaves a backslash as it is and writes a non-ASCII character as `\\xe9`, `\\u20ac` or
`\\U0001f511`. A secret with a backslash just before a non-ASCII character (`tok\\én-...`),
echoed so (`tok\\\\xe9n-...`: the secret's backslash, then the escape's), is no longer found —
the run takes both backslashes and the escape's `xe9` is not `é` — and reaches the agent whole
(it was found before the run matcher: the backslash matched once, the escape after it).

The test asserts the correct behaviour and was a strict xfail until the run was matched together
with the character after it (each count of backslashes tried, the pair then kept).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from troth.secrets.engines.http_inject import _clean_response

_SECRETS = ["Bearer tok\\\u00e9n-7f3a", "Bearer tok\\\u20acn-7f3a", "Bearer tok\\\\\U0001f511-7f3a"]
_SHOWN: dict[str, Callable[[str], str]] = {
    "backslashreplace": lambda s: s.encode("ascii", "backslashreplace").decode(),
    "as sent": lambda s: s,
    "unicode_escape": lambda s: s.encode("unicode_escape").decode(),
    "json": json.dumps,
}


@pytest.mark.parametrize("secret", _SECRETS)
def test_a_backslash_before_an_escaped_character_is_redacted(secret: str) -> None:
    """Each way of echoing the secret, `backslashreplace` too, is redacted from an answer."""
    for name, shown in sorted(_SHOWN.items()):
        body = f"bad token: {shown(secret)}".encode()
        cleaned = _clean_response(401, "Unauthorized", [], body, secret.encode()).body
        assert shown(secret).encode() not in cleaned, name
