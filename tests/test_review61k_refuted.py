"""Review 61k: attacks on this session's security fixes (reviews 61a, 61b, 61c, 61e, 61f) that
did not work. Each test is the attempt, and fails if the defence it meets breaks.

- 61b, identity 1 (`SeenSignatures`): a remembered signature vouches for no other check: a
  byte moved between the signature and the message, another key of the type, another key
  type over the same bytes, P-256's high-s twin of a remembered low-s signature (refused by
  `verify_signature`, never remembered), a failure asked again. The token hashes the key type,
  its bytes (of one length per type: `PublicKey` checks it), the signature's length, the
  signature and the message: no two checks share one.
- 61b, identity 2 (every change's structure and the current key before any signature): for
  every combination of up to two faults (a bad signature, a bad previous-key signature, a
  broken link) at any change, and a `now` inside the window, before it (changes dated in the
  future) and past it (the current key expired), the new order accepts exactly what the
  order before review 61b accepted (rebuilt here from the module's own rules); and with a
  cache warmed by the honest history, each is refused with the same reason at the same change
  as without one.
- 61a, credentials 4-5 (type checks): a bytes, str or int subclass, a bool or an IntEnum where a
  body, a delegation, a revocation entry or a supersession takes bytes, text or an integer is
  refused (exact types, not isinstance); an Identifier over a bytes subclass encodes as a
  byte string (what a reader takes).
- 61c, authority 1: a revoke request whose chain carries its issuer histories in another
  order (the delegates' first, the member's last) still charges every delegate's supersession
  to the member's delegates' one account: who pays is read from the links (the issuer of link
  1 is always the member), not from the order of the histories.
- 61a, credentials 6: the longest base58 of a 64-byte signature (any leading zero bytes)
  fits `MAX_PROOF_VALUE_CHARS`: no valid proofValue is refused by the cap.
- 61e, secrets 1: the audit of forward refusals by callers holding no credential does not
  flood the broker's thread nor the sink: 200 minted identities refused at once spawn at most
  `DENIALS_PER_ACCOUNT` writes (all such callers share one account), each answered.
- 61f, rotate 1 (`_keep_raised`; since review 66i the count's UPDATE, `_counted`): an error
  that is not SQLite's whole "no such column: raised_at" (a trigger on the counts writing a
  missing `rollback_raised_log`) is raised, nothing kept; SQLite's messages are not localised
  (English only, sqlite3.c).
- 61a, credentials 3 (`STORED_LATEST` in vouchers): a voucher of a root expiring at 2**64 - 1,
  stored capped, is no lapsed row for a feed issued at the last time a clock reads (every
  comparison of a capped expiry is with a clock's time, all below the cap).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import base58
import pytest

import tests.test_review61c_authority as review61c
import troth.identity.history as history_module
from tests.conftest import NOW
from tests.support.histories import DAY, T0, HonestHistory, body_for, encode, honest_history
from tests.test_review61e_secrets import _broker
from troth import limits
from troth.credentials import Attributes, CredentialChain
from troth.credentials.format import CredentialBody, Delegation
from troth.credentials.revocation_entry import RevocationEntry, RevocationKind, Supersession
from troth.crypto import KeyType, PublicKey, sha256, verify_signature
from troth.crypto.keys import P256_ORDER
from troth.crypto.private import generate_private_key
from troth.encoding import cbor
from troth.errors import CryptoError, IdentityError, IdentityFailure, StorageError
from troth.identity import (
    ChangeBody,
    Identifier,
    SeenSignatures,
    SignedChange,
    UnverifiedHistory,
    verify_history,
)
from troth.identity.history import VerifiedChange
from troth.identity.restored import RestoredIdentities
from troth.node.services.broker import BrokerService
from troth.node.vouchers import Vouchers
from troth.secrets.audit import AuditKind
from troth.secrets.denials import DENIALS_PER_ACCOUNT
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.engines.http_inject import HttpRequest
from troth.secrets.lease import LeaseId
from troth.secrets.wire import ForwardArgs
from troth.storage import SqliteDatabase
from troth.storage.sqlite_vouchers import SqliteVoucherStore

MESSAGE = b"troth.change: a body signed"


# -- 61b, identity 1: the cache of verified signatures -----------------------------------------


def _high_s(signature: bytes) -> bytes:
    """P-256's other valid signature of the same (r, s): (r, n - s)."""
    s = int.from_bytes(signature[32:], "big")
    return signature[:32] + (P256_ORDER - s).to_bytes(32, "big")


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_a_remembered_signature_vouches_for_no_other_check(key_type: KeyType) -> None:
    key = generate_private_key(key_type)
    signature = key.sign(MESSAGE)
    seen = SeenSignatures()
    seen.verify(key.public_key, signature, MESSAGE)
    assert len(seen) == 1
    other_type = KeyType.P256 if key_type is KeyType.ED25519 else KeyType.ED25519
    attempts = [
        (key.public_key, signature[:-1], signature[-1:] + MESSAGE),  # the boundary moved
        (key.public_key, signature + MESSAGE[:1], MESSAGE[1:]),
        (key.public_key, signature, MESSAGE + b"\x00"),
        (generate_private_key(key_type).public_key, signature, MESSAGE),  # another key
        (generate_private_key(other_type).public_key, signature, MESSAGE),  # another type
    ]
    if key_type is KeyType.ED25519:  # the same 32 bytes as a key that cannot sign
        attempts.append((PublicKey(KeyType.X25519, key.public_key.data), signature, MESSAGE))
    else:  # the high-s twin (valid ECDSA, refused by troth: never remembered)
        attempts.append((key.public_key, _high_s(signature), MESSAGE))
    for attempt in attempts:
        for _ in range(2):  # a failure is never remembered
            with pytest.raises(CryptoError):
                seen.verify(*attempt)
    assert len(seen) == 1
    seen.verify(key.public_key, signature, MESSAGE)  # the remembered one still passes


# -- 61b, identity 2: the order of the checks --------------------------------------------------


def _before_61b(data: bytes, now: int) -> None:
    """`verify_history` as it was before review 61b (each change's structure, then its
    signatures, then the next change; the current key last), for full histories."""
    history = UnverifiedHistory.decode(data)
    previous: VerifiedChange | None = None
    latest_allowed = now + limits.MAX_CLOCK_SKEW_SECONDS
    for index, signed in enumerate(history.changes):
        body = ChangeBody.decode(signed.body)
        history_module._check_structure(index, signed, body, previous, latest_allowed)
        try:
            verify_signature(body.primary_key, signed.signature, signed.body)
            if previous is not None and signed.previous_signature is not None:
                verify_signature(previous.body.primary_key, signed.previous_signature, signed.body)
        except CryptoError:
            raise IdentityError(IdentityFailure.BAD_SIGNATURE) from None
        previous = VerifiedChange(index, sha256(signed.body), body, signed)
    assert previous is not None
    history_module._check_current_key(previous.body, now, previous.index)


def _flip(signature: bytes) -> bytes:
    return bytes([signature[0] ^ 1]) + signature[1:]


def _faults(honest: HonestHistory) -> list[Callable[[list[SignedChange]], None]]:
    """Each fault as an edit of the list of changes."""

    def bad_signature(i: int) -> Callable[[list[SignedChange]], None]:
        def edit(changes: list[SignedChange]) -> None:
            c = changes[i]
            changes[i] = SignedChange(c.body, _flip(c.signature), c.previous_signature)

        return edit

    def bad_previous(i: int) -> Callable[[list[SignedChange]], None]:
        def edit(changes: list[SignedChange]) -> None:
            c = changes[i]
            assert c.previous_signature is not None
            changes[i] = SignedChange(c.body, c.signature, _flip(c.previous_signature))

        return edit

    def broken_link(i: int) -> Callable[[list[SignedChange]], None]:
        def edit(changes: list[SignedChange]) -> None:  # well signed, naming no change
            key = honest.keys[i]
            body = body_for(key, bytes(32), T0 + i * DAY, index=i).encode()
            previous = honest.keys[i - 1].sign(body)
            changes[i] = SignedChange(body, key.sign(body), previous)

        return edit

    count = len(honest.changes)
    return [
        *(bad_signature(i) for i in range(count)),
        *(bad_previous(i) for i in range(1, count)),
        *(broken_link(i) for i in range(1, count)),
    ]


def _verdict(call: Callable[[], object]) -> tuple[str, int | None] | None:
    try:
        call()
    except IdentityError as exc:
        return exc.reason.value, exc.change
    return None


def test_the_order_of_the_checks_accepts_what_it_accepted_before() -> None:
    honest = honest_history(3)
    faults = _faults(honest)
    last = T0 + 2 * DAY
    nows = (last + 10, T0 - 10 * DAY, last + 400 * DAY)  # inside, before, past the window
    warm = SeenSignatures()
    verify_history(encode(honest.changes), now=last, seen=warm)
    tried = accepted = 0
    for picked in itertools.chain(
        [()], itertools.combinations(faults, 1), itertools.combinations(faults, 2)
    ):
        changes = list(honest.changes)
        for edit in picked:
            edit(changes)
        data = encode(changes)
        for now in nows:
            new = _verdict(lambda: verify_history(data, now=now))  # noqa: B023
            old = _verdict(lambda: _before_61b(data, now))  # noqa: B023
            assert (new is None) == (old is None), (picked, now, new, old)
            cached = _verdict(lambda: verify_history(data, now=now, seen=warm))  # noqa: B023
            assert cached == new, (picked, now)
            tried += 1
            accepted += new is None
    assert (tried, accepted) == (87, 1)  # none but the honest one at a time in its window


# -- 61a, credentials 4-5: exact types ---------------------------------------------------------


class _Bytes(bytes):
    pass


class _Text(str):
    __slots__ = ()


class _Int(int):
    pass


class _Enum(enum.IntEnum):
    FIVE = 5


ID = Identifier(b"\x01" * 32)
READ = Attributes({"orders.access": "read"})


def _body(**changed: Any) -> CredentialBody:
    fields: dict[str, Any] = {
        "id": b"\x00" * 16,
        "subject": ID,
        "issuer": ID,
        "attributes": Attributes({}),
        "created_at": 5,
        "not_before": 5,
        "expires_at": 50,
        "depth": 1,
        "delegation": None,
    }
    return CredentialBody(**{**fields, **changed})


@pytest.mark.parametrize(
    "make",
    [
        lambda: _body(id=_Bytes(bytes(16))),
        lambda: _body(depth=True),
        lambda: _body(created_at=_Int(5)),
        lambda: _body(expires_at=_Enum.FIVE),
        lambda: Delegation(_Bytes(bytes(32)), "job"),
        lambda: Delegation(bytes(32), _Text("job")),
        lambda: Delegation(bytes(32), "job", (_Text("x"),)),
        lambda: Supersession(True, bytes(32)),
        lambda: Supersession(_Int(3), bytes(32)),
        lambda: Supersession(3, _Bytes(bytes(32))),
        lambda: RevocationEntry(True, RevocationKind.CREDENTIAL, bytes(32), ID, 5, ""),
        lambda: RevocationEntry(1, RevocationKind.CREDENTIAL, _Bytes(bytes(32)), ID, 5, ""),
        lambda: RevocationEntry(1, RevocationKind.CREDENTIAL, bytes(32), ID, _Enum.FIVE, ""),
        lambda: RevocationEntry(1, RevocationKind.CREDENTIAL, bytes(32), ID, 5, _Text("r")),
    ],
)
def test_a_subclass_or_a_bool_passes_no_type_check(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"bytes|text|integers|names"):
        make()


def test_an_identifier_over_a_bytes_subclass_is_signed_as_a_byte_string() -> None:
    body = _body(subject=Identifier(_Bytes(b"\x02" * 32)))
    assert CredentialBody.decode(body.encode()).subject == Identifier(b"\x02" * 32)
    assert cbor.decode(body.encode())[3] == b"\x02" * 32


# -- 61c, authority 1: who pays for a delegate's supersession ---------------------------------


def test_histories_in_another_order_do_not_make_a_delegate_pay_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 61c's attack (three rotated delegates, a quota of 1), every chain encoded with
    its issuer histories reversed (the authority's first no more, the delegates' before the
    member's)."""
    encode = CredentialChain.encode
    reordered: list[int] = []

    def reversed_histories(chain: CredentialChain) -> bytes:
        if len(chain.histories) > 1:
            reordered.append(len(chain.histories))
        return encode(CredentialChain(chain.credentials, tuple(reversed(chain.histories))))

    monkeypatch.setattr(CredentialChain, "encode", reversed_histories)
    review61c.test_a_members_delegates_share_one_supersession_budget(tmp_path)
    assert 5 in reordered  # the revoke request's chain: authority, member, d0, d1, d2


# -- 61a, credentials 6: the cap of a proofValue -----------------------------------------------


def test_no_base58_of_a_64_byte_signature_is_over_the_cap() -> None:
    for zeros in range(64):
        longest = "z" + base58.b58encode(bytes(zeros) + b"\xff" * (64 - zeros)).decode()
        assert len(longest) <= limits.MAX_PROOF_VALUE_CHARS


# -- 61e, secrets 1: forward refusals of minted identities -------------------------------------


def test_forward_refusals_of_minted_identities_spawn_a_bounded_audit(tmp_path: Path) -> None:
    broker, sink, _agent = _broker(tmp_path)  # (review 61e's: a list as the audit sink)
    service = BrokerService(
        SimpleNamespace(db=None, name="hub"),  # type: ignore[arg-type]
        SimpleNamespace(feed_hooks=[], own_authorities=None, hosted=None),  # type: ignore[arg-type]
        SimpleNamespace(now=lambda: NOW),
        policies=SimpleNamespace(decision_point=lambda: None),  # type: ignore[arg-type]
    )
    endpoint = BrokerEndpoint(broker)
    service.broker, service.endpoint = broker, endpoint
    request = ForwardArgs(LeaseId.new(NOW), HttpRequest("GET", "/v1")).to_wire()
    minted = [Identifier(sha256(i.to_bytes(4, "big"))) for i in range(200)]
    since = len(sink.events)

    async def flood() -> tuple[list[Any], int]:
        try:
            answers = [
                await service._forward(endpoint, request, BrokerCaller(who, refused="none"))
                for who in minted
            ]
            spawned = len(service._tasks)  # none has run yet: the loop was never free
            await asyncio.gather(*service._tasks)
            return answers, spawned
        finally:
            await service.close()

    answers, spawned = asyncio.run(flood())
    assert all(answer["refused"] == "DENIED" for answer in answers)
    assert spawned <= DENIALS_PER_ACCOUNT
    denials = [e for e in sink.events[since:] if e.kind is AuditKind.DENY]
    assert 0 < len(denials) <= DENIALS_PER_ACCOUNT


# -- 61f, rotate 1: the text of a missing table ------------------------------------------------


def test_another_missing_table_named_like_it_is_raised(tmp_path: Path) -> None:
    # since review 66i the time is in the count's row (`rollback_counters.raised_at`): the
    # same attack on the count's UPDATE, a trigger writing a missing `rollback_raised_log`
    db = SqliteDatabase(tmp_path / "node.db")
    with db.transaction():
        RestoredIdentities(db).count_rotation(T0)
    db.execute(
        "CREATE TRIGGER keep AFTER UPDATE ON rollback_counters "
        "BEGIN INSERT INTO rollback_raised_log VALUES (1); END"
    )
    with pytest.raises(StorageError, match="rollback_raised_log"), db.transaction():
        RestoredIdentities(db).count_rotation(T0 + 1)
    assert db.fetch_one("SELECT counter, raised_at FROM rollback_counters")[:] == (1, T0)
    assert db.fetch_one("SELECT count(*) FROM sqlite_master WHERE name = 'rollback_raised'")[0] == 0
    db.close()


# -- 61a, credentials 3: the cap of a voucher's expiry -----------------------------------------


def test_a_capped_voucher_never_lapses_before_the_last_clock_reading(tmp_path: Path) -> None:
    store = SqliteVoucherStore(SqliteDatabase(tmp_path / "node.db"))
    vouchers = Vouchers(store, feeds=dict, stored_changes=lambda identifier: None)
    authority, member = Identifier(b"\x0a" * 32), Identifier(b"\x0b" * 32)
    root = SimpleNamespace(subject=member)
    latest = SimpleNamespace(expires_at=2**64 - 1, authority=authority, links=[root])
    assert vouchers.vouch(member, [latest])  # type: ignore[list-item]
    assert vouchers.of(member) == {authority}
    assert store.lapsed(authority.digest, limits.LAST_CLOCK_READING, 10) == []
