"""verify_history: accepts honest histories; each rejection path names its change and reason."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.histories import (
    CHANGE_TYPE,
    DAY,
    T0,
    HonestHistory,
    body_for,
    encode,
    extend,
    honest_history,
    raw_body,
    raw_history,
    sign_change,
)
from troth import limits
from troth.crypto import KeyType, sha256
from troth.crypto.private import generate_private_key
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem, IdentityError, IdentityFailure
from troth.identity import (
    ChangeBody,
    Checkpoint,
    SignedChange,
    change_hashes,
    check_extends,
    decode_history,
    encode_history,
    next_key_digest,
    verify_history,
)
from troth.identity.change import HISTORY_TYPE, NEXT_KEY_DOMAIN, encode_public_key

F = IdentityFailure
NOW = T0 + 10 * DAY


def rejects(
    data: bytes, reason: IdentityFailure, change: int | None = None, now: int = NOW
) -> None:
    with pytest.raises(IdentityError) as caught:
        verify_history(data, now=now)
    assert caught.value.reason is reason, caught.value
    assert caught.value.change == change, caught.value


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
@pytest.mark.parametrize("length", [1, 2, 5])
def test_honest_histories_verify(key_type: KeyType, length: int) -> None:
    keys, changes, next_key = honest_history(length, key_type)
    identity = verify_history(encode(changes), now=NOW)
    assert identity.identifier.digest == sha256(changes[0].body)
    assert identity.current_key == keys[-1].public_key
    assert identity.next_key_digest == next_key_digest(next_key.public_key)
    assert [c.index for c in identity.changes] == list(range(length))
    assert [c.body.position for c in identity.changes] == list(range(length))
    assert identity.history == encode(changes)


def test_verified_identity_cannot_be_constructed() -> None:
    _, changes, _ = honest_history(1)
    identity = verify_history(encode(changes), now=NOW)
    with pytest.raises(
        TypeError, match=r"VerifiedIdentity is made by verify_history, not constructed"
    ):
        type(identity)(identity.identifier, identity.changes, identity.history, object())
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"cannot assign to field 'history"):
        identity.history = b""  # type: ignore[misc]


# -- pre-rotation: the attacks of issue 7 -----------------------------------------------------


def test_k0_fork_with_an_attacker_key_is_refused() -> None:
    """A thief of the rotated-out key k0 builds [c0, c1'] introducing its own key, signed by k0
    and by that key: c1' cannot reveal the key c0 committed to, so every verifier (stateless
    ones included) refuses it."""
    owner = honest_history(1)
    attacker = generate_private_key(KeyType.ED25519)
    fork = extend(owner, T0 + DAY, new_key=attacker)
    assert fork.keys[0] is owner.keys[0]  # signed by k0 as the previous key
    rejects(encode(fork.changes), F.NEXT_KEY_MISMATCH, 1)
    honest = extend(owner, T0 + DAY)
    verify_history(encode(honest.changes), now=NOW)  # the owner's own rotation verifies


def test_thief_of_the_current_key_cannot_rotate_it_away() -> None:
    """With the current key of a 3-change history (not the next key), no change 3 verifies."""
    owner = honest_history(3)
    for key_type in (KeyType.ED25519, KeyType.P256):
        stolen = extend(owner, T0 + 5 * DAY, new_key=generate_private_key(key_type))
        rejects(encode(stolen.changes), F.NEXT_KEY_MISMATCH, 3)


def test_the_committed_key_is_not_in_the_history() -> None:
    """Only a digest of the next key is published, never the key itself."""
    history = honest_history(2)
    data = encode(history.changes)
    assert history.next_key.public_key.data not in data
    assert next_key_digest(history.next_key.public_key) in data


# -- envelope ---------------------------------------------------------------------------------


def test_malformed_bytes() -> None:
    rejects(b"\xff\x00", F.MALFORMED)
    rejects(b"", F.MALFORMED)
    rejects(raw_history([]), F.MALFORMED)  # no changes
    rejects(raw_history([[b"body", b"s" * 64]]), F.MALFORMED)  # 2 fields, not 3
    rejects(raw_history([[b"body", b"s" * 63, None]]), F.MALFORMED)  # short signature


def test_unknown_history_version_and_type() -> None:
    _, changes, _ = honest_history(1)
    entries = [c.to_cbor() for c in changes]
    rejects(raw_history(entries, version=1), F.UNKNOWN_VERSION)  # version 1 is not read
    rejects(raw_history(entries, version=3), F.UNKNOWN_VERSION)
    rejects(raw_history(entries, type_tag="troth.identity.histories"), F.UNKNOWN_TYPE)


def test_checkpoint_slot_is_null_or_a_checkpoint() -> None:
    """The 4th history element is null (every change from the first) or
    [identifier (32), authority (32), index >= 1]; anything else is malformed."""
    _, changes, _ = honest_history(2)
    entries = [c.to_cbor() for c in changes]
    ident, authority = b"\x01" * 32, b"\x02" * 32
    checkpoints: list[object] = [
        b"",
        b"\x00" * 32,
        0,
        [],
        False,
        [ident, authority],
        [ident, authority, 0],  # a history from change 0 has no checkpoint
        [ident, authority, -1],
        [ident, authority, limits.MAX_CHANGE_INDEX + 1],
        [ident[:31], authority, 1],
        [ident, authority[:31], 1],
        [ident, authority, 1, None],
        [ident, authority, "1"],
    ]
    for checkpoint in checkpoints:
        with pytest.raises(DecodeError, match="checkpoint"):
            decode_history(raw_history(entries, checkpoint=checkpoint))
        rejects(raw_history(entries, checkpoint=checkpoint), F.MALFORMED)
    rejects(cbor.encode([HISTORY_TYPE, 2, entries]), F.MALFORMED)  # the version-1 shape
    rejects(cbor.encode([HISTORY_TYPE, 2, entries, None, None]), F.MALFORMED)


def test_trailing_bytes() -> None:
    _, changes, _ = honest_history(2)
    rejects(encode(changes) + b"\x00", F.TRAILING_BYTES)


def test_over_limits() -> None:
    _, changes, _ = honest_history(1)
    too_many = [changes[0].to_cbor()] * (limits.MAX_IDENTITY_CHANGES + 1)
    rejects(raw_history(too_many), F.OVER_LIMIT)
    rejects(b"\x00" * (limits.MAX_IDENTITY_HISTORY_BYTES + 1), F.OVER_LIMIT)


# -- change bodies ------------------------------------------------------------------------------


def signed_raw(fields: list[object]) -> bytes:
    key = generate_private_key(KeyType.ED25519)
    body = raw_body(fields)
    return raw_history([[body, key.sign(body), None]])


def test_change_body_type_version_and_shape() -> None:
    key = generate_private_key(KeyType.ED25519).public_key
    digest = next_key_digest(key)
    good = [CHANGE_TYPE, 2, 0, None, [1, key.data], digest, T0, T0, T0 + DAY]
    rejects(signed_raw(["troth.identity.purpose-key", *good[1:]]), F.UNKNOWN_TYPE, 0)
    rejects(signed_raw([CHANGE_TYPE, 1, *good[2:]]), F.UNKNOWN_VERSION, 0)
    rejects(signed_raw([CHANGE_TYPE, 3, *good[2:]]), F.UNKNOWN_VERSION, 0)
    rejects(signed_raw(good[:8]), F.MALFORMED, 0)
    rejects(signed_raw([*good, 0]), F.MALFORMED, 0)
    rejects(signed_raw([*good[:2], -1, *good[3:]]), F.MALFORMED, 0)  # negative index
    rejects(signed_raw([*good[:2], b"\x00", *good[3:]]), F.MALFORMED, 0)  # index not an integer
    rejects(signed_raw([*good[:3], b"short", *good[4:]]), F.MALFORMED, 0)
    rejects(signed_raw([*good[:4], [9, key.data], *good[5:]]), F.MALFORMED, 0)  # unknown type
    rejects(signed_raw([*good[:4], [3, key.data], *good[5:]]), F.MALFORMED, 0)  # X25519 can't sign
    rejects(signed_raw([*good[:4], [1, key.data[:31]], *good[5:]]), F.MALFORMED, 0)
    rejects(signed_raw([*good[:5], digest[:31], *good[6:]]), F.MALFORMED, 0)  # short digest
    rejects(signed_raw([*good[:5], None, *good[6:]]), F.MALFORMED, 0)  # no commitment
    rejects(signed_raw([*good[:6], -1, *good[7:]]), F.MALFORMED, 0)


def test_non_canonical_body_rejected() -> None:
    keys, changes, _ = honest_history(1)
    body = changes[0].body
    created = b"\x1a" + T0.to_bytes(4, "big")  # created_at as a 4-byte unsigned integer
    index = body.index(created)
    widened = body[:index] + b"\x1b\x00\x00\x00\x00" + body[index + 1 :]  # the same in 8 bytes
    forged = SignedChange(widened, keys[0].sign(widened), None)
    rejects(encode([forged]), F.MALFORMED, 0)


# -- links, indexes and signatures ---------------------------------------------------------------


def test_broken_link() -> None:
    keys, changes, next_key = honest_history(1)
    body = body_for(next_key, sha256(b"not the previous change"), T0 + DAY)
    rejects(encode([changes[0], sign_change(body, next_key, keys[0])]), F.BROKEN_LINK, 1)


def test_first_change_must_not_link() -> None:
    key = generate_private_key(KeyType.ED25519)
    body = body_for(key, sha256(b"x"), T0, index=0)
    rejects(encode([sign_change(body, key, None)]), F.BROKEN_LINK, 0)


@pytest.mark.parametrize("wrong", [0, 2, 7, 2**32])
def test_change_with_a_wrong_index(wrong: int) -> None:
    history = honest_history(1)
    body = body_for(history.next_key, sha256(history.changes[0].body), T0 + DAY, index=wrong)
    change = sign_change(body, history.next_key, history.keys[0])
    rejects(encode([history.changes[0], change]), F.BROKEN_LINK, 1)
    key = generate_private_key(KeyType.ED25519)
    first = sign_change(body_for(key, None, T0, index=1), key, None)
    rejects(encode([first]), F.BROKEN_LINK, 0)


def test_reordered_changes() -> None:
    _, changes, _ = honest_history(3)
    rejects(encode([changes[0], changes[2], changes[1]]), F.BROKEN_LINK, 1)
    rejects(encode([changes[1], changes[0]]), F.BROKEN_LINK, 0)


def test_dropped_middle_change() -> None:
    _, changes, _ = honest_history(3)
    rejects(encode([changes[0], changes[2]]), F.BROKEN_LINK, 1)


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_bad_signature(key_type: KeyType) -> None:
    _, changes, _ = honest_history(2, key_type)
    bad = bytearray(changes[1].signature)
    bad[3] ^= 0x01
    tampered = changes[1]._replace(signature=bytes(bad))
    rejects(encode([changes[0], tampered]), F.BAD_SIGNATURE, 1)


def test_signature_by_wrong_key() -> None:
    _keys, changes, _ = honest_history(1)
    intruder = generate_private_key(KeyType.ED25519)
    forged = changes[0]._replace(signature=intruder.sign(changes[0].body))
    rejects(encode([forged]), F.BAD_SIGNATURE, 0)


def test_missing_previous_signature() -> None:
    _, changes, _ = honest_history(2)
    rejects(
        encode([changes[0], changes[1]._replace(previous_signature=None)]),
        F.MISSING_PREVIOUS_SIGNATURE,
        1,
    )


def test_previous_signature_by_wrong_key() -> None:
    """Even the holder of the committed next key (a stolen backup of the sealed key alone)
    cannot rotate without the current key: the previous-key signature stays required."""
    history = honest_history(1)
    body = body_for(history.next_key, sha256(history.changes[0].body), T0 + DAY)
    forged = sign_change(body, history.next_key, history.next_key)
    rejects(encode([history.changes[0], forged]), F.BAD_PREVIOUS_SIGNATURE, 1)


def test_unexpected_previous_signature_on_first_change() -> None:
    keys, changes, _ = honest_history(1)
    extra = changes[0]._replace(previous_signature=keys[0].sign(changes[0].body))
    rejects(encode([extra]), F.UNEXPECTED_PREVIOUS_SIGNATURE, 0)


# -- time ----------------------------------------------------------------------------------------


def test_created_outside_own_validity() -> None:
    key = generate_private_key(KeyType.ED25519)
    body = body_for(key, None, T0, valid_from=T0 + 10, valid_until=T0 + DAY)
    rejects(encode([sign_change(body, key, None)]), F.KEY_OUTSIDE_VALIDITY, 0)
    body = body_for(key, None, T0 + 2 * DAY, valid_from=T0, valid_until=T0 + DAY)
    rejects(encode([sign_change(body, key, None)]), F.KEY_OUTSIDE_VALIDITY, 0)


def test_expired_key_cannot_sign_a_rotation() -> None:
    """Trail of Bits (Ockam review): an expired key could still sign a rotation."""
    old = generate_private_key(KeyType.ED25519)
    new = generate_private_key(KeyType.ED25519)
    first = sign_change(body_for(old, None, T0, valid_until=T0 + DAY, commit=new), old, None)
    late = body_for(new, sha256(first.body), T0 + 2 * DAY)
    rejects(encode([first, sign_change(late, new, old)]), F.KEY_OUTSIDE_VALIDITY, 1)


def test_time_reversed() -> None:
    old = generate_private_key(KeyType.ED25519)
    new = generate_private_key(KeyType.ED25519)
    first = sign_change(body_for(old, None, T0 + DAY, valid_from=T0, commit=new), old, None)
    earlier = body_for(new, sha256(first.body), T0 + 10)
    rejects(encode([first, sign_change(earlier, new, old)]), F.TIME_REVERSED, 1)


def test_future_change() -> None:
    _, changes, _ = honest_history(1, start=NOW + limits.MAX_CLOCK_SKEW_SECONDS + 1)
    rejects(encode(changes), F.FUTURE_CHANGE, 0)
    _, changes, _ = honest_history(1, start=NOW + limits.MAX_CLOCK_SKEW_SECONDS)
    verify_history(encode(changes), now=NOW)  # within the skew: accepted


def test_current_key_expired_at_now() -> None:
    key = generate_private_key(KeyType.ED25519)
    change = sign_change(body_for(key, None, T0, valid_until=T0 + DAY), key, None)
    rejects(encode([change]), F.KEY_OUTSIDE_VALIDITY, 0, now=T0 + DAY + 1)
    verify_history(encode([change]), now=T0 + DAY)  # the last valid second


# -- append-only ---------------------------------------------------------------------------------


def test_extension_accepted_fork_and_rollback_rejected() -> None:
    history = honest_history(3)
    changes = history.changes
    stored = change_hashes(encode(changes[:2]))
    check_extends(stored, verify_history(encode(changes[:2]), now=NOW))  # same
    check_extends(stored, verify_history(encode(changes), now=NOW))  # extension
    with pytest.raises(IdentityError) as caught:
        check_extends(stored, verify_history(encode(changes[:1]), now=NOW))
    assert caught.value.reason is F.ROLLBACK
    # a fork that verifies on its own: the committed key k1 re-used with another next key
    # (what a thief holding a full backup, sealed next key included, can build)
    prefix = HonestHistory(history.keys[:1], changes[:1], history.keys[1])
    fork = extend(prefix, T0 + DAY + 5)
    with pytest.raises(IdentityError) as caught:
        check_extends(stored, verify_history(encode(fork.changes), now=NOW))
    assert caught.value.reason is F.FORK
    assert caught.value.change == 1
    _, unrelated, _ = honest_history(2)
    with pytest.raises(IdentityError) as caught:
        check_extends(stored, verify_history(encode(unrelated), now=NOW))
    assert caught.value.reason is F.IDENTIFIER_MISMATCH


# -- properties ------------------------------------------------------------------------------------

_KEYS, _CHANGES, _NEXT = honest_history(2)
_HISTORY = encode(_CHANGES)
_IDENTITY = verify_history(_HISTORY, now=NOW)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_flipped_bytes_are_rejected_never_another_identity(data: st.DataObject) -> None:
    mutated = bytearray(_HISTORY)
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] ^= data.draw(st.integers(1, 255))
    try:
        identity = verify_history(bytes(mutated), now=NOW)
    except IdentityError:
        return
    assert identity.identifier == _IDENTITY.identifier  # never a different identity
    assert [c.change_hash for c in identity.changes] == [c.change_hash for c in _IDENTITY.changes]


@pytest.mark.parametrize("position", range(len(_HISTORY)))
def test_every_single_byte_flip_is_refused(position: int) -> None:
    """Tamper one byte anywhere in a v2 history (index, commitment and checkpoint slot
    included): refused, whichever check catches it."""
    mutated = bytearray(_HISTORY)
    mutated[position] ^= 0x01
    with pytest.raises(IdentityError):
        verify_history(bytes(mutated), now=NOW)


@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_history(data)
    with contextlib.suppress(IdentityError):
        verify_history(data, now=NOW)


# -- the typed encoders agree with the generic one -----------------------------------------------


@pytest.mark.parametrize("key_type", list(KeyType))
def test_next_key_digest_is_over_the_key_as_carried(key_type: KeyType) -> None:
    key = generate_private_key(key_type).public_key
    carried = cbor.encode(encode_public_key(key))
    assert next_key_digest(key) == sha256(NEXT_KEY_DOMAIN + carried)


_EDGES = [0, 2**64 - 1, 2**64, -1, -(2**64), -(2**64) - 1, True, False]
_ANY_INT = st.sampled_from(_EDGES) | st.integers(min_value=T0, max_value=T0 + 2**40)
_ODD = st.sampled_from([1.5, frozenset({1}), "text", 2**70])  # what a typed field must not be
_ANY_BYTES = st.binary(max_size=40) | st.binary(max_size=40).map(bytearray) | _ODD


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    ints=st.tuples(_ANY_INT, _ANY_INT, _ANY_INT, _ANY_INT),
    previous=st.none() | _ANY_BYTES,
    digest=_ANY_BYTES,
)
@example(ints=(0, T0, T0, 2**64), previous=None, digest=bytes(32))
@example(ints=(-1, T0, T0, T0), previous=None, digest=bytes(32))
@example(ints=(0, T0, T0, T0), previous=None, digest=1.5)
@example(ints=(1, T0, T0, T0), previous=frozenset({1}), digest=bytes(32))
def test_change_body_encoding_is_the_generic_encoding(
    ints: tuple[int, int, int, int], previous: bytes | None, digest: bytes
) -> None:
    """ChangeBody.encode checks its own fields instead of walking them: for every value it
    gives what cbor.encode gives (or refuses what it refuses)."""
    key = generate_private_key(KeyType.ED25519).public_key
    position, created_at, valid_from, valid_until = ints
    body = ChangeBody(position, previous, key, digest, created_at, valid_from, valid_until)
    value = [CHANGE_TYPE, 2, position, previous, encode_public_key(key), digest, *ints[1:]]
    try:
        expected = cbor.encode(value)
    except DecodeError:
        with pytest.raises(DecodeError) as raised:
            body.encode()
        assert raised.value.problem is DecodeProblem.MALFORMED
        return
    assert body.encode() == expected


@settings(max_examples=200)
@given(
    changes=st.lists(st.tuples(_ANY_BYTES, _ANY_BYTES, st.none() | _ANY_BYTES), max_size=3),
    checkpointed=st.booleans(),
)
@example(changes=[(b"body", 1.5, None)], checkpointed=False)
@example(changes=[(b"body", bytes(64), b"x"), (frozenset({1}), b"", None)], checkpointed=False)
@example(changes=[(b"body", bytes(64), 2**70)], checkpointed=False)
def test_history_encoding_is_the_generic_encoding(
    changes: list[tuple[bytes, bytes, bytes | None]], checkpointed: bool
) -> None:
    checkpoint = Checkpoint(bytes(32), bytes(range(32)), 3) if checkpointed else None
    signed = [SignedChange(*change) for change in changes]
    slot = None if checkpoint is None else checkpoint.to_cbor()
    try:
        expected = cbor.encode([HISTORY_TYPE, 2, [list(change) for change in changes], slot])
    except DecodeError:
        with pytest.raises(DecodeError) as raised:
            encode_history(signed, checkpoint)
        assert raised.value.problem is DecodeProblem.MALFORMED
        return
    assert encode_history(signed, checkpoint) == expected
