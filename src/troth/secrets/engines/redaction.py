"""What the `http-inject` engine looks for in an upstream's answer before the agent sees it
(docs/secrets.md, "`http-inject`: a proxy that adds the secret"): the patterns of the secret's
echoes (`echo_pattern`: the secret as an upstream's text could carry it, escaped by JSON,
JavaScript, HTML or percent-encoding), and whether a body is one those patterns can read at all
(`check_readable`: not in UTF-16 or UTF-32, labelled or not; review 53t, secrets 7; review 54e,
secrets 2; nor labelled in a charset whose printable ASCII is not ASCII's bytes: review 54l,
secrets 3).
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import functools
import html.entities
import itertools
import re
from collections.abc import Iterable
from typing import Final

from troth.errors import SecretError, SecretFailure

__all__ = ["check_readable", "echo_pattern"]

_F = SecretFailure
# a charset of two or four bytes a character: the redaction reads none (review 53t, secrets 7)
_WIDE_CHARSET: Final = re.compile(r"""charset\s*=\s*["']?\s*(?:utf-?(?:16|32)|ucs-?[24])""", re.I)
_CHARSET: Final = re.compile(r"""charset\s*=\s*["']?\s*([^"';,\s]*)""", re.I)
# WHATWG labels of charsets that read ASCII's bytes as ASCII (UTF-8's, x-user-defined, ...)
# that Python's codecs do not know under any of `_spellings`
_WHATWG_ASCII: Final = frozenset(
    {
        "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8",
        "x-user-defined", "windows-31j", "x-x-big5", "cn-big5", "cseuckr", "csgb2312",
        "gb_2312-80", "cseucpkdfmtjapanese", "csmacintosh", "mac", "koi", "logical", "visual",
        "sun_eu_greek",
    }
)  # fmt: skip
# printable ASCII, and what a stateful or escaping charset reads otherwise (UTF-7's "+AEE-",
# HZ's "~{", an escape codec's backslashes)
_PROBE: Final = bytes(range(0x20, 0x7F)) + b"+AEE-~{~}\\u0041\\x41"
_EBCDIC_XML: Final = b"\x4c\x6f\xa7\x94"
"""`<?xm` in EBCDIC: what an XML reader's detection takes for an EBCDIC document (XML 1.0,
appendix F.1; libxml2's), its echoed secret not the secret's bytes (review 54l, secrets 4)."""
_XML_ENCODING: Final = re.compile(
    rb"""\A(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]{0,1024}?\sencoding\s*=\s*["']([^"'>]{0,80})""", re.I
)
"""An XML declaration's `encoding` (XML 1.0, section 4.3.3), read in ASCII: a reader that
detects ASCII from the first bytes reads the rest of the document in it (libxml2 does: review
54t, secrets 1)."""
_WIDE_BOMS: Final = (
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF32_LE,  # begins with UTF-16 LE's, so either is refused
    codecs.BOM_UTF16_BE,
    codecs.BOM_UTF16_LE,
)


def check_readable(content_types: Iterable[str], body: bytes) -> None:
    """SecretError UPSTREAM_FAILED unless `body` is text the echo patterns read (UTF-8, or
    any single-byte charset): refused when a `Content-Type` of `content_types` names a
    UTF-16, UTF-32 or UCS charset (review 53t, secrets 7), when it begins with a UTF-16 or
    UTF-32 byte order mark (which a WHATWG decoder obeys over any label: WHATWG Encoding,
    "decode"), and when, with no BOM, a NUL among its first four bytes makes a JSON reader
    take it for UTF-16 or UTF-32 (RFC 4627 section 3's detection, which Python's `json.loads`
    of bytes applies). Deny when in
    doubt: a binary answer that begins with a NUL byte is refused too (review 54e, secrets 2:
    an unlabelled UTF-16 answer with a BOM carried the secret past the redaction). A UTF-8
    BOM passes: the text after it is UTF-8. Refused too: a `charset` label whose printable
    ASCII is not ASCII's bytes (`_ascii_charset`; review 54l, secrets 3), a body that
    begins as an XML document in EBCDIC (`_EBCDIC_XML`; review 54l, secrets 4), and one whose
    XML declaration names such a charset (`_XML_ENCODING`; review 54t, secrets 1: an XML
    reader reads the rest of the document in it)."""
    for value in content_types:
        if _WIDE_CHARSET.search(value):
            raise SecretError(_F.UPSTREAM_FAILED, "the upstream answered in UTF-16 or UTF-32")
        for label in _CHARSET.findall(value):
            if not _ascii_charset(label):
                raise SecretError(
                    _F.UPSTREAM_FAILED,
                    "the upstream answered in a charset whose bytes are not ASCII's "
                    f"({label[:40]!r})",
                )
    if body.startswith(_WIDE_BOMS) or 0 in body[:4]:
        raise SecretError(
            _F.UPSTREAM_FAILED,
            "the upstream answered in UTF-16 or UTF-32 (a byte order mark or NUL bytes)",
        )
    if body.startswith(_EBCDIC_XML):  # review 54l, secrets 4
        raise SecretError(_F.UPSTREAM_FAILED, "the upstream answered XML in EBCDIC")
    declared = _XML_ENCODING.match(body)
    if declared is not None:  # review 54t, secrets 1
        label = declared.group(1).decode("ascii", "replace")
        if not _ascii_charset(label):
            raise SecretError(
                _F.UPSTREAM_FAILED,
                "the upstream answered XML declared in a charset whose bytes are not ASCII's "
                f"({label[:40]!r})",
            )


@functools.lru_cache(maxsize=64)
def _ascii_charset(label: str) -> bool:
    """Whether charset `label` reads printable ASCII's bytes as ASCII (`_PROBE`) and writes
    ASCII as those bytes, so that an echoed secret's bytes are the secret's: UTF-8 and the
    ISO-8859, Windows, Mac and Asian multi-byte charsets do; EBCDIC (cp037, cp500, cp1140,
    ...), UTF-7 and HZ do not, nor a label Python's codecs do not know under WHATWG's
    spellings (`x-`, `windows-`, `dos-`, `-i`), unless WHATWG's decoders read it as ASCII
    (deny when in doubt: review 54l, secrets 3). An empty label names no charset."""
    label = label.strip().lower()
    if not label or label in _WHATWG_ASCII:
        return True
    text = _PROBE.decode("ascii")
    for name in _spellings(label):
        try:
            return _PROBE.decode(name) == text and text.encode(name).endswith(_PROBE)
        except LookupError:  # another spelling, or unknown
            continue
        except ValueError:  # not a text encoding, or not ASCII there
            return False
    return False


def _spellings(label: str) -> list[str]:
    """`label`, and its spellings without WHATWG's prefixes and suffixes (`x-mac-cyrillic`,
    `windows-874`, `iso-8859-8-i`), which Python's codecs know by another name."""
    names = [label]
    bare = label.removeprefix("x-")
    bare = re.sub(r"^(?:windows|dos)-(\d+)$", r"cp\1", bare)
    bare = re.sub(r"^(iso-?8859-\d+)-[ie]$", r"\1", bare)
    if bare != label:
        names.append(bare)
    return names


def _html_names() -> dict[str, tuple[bytes, ...]]:
    """Each character's HTML5 named character references (`&plus;`, `&sol;`, `&AMP;`, ...;
    WHATWG HTML, "Named character references"), without their `;`."""
    names: dict[str, set[bytes]] = {}
    for name, value in html.entities.html5.items():
        if len(value) == 1:
            names.setdefault(value, set()).add(name.rstrip(";").encode())
    return {char: tuple(sorted(found)) for char, found in names.items()}


_NAMED: Final = _html_names()
_SHORT_JSON: Final = {c: re.escape("\\" + c).encode() for c in '"\\/'}
"""JSON's two-character escapes of `"`, `\\` and `/` (RFC 8259, section 7), as patterns."""
_ALNUM: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _hex(number: int, digits: int) -> bytes:
    """`number` in hexadecimal, `digits` wide, each letter in either case (a pattern)."""
    return b"".join(
        b"[%s%s]" % (d.lower().encode(), d.upper().encode()) if d.isalpha() else d.encode()
        for d in f"{number:0{digits}x}"
    )


def _json_escape(char: str) -> bytes:
    """The `\\u00fc`-style escape of `char` (a surrogate pair past U+FFFF), either hex case,
    as a pattern."""
    units = char.encode("utf-16-be")
    return b"".join(
        b"\\\\u" + _hex(int.from_bytes(units[i : i + 2]), 4) for i in range(0, len(units), 2)
    )


def _char_forms(char: str) -> bytes:
    """A pattern for one character of the secret (`_forms`)."""
    if char in _ALNUM:  # escapers leave letters and digits as they are
        return char.encode()
    return b"(?:" + b"|".join(_forms(char)) + b")"


def _forms(char: str) -> list[bytes]:
    """Patterns for one character of the secret as text can carry it (an ASCII letter or digit
    is echoed as itself: `_char_forms`): itself (UTF-8), a JSON escape (`\\u00fc` in either hex
    case, as .NET and Go write any character; `\\"`, `\\\\`, `\\/`; JavaScript's `\\'` and
    `\\xHH` of an ASCII one; a C-style `\\xHH` of each UTF-8 byte of another, as a bytes repr
    shows it, or of the character up to U+00FF, and `\\U0001f511`), an HTML character
    reference (`&#DDD;`, `&#xHH;` with any leading zeros, or any of its HTML5 names; the `;`
    optional, as HTML reads it), its UTF-8 bytes percent-escaped (either hex case; a space also
    as `+`)."""
    code = ord(char)
    utf8 = char.encode()
    forms = [re.escape(utf8), b"".join(b"%" + _hex(byte, 2) for byte in utf8), _json_escape(char)]
    # possessive (`*+`, `?+`: Python 3.11): a reference takes its zeros and its `;` when they
    # are there, as an HTML reader does, and never gives them back — with a plain `;?` a secret
    # of many `;` made a body of `&#59;` backtrack exponentially (review 22d: 316 s a search)
    forms.append(b"&#0*+%d;?+" % code)
    forms.append(b"&#[xX]0*+" + _hex(code, len(f"{code:x}")) + b";?+")
    forms.extend(b"&%s;?+" % name for name in _NAMED.get(char, ()))
    if char in _SHORT_JSON:
        forms.append(_SHORT_JSON[char])
    if code < 0x80:  # JavaScript's escapes (Go's JSEscapeString, PHP addslashes): \' and \xHH
        forms.append(re.escape("\\" + char).encode())
        forms.append(b"\\\\x" + _hex(code, 2))
    else:  # C-style escapes: a bytes repr (Python's b'...', Ruby's inspect) writes each UTF-8
        # byte as \xHH; Python's unicode_escape and YAML write \xHH up to U+00FF, \U past
        forms.append(b"".join(b"\\\\x" + _hex(byte, 2) for byte in utf8))
        if code < 0x100:
            forms.append(b"\\\\x" + _hex(code, 2))
        forms.append(b"\\\\U" + _hex(code, 8))
    if char == " ":
        forms.append(b"\\+")
    return forms


def _backslashes(run: int, after: bytes = b"") -> bytes:
    """A pattern for `run` backslashes in a row in the secret and `after`, the pattern of the
    character after them (none at the secret's end): raw backslashes, each as sent or escaped
    (`\\\\`: JSON, JavaScript, a repr), so from `run` to twice as many; or each in one of its
    other forms (`%5C`, `\\u005c`, `&#92;`, ...). Read one at a time, a backslash as itself or
    doubled let a run of them split in 2^run ways, each tried when a search failed (review 22f:
    16 in a row, ~5 s a search of 32 backslashes): the run is one count, and with the character
    after it an atomic group, each count tried once and the first that fits kept. Not the run
    alone possessively: the next character's escape may begin with a backslash the run would
    take (Python's backslashreplace writes `\\` then `é` as `\\xe9`; review 22h)."""
    raw = (re.escape(b"\\"), _SHORT_JSON["\\"])
    others = b"|".join(form for form in _forms("\\") if form not in raw)
    if not after:
        return b"(?:\\\\{%d,%d}+|(?:%s){%d})" % (run, 2 * run, others, run)
    return b"(?:(?>\\\\{%d,%d}%s)|(?:%s){%d}%s)" % (run, 2 * run, after, others, run, after)


def _text_forms(text: str) -> bytes:
    """A pattern for `text` as an upstream could echo it (`_char_forms`; runs of backslashes
    with the character after them `_backslashes`)."""
    parts: list[bytes] = []
    runs = [(char, sum(1 for _ in group)) for char, group in itertools.groupby(text)]
    skip = False
    for index, (char, run) in enumerate(runs):
        if skip:  # the first of this run went with the backslashes before it
            skip, run = False, run - 1
            parts.append(_char_forms(char) * run)
        elif char == "\\" and index + 1 < len(runs):
            parts.append(_backslashes(run, _char_forms(runs[index + 1][0])))
            skip = True
        elif char == "\\":
            parts.append(_backslashes(run))
        else:
            parts.append(_char_forms(char) * run)
    return b"".join(parts)


def _echoes(value: bytes) -> list[bytes]:
    """Patterns matching `value` (the secret, a part of it, a decoded Basic password) however
    an upstream's text could echo it: each of its characters other than ASCII letters and
    digits as sent or escaped by JSON, JavaScript, HTML or percent-encoding (`_char_forms`),
    escapes mixed freely within it — the bytes read as UTF-8 and, when they are not ASCII, as
    ISO-8859-1 too (RFC 7617's historical reading of a Basic credential)."""
    readings = {value.decode("latin-1")}
    with contextlib.suppress(UnicodeDecodeError):
        readings.add(value.decode())
    return [_text_forms(text) for text in sorted(readings)]


_PART: Final = 8
"""A part of the secret (the credential after its scheme, a Basic password) is redacted on its
own when at least this long (a shorter one would redact ordinary text)."""


@functools.lru_cache(maxsize=16)
def echo_pattern(secret: bytes) -> re.Pattern[bytes]:
    """The secret's echoes, its credential part's after a scheme (`Bearer ...`) and, for a
    `Basic` secret, the decoded `user:password`'s and the password's, as one pattern: compiled
    once per secret value (up to ~2 s for 8 KiB of punctuation, a few ms for a token) and kept
    for the next answers (16 values at most)."""
    forms = _echoes(secret)  # the whole secret first: it holds the credential part
    scheme, _, credential = secret.rpartition(b" ")
    if scheme and len(credential) >= _PART:
        forms += _echoes(credential)
    if scheme.lower() == b"basic":  # RFC 7617: what an upstream may answer having decoded it
        try:
            decoded = base64.b64decode(credential, validate=True)
        except ValueError:
            decoded = b""
        _user, colon, password = decoded.partition(b":")
        if colon:
            forms += _echoes(decoded)
            if len(password) >= _PART:
                forms += _echoes(password)
    return re.compile(b"|".join(forms))
