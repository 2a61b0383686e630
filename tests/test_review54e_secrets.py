"""Review 54e (secrets): what the last review left in the secrets layer.

1. A standalone validator (`validate_token(..., revoked=broker.revoked_leases())`, without
   `Broker.validate_token`) kept accepting a lease's earlier tokens after the lease was renewed
   for a *shorter* time (their `exp` past the lease's new end), where the broker refused them:
   the published lease states said only "revoked or not". They now carry each live lease's
   not-after (`LeaseStates.not_after`), which `validate_token` checks.
2. The http-inject engine refused an answer *labelled* UTF-16 or UTF-32 (its `Content-Type`
   charset), but one in UTF-16 with a byte order mark and no charset passed the redaction: the
   secret echoed two bytes a character went to the agent, whose decoder (a browser, fetch,
   Python's `json.loads`) reads the BOM. An answer a reader would take for UTF-16 or UTF-32 (a
   BOM, or the NUL bytes of RFC 4627 section 3's detection) is refused.
3. The node's clock set back: a lease that had expired, not yet swept, was live again (its
   tokens valid, forwards served) until the clock passed its end once more. The broker keeps
   the latest `now` it was given (persisted: a restart keeps it) and judges expiry at
   max(now, that).

Each test asserts the correct behaviour and was a strict xfail until its fix, but the last two,
which guard fix 3 (a relying party's clock moves nothing at the broker; an issue's second
counts after a crash).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, validate_token
from troth.secrets.engines.http_inject import _clean_response

_TOKEN = "s3cr3tTokenValue0123456789"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"])
@pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain; charset=utf-8"])
def test_an_unlabelled_wide_answer_is_refused(encoding: str, content_type: str | None) -> None:
    """Review 54e, secrets 2: a body in UTF-16 or UTF-32 — with its BOM (which a WHATWG
    decoder obeys over any label) or, BOM-less, as RFC 4627's detection reads it — holds the
    secret two or four bytes a character, unseen by the redaction: refused."""
    secret = f"Bearer {_TOKEN}".encode()
    text = '{"you sent": "' + secret.decode() + '"}'
    body = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be", "utf-32-be"):  # BOM-less, and with one
        bodies = [
            body,
            {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(encoding, b"\x00\x00\xfe\xff")
            + body,
        ]
    else:
        bodies = [body]
    headers = [] if content_type is None else [("Content-Type", content_type)]
    for each in bodies:
        with pytest.raises(SecretError) as caught:
            _clean_response(200, "OK", headers, each, secret)
        assert caught.value.reason is SecretFailure.UPSTREAM_FAILED


AUDIENCE = "payments"
CONFIG = {"scopes": ["refunds:write"], "ttl": 120, "max_ttl": 600, "audience": AUDIENCE}


def _broker(path: Path, world: LeaseWorld, now: int = NOW) -> Broker:
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(path, now=now, policy=policy)
    if not broker.secrets():
        broker.put_secret("payments", "token", CONFIG, b"", now=now)
    return broker


def _refused(call: Callable[[], object]) -> SecretFailure:
    with pytest.raises(SecretError) as caught:
        call()
    return caught.value.reason


def test_a_standalone_validator_ends_tokens_a_shorter_renewal_ended(tmp_path: Path) -> None:
    """Review 54e, secrets 1: a renewal for less time than the lease had left ends its earlier
    tokens at the lease's new end. `Broker.validate_token` refused them; a relying party
    validating with `validate_token(..., revoked=broker.revoked_leases())` accepted them until
    their own `exp`. It now reaches the broker's answer."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", ttl=120, now=NOW)
    first = str(issued.credential.reveal()["token"])
    broker.renew(credential, issued.lease_id, ttl=10, now=NOW + 5)  # ends at NOW + 15
    jwks, states = broker.jwks(NOW + 20), broker.revoked_leases()
    # before the lease's new end both accept it
    assert validate_token(first, jwks, audience=AUDIENCE, now=NOW + 14, revoked=states).jti == (
        str(issued.lease.handle)
    )
    assert broker.validate_token(first, audience=AUDIENCE, now=NOW + 14).jti
    assert _refused(lambda: broker.validate_token(first, audience=AUDIENCE, now=NOW + 20)) is (
        SecretFailure.EXPIRED
    )
    standalone = _refused(
        lambda: validate_token(first, jwks, audience=AUDIENCE, now=NOW + 20, revoked=states)
    )
    assert standalone is SecretFailure.EXPIRED


def test_a_clock_set_back_revives_no_lease_nor_token(tmp_path: Path) -> None:
    """Review 54e, secrets 3: the node's clock set back before the sweep made an expired,
    unswept lease live again — its token valid at the broker and at a relying party holding
    its published states, its renewal served — until the clock passed its end again. The
    broker judges at max(now, the latest `now` it was given)."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", ttl=120, now=NOW)
    token = str(issued.credential.reveal()["token"])
    jwks, states = broker.jwks(NOW), broker.revoked_leases()
    broker.clock.now(NOW + 200)  # the broker's time passed the lease's end (no sweep marked it)
    assert _refused(lambda: broker.validate_token(token, audience=AUDIENCE, now=NOW + 200)) is (
        SecretFailure.EXPIRED
    )
    back = NOW + 60  # the clock set back, no sweep since
    assert _refused(lambda: broker.validate_token(token, audience=AUDIENCE, now=back)) is (
        SecretFailure.EXPIRED
    )
    assert _refused(
        lambda: validate_token(token, jwks, audience=AUDIENCE, now=back, revoked=states)
    ) in (SecretFailure.EXPIRED, SecretFailure.REVOKED)
    assert _refused(lambda: broker.renew(credential, issued.lease_id, now=back)) in (
        SecretFailure.EXPIRED,
        SecretFailure.REVOKED,
    )


def test_the_clocks_high_water_mark_survives_a_restart(tmp_path: Path) -> None:
    """Review 54e, secrets 3: what the broker saw expired stays expired after a restart whose
    clock is behind (the high-water mark is stored in the node's database), and a token whose
    own `exp` passed stays refused though its lease was renewed past it."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", ttl=120, now=NOW)
    first = str(issued.credential.reveal()["token"])
    broker.renew(credential, issued.lease_id, ttl=600, now=NOW + 100)  # the lease lives on
    broker.sweep(NOW + 130)  # the broker's time passed the first token's `exp`
    assert _refused(lambda: broker.validate_token(first, audience=AUDIENCE, now=NOW + 130)) is (
        SecretFailure.EXPIRED
    )
    broker.close()
    again = _broker(tmp_path / "node.db", world, now=NOW + 60)  # restarted, the clock behind
    assert _refused(lambda: again.validate_token(first, audience=AUDIENCE, now=NOW + 60)) is (
        SecretFailure.EXPIRED
    )
    states = again.revoked_leases()
    assert _refused(
        lambda: validate_token(
            first, again.jwks(NOW + 60), audience=AUDIENCE, now=NOW + 60, revoked=states
        )
    ) is (SecretFailure.EXPIRED)


def test_a_relying_partys_clock_moves_not_the_brokers(tmp_path: Path) -> None:
    """Review 54e, secrets 3: the high-water mark moves only with the `now` the broker's own
    calls are given: a relying party validating with the published states at a clock far
    ahead (or a token's claims) ends nothing at the broker."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    issued = broker.issue(world.credential_a(), "payments", ttl=120, now=NOW)
    token = str(issued.credential.reveal()["token"])
    jwks, states = broker.jwks(NOW), broker.revoked_leases()
    assert _refused(
        lambda: validate_token(token, jwks, audience=AUDIENCE, now=NOW + 10**6, revoked=states)
    ) is (SecretFailure.EXPIRED)
    assert broker.validate_token(token, audience=AUDIENCE, now=NOW + 1).jti == str(
        issued.lease.handle
    )
    assert validate_token(token, jwks, audience=AUDIENCE, now=NOW + 1, revoked=states).jti


def test_an_issues_second_is_the_clocks_mark_after_a_crash(tmp_path: Path) -> None:
    """Review 54e, secrets 3: an issue stores no mark of its own (its lease's locator keeps
    its second): a broker opened after one, its clock behind (the process killed, nothing
    closed), reads the mark back from the newest lease and ends what had ended by then."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    first = broker.issue(world.credential_a(), "payments", ttl=120, now=NOW)
    token = str(first.credential.reveal()["token"])
    broker.issue(world.credential_a(), "payments", ttl=120, now=NOW + 200)  # the last call
    again = _broker(tmp_path / "node.db", world, now=NOW + 60)  # no close: as after a kill
    assert again.clock.seen() >= NOW + 200
    assert _refused(lambda: again.validate_token(token, audience=AUDIENCE, now=NOW + 60)) is (
        SecretFailure.EXPIRED
    )
