"""Review 54t, secrets 1: an XML answer whose declaration is in ASCII names a charset whose
bytes are not ASCII's (`<?xml version="1.0" encoding="IBM037"` then EBCDIC, or UTF-7 in its
base64 form): an XML reader (libxml2, which lxml reads with) detects ASCII from its first
bytes, then reads the rest in the declared charset, so the secret echoed in it reaches the
agent while its bytes are not the secret's (the redaction's patterns miss it). Review 54l
refused such a charset in the `Content-Type` label (secrets 3) and an XML document in EBCDIC
from its first byte (secrets 4), not one declared in the document itself."""

from __future__ import annotations

import base64

import pytest

from troth.errors import SecretError, SecretFailure
from troth.secrets.engines.http_inject import _clean_response

_TOKEN = "s3cr3tTokenValue0123456789"
SECRET = f"Bearer {_TOKEN}".encode()


def _utf7_base64(text: str) -> bytes:
    """`text` in UTF-7's base64 form (every character, as a UTF-7 writer may)."""
    return b"+" + base64.b64encode(text.encode("utf-16-be")).rstrip(b"=") + b"-"


def _ebcdic(declaration: bytes) -> bytes:
    return declaration + ("?><echo>" + SECRET.decode() + "</echo>").encode("cp037")


def _utf7(declaration: bytes) -> bytes:
    return declaration + b"?><echo>" + _utf7_base64(SECRET.decode()) + b"</echo>"


BODIES = [
    _ebcdic(b'<?xml version="1.0" encoding="IBM037"'),
    _ebcdic(b"<?xml version='1.0' encoding = 'cp500'"),
    _ebcdic(b'\xef\xbb\xbf<?xml version="1.0" encoding="ebcdic-cp-us"'),
    _utf7(b'<?xml version="1.0" encoding="UTF-7"'),
    _utf7(b'<?xml version="1.0"\n  encoding="utf-7" standalone="yes"'),
]


@pytest.mark.parametrize("body", BODIES)
def test_an_xml_answer_declaring_a_charset_not_ascii_is_refused(body: bytes) -> None:
    assert SECRET not in body
    assert _TOKEN.encode() not in body
    for headers in ([], [("Content-Type", "application/xml; charset=utf-8")]):
        with pytest.raises(SecretError) as caught:
            _clean_response(200, "OK", headers, body, SECRET)
        assert caught.value.reason is SecretFailure.UPSTREAM_FAILED


@pytest.mark.parametrize(
    "declaration",
    [
        b'<?xml version="1.0"?>',
        b'<?xml version="1.0" encoding="UTF-8"?>',
        b"<?xml version='1.0' encoding='iso-8859-1' standalone='no'?>",
        b'<?xml version="1.0" encoding="windows-1252"?>',
    ],
)
def test_an_xml_answer_declaring_an_ascii_charset_passes_redacted(declaration: bytes) -> None:
    body = declaration + b"<echo>" + SECRET + b"</echo>"
    cleaned = _clean_response(200, "OK", [], body, SECRET)
    assert _TOKEN.encode() not in cleaned.body
