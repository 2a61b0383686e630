"""Review 54l (adversarial review of 54e's secrets changes).

1. The broker's clock (review 54e, secrets 3) judged every call at max(now, its high-water
   mark), and the mark only moves with `now`: after the node's clock was set back by D (or ran
   ahead once, a bad NTP answer, then was corrected) the broker's time stood still for D. A
   lease issued then (dated from the mark, ending `ttl` after it) stayed ACTIVE, its token
   valid, its forwards served, for D + ttl of real time: no lease's term bounded its life any
   more, and a clock ahead by a year once made every later lease a year long. The broker's
   time now goes on after a set back, at half the clock's pace until the clock is back at the
   mark (so what ended stays ended, and a lease lives at most twice its term meanwhile).
2. The broker published its JWKS at the raw `now` (the served `jwks` method), not at its
   clock: a clock set back published again a token key retired more than `MAX_LEASE_TTL`
   before the mark, which validators fetching the JWKS then trusted again.
3. http-inject refused an answer labelled UTF-16 or UTF-32, but not one labelled in another
   charset whose bytes are not ASCII's (EBCDIC, UTF-7, HZ, ...): the secret echoed in it
   passed the redaction (its bytes are not the secret's), and a client decoding by the label
   (`requests`' `.text`, Java) read it. A charset label is now refused unless it is one whose
   printable ASCII is ASCII's bytes (or one the gate cannot tell: deny when in doubt).
4. An unlabelled XML answer in EBCDIC (its first bytes `<?xm` in EBCDIC, which an XML reader
   detects) passed the same way: refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world
from tests.test_review54e_secrets import AUDIENCE, _broker, _refused
from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.secrets import LeaseState, validate_token
from troth.secrets.engines.http_inject import _clean_response

_TOKEN = "s3cr3tTokenValue0123456789"


def test_a_lease_issued_after_a_clock_set_back_ends_within_twice_its_term(
    tmp_path: Path,
) -> None:
    """Review 54l, secrets 1: the clock an hour ahead once (a sweep then), then back: a lease
    of 120 s issued after it was live, its token valid at the broker and at a relying party
    with the published states, for the hour the broker's time stood still. It now ends within
    twice its term of real time."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    credential = world.credential_a()
    broker.sweep(NOW + 3600)  # the clock an hour ahead, once
    issued = broker.issue(credential, "payments", ttl=120, now=NOW)  # back again
    token = str(issued.credential.reveal()["token"])
    later = NOW + 2 * 120 + 1  # twice the lease's term of real time since its issue
    broker.clock.now(later)  # the broker's time at `later` (a served broker's sweep moves it)
    assert _refused(lambda: broker.validate_token(token, audience=AUDIENCE, now=later)) is (
        SecretFailure.EXPIRED
    )
    jwks, states = broker.jwks(later), broker.revoked_leases()
    assert _refused(
        lambda: validate_token(token, jwks, audience=AUDIENCE, now=later, revoked=states)
    ) in (SecretFailure.EXPIRED, SecretFailure.REVOKED)
    broker.sweep(later)
    lease = broker.book.lease(issued.lease.handle)
    assert lease is not None
    assert lease.state is not LeaseState.ACTIVE


def test_after_a_set_back_time_goes_on_and_never_back(tmp_path: Path) -> None:
    """Review 54l, secrets 1: the broker's time after a set back: the mark at first, then on at
    half the clock's pace, never below what it judged at, plain again once the clock is
    back at it; a restart keeps it."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    clock = broker.clock
    assert clock.now(NOW + 1000) == NOW + 1000
    assert clock.now(NOW) == NOW + 1000  # set back 1000 s
    assert clock.now(NOW + 100) == NOW + 1050
    assert clock.now(NOW + 50) == NOW + 1050  # set back again: never back
    assert clock.now(NOW + 250) == NOW + 1150
    broker.close()
    again = _broker(tmp_path / "node.db", world, now=NOW + 260)
    assert again.clock.now(NOW + 260) == NOW + 1150  # the stored mark
    assert again.clock.now(NOW + 460) == NOW + 1250
    assert again.clock.now(NOW + 2040) == NOW + 2040  # the clock is past it: plain


def test_a_set_back_clock_publishes_no_key_retired_past_its_window(tmp_path: Path) -> None:
    """Review 54l, secrets 2: a token key retired more than MAX_LEASE_TTL before the broker's
    mark (nothing it signed is still valid) was published again by the served JWKS at a
    clock set back, as if just retired."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    old = next(iter(broker.jwks(NOW).keys))
    broker.keys.rotate_signing_key(NOW)
    past = NOW + limits.MAX_LEASE_TTL + 10
    broker.sweep(past)
    assert old not in broker.jwks(past).keys
    assert old not in broker.jwks(NOW + 10).keys  # the clock set back


@pytest.mark.parametrize(
    ("charset", "codec"),
    [
        ("IBM500", "cp500"),
        ("ibm037", "cp037"),
        ('"cp1140"', "cp1140"),
        ("utf-7", "utf-7"),
        ("hz-gb-2312", "hz"),
        ("x-ebcdic-made-up", "cp500"),  # a label the gate cannot tell: refused
    ],
)
def test_an_answer_in_a_charset_not_ascii_is_refused(charset: str, codec: str) -> None:
    """Review 54l, secrets 3: labelled in a charset whose bytes are not ASCII's, the echoed
    secret's bytes are not the secret's (the redaction's patterns miss it), while a client
    decoding by the label reads it: refused as a wide charset is."""
    secret = f"Bearer ~{_TOKEN}".encode()  # (UTF-7 and HZ write a tilde otherwise)
    body = ('{"you sent": "' + secret.decode() + '"}').encode(codec)
    assert secret not in body
    headers = [("Content-Type", f"text/plain; charset={charset}")]
    with pytest.raises(SecretError) as caught:
        _clean_response(200, "OK", headers, body, secret)
    assert caught.value.reason is SecretFailure.UPSTREAM_FAILED


@pytest.mark.parametrize(
    "charset",
    ["utf-8", '"UTF-8"', "iso-8859-1", "windows-1252", "us-ascii", "shift_jis", "euc-kr"],
)
def test_an_answer_in_an_ascii_charset_passes_redacted(charset: str) -> None:
    """Review 54l, secrets 3: the charsets whose printable ASCII is ASCII's pass, the echoed
    secret redacted."""
    secret = f"Bearer {_TOKEN}".encode()
    body = b'{"you sent": "' + secret + b'"}'
    headers = [("Content-Type", f"application/json; charset={charset}")]
    cleaned = _clean_response(200, "OK", headers, body, secret)
    assert secret not in cleaned.body
    assert _TOKEN.encode() not in cleaned.body


def test_an_unlabelled_ebcdic_xml_answer_is_refused() -> None:
    """Review 54l, secrets 4: an XML document in EBCDIC, unlabelled, begins with `<?xm` in
    EBCDIC (4C 6F A7 94), which an XML reader's detection takes for EBCDIC (XML 1.0, appendix
    F.1; libxml2, which lxml reads with, does), then reads its declaration's encoding: the
    secret echoed in it passed the redaction (its bytes are not the secret's). Refused, as an
    unlabelled UTF-16 answer is."""
    secret = f"Bearer {_TOKEN}".encode()
    text = '<?xml version="1.0" encoding="IBM037"?><echo>' + secret.decode() + "</echo>"
    body = text.encode("cp037")
    assert body.startswith(b"\x4c\x6f\xa7\x94")
    assert secret not in body
    for headers in ([], [("Content-Type", "application/xml")]):
        with pytest.raises(SecretError) as caught:
            _clean_response(200, "OK", headers, body, secret)
        assert caught.value.reason is SecretFailure.UPSTREAM_FAILED
