"""Review 58m, identity layer: attacks tried that did not work (each test fails if the defence
it exercises breaks). The attacker holds a key a rotation retired (a plain one, or the
`--compromised` recovery), forks from the change before the rotation, replays changes between
identities, cuts histories at a checkpoint, or re-encodes a first change."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.histories import (
    DAY,
    HonestHistory,
    body_for,
    encode,
    extend,
    honest_history,
    sign_change,
)
from troth import limits
from troth.crypto import KeyType, sha256
from troth.crypto.private import PrivateKey, generate_private_key
from troth.encoding import cbor
from troth.errors import IdentityError, IdentityFailure
from troth.identity import (
    ChangeBody,
    Checkpoint,
    IdentityService,
    SignedChange,
    encode_history,
    verify_attestation,
    verify_history,
)
from troth.identity.attestation import ATTESTATION_TYPE
from troth.storage import SqliteDatabase, SqliteIdentityStore
from troth.vault import KeyPurpose, SoftwareVault

F = IdentityFailure
T = NOW - 10 * DAY


def _verifier(tmp_path: Path) -> IdentityService:
    return IdentityService(SoftwareVault(), SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db")))


def _reason(call: object, *args: object, **kwargs: object) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def _attestation(signer: PrivateKey, identifier: bytes, change_hash: bytes, at: int) -> bytes:
    """A signing-key attestation naming `change_hash`, signed by `signer` (what a holder of a
    retired primary key can make)."""
    key = generate_private_key(KeyType.ED25519).public_key
    body = cbor.encode(
        [
            ATTESTATION_TYPE,
            1,
            identifier,
            change_hash,
            int(KeyPurpose.SIGNING),
            [int(key.key_type), key.data],
            at,
            at + 3600,
        ]
    )
    return cbor.encode([body, signer.sign(body)])


def _compromised(owner: HonestHistory, at: int) -> HonestHistory:
    """The owner's `rotate(compromised=True)`: two changes at one time, the second revealing
    a key the first committed to, which no copy of the vault holds."""
    return extend(extend(owner, at), at)


def test_a_thief_of_the_keys_a_compromised_rotation_retired_speaks_for_nothing(
    tmp_path: Path,
) -> None:
    """A stolen backup holds k0 and the committed n1. The owner rotates as compromised:
    [c0, c1 (n1), c2 (n2)]. With k0 and n1 the thief can continue from c1 (n2 is committed
    there), attest a key under c1 or c2, present the prefix [c0, c1], or fork at c1: each is
    refused, statelessly where the history says so, by a verifier's store otherwise (which
    keeps the fork as evidence, and lets no fork through as an "older prefix")."""
    start = honest_history(1, start=T)
    k0, n1 = start.keys[0], start.next_key
    owner = _compromised(start, T + DAY)
    c0, c1, c2 = owner.changes
    identifier = sha256(c0.body)
    real = verify_history(encode(owner.changes), now=NOW)
    verifier = _verifier(tmp_path)
    verifier.observe(real)

    own = generate_private_key(KeyType.ED25519)  # the thief's continuation of c1: not n2
    body = body_for(own, sha256(c1.body), T + DAY + 5, index=2)
    after_c1 = sign_change(body, own, n1)
    assert (
        _reason(verify_history, encode([c0, c1, after_c1]), now=NOW).reason is F.NEXT_KEY_MISMATCH
    )

    stale = _attestation(n1, identifier, sha256(c1.body), NOW)
    current = _attestation(n1, identifier, sha256(c2.body), NOW)
    purpose = KeyPurpose.SIGNING
    assert _reason(verify_attestation, real, stale, purpose=purpose, now=NOW).reason is (
        F.ATTESTATION_STALE
    )
    assert _reason(verify_attestation, real, current, purpose=purpose, now=NOW).reason is (
        F.ATTESTATION_INVALID
    )

    prefix = verify_history(encode([c0, c1]), now=NOW)
    verify_attestation(prefix, stale, purpose=purpose, now=NOW)  # stateless: the feed's job
    assert _reason(verifier.observe, prefix).reason is F.ROLLBACK

    fork = extend(HonestHistory([k0], [c0], n1), T + DAY)  # reveals n1, commits elsewhere
    forked = verify_history(encode(fork.changes), now=NOW)
    assert _reason(verifier.observe, forked).reason is F.FORK
    assert _reason(verifier.check_no_fork, forked).reason is F.FORK
    assert [f.index for f in verifier.forks(forked.identifier)] == [1]
    assert verifier.stored_changes(real.identifier) == 3


def test_a_change_replayed_onto_another_identity_does_not_link(tmp_path: Path) -> None:
    """Alice's rotation (signed by her keys) appended to Bob's first change, or a change with
    her rotation's key and times signed again by Bob's keys: it names her change as previous,
    or reveals a key his first change never committed to."""
    alice, bob = honest_history(2, start=T), honest_history(1, start=T)
    replayed = encode([bob.changes[0], alice.changes[1]])
    refused = _reason(verify_history, replayed, now=NOW)
    assert (refused.reason, refused.change) == (F.BROKEN_LINK, 1)
    body = ChangeBody.decode(alice.changes[1].body)._replace(previous=sha256(bob.changes[0].body))
    resigned = sign_change(body, alice.keys[1], bob.keys[0])
    refused = _reason(verify_history, encode([bob.changes[0], resigned]), now=NOW)
    assert (refused.reason, refused.change) == (F.NEXT_KEY_MISMATCH, 1)


def test_a_checkpointed_fork_is_judged_by_the_full_copy_held(tmp_path: Path) -> None:
    """A verifier stores her full [c0..c3]. A thief holding the keys of her c1 (a backup: k1
    and the committed n2) presents its fork from a checkpoint: at index 2 (its own c2', whatever
    authority or callback vouches: the stored copy's word counts, and it holds another c2) or
    at index 1 (her real c1, which the store attests, then its c2'): refused both ways."""
    line = honest_history(4, start=T)
    verifier = _verifier(tmp_path)
    verifier.observe(verify_history(encode(line.changes), now=NOW))
    # the thief's c2' reveals the key c1 committed to (the backup holds it), at another time
    # and committing to a key of its own
    n2 = line.keys[2]
    committed = generate_private_key(KeyType.ED25519)
    body = body_for(n2, sha256(line.changes[1].body), T + 2 * DAY + 7, commit=committed, index=2)
    own = sign_change(body, n2, line.keys[1])
    fork = HonestHistory([*line.keys[:2], n2], [*line.changes[:2], own], committed)
    fork = extend(extend(fork, T + 3 * DAY), T + 4 * DAY)
    identifier = sha256(line.changes[0].body)
    authority = generate_private_key(KeyType.ED25519).public_key.data[:32]

    def cut(start: int) -> bytes:
        return encode_history(fork.changes[start:], Checkpoint(identifier, authority, start))

    def yes(checkpoint: Checkpoint, change_hash: bytes) -> bool:
        return True

    refused = _reason(verifier.import_history, cut(2), now=NOW, checkpoints=yes)
    assert refused.reason is F.UNATTESTED_CHECKPOINT
    refused = _reason(verifier.import_history, cut(1), now=NOW)
    assert (refused.reason, refused.change) == (F.FORK, 2)
    assert verifier.stored_changes(verify_history(encode(line.changes), now=NOW).identifier) == 4


def test_a_first_change_has_one_encoding_so_one_identifier() -> None:
    """The same first change re-encoded (created_at as a 9-byte integer, the array of
    indefinite length, valid_until as a float) and signed by its own key: each is malformed,
    so no two byte strings of one change value give two identifiers (and no float equal to an
    integer passes for it)."""
    key = generate_private_key(KeyType.ED25519)
    body = body_for(key, None, T)
    canonical = body.encode()
    stretched = canonical.replace(
        cbor.encode(body.created_at), b"\x1b" + struct.pack(">Q", body.created_at), 1
    )
    indefinite = b"\x9f" + canonical[1:] + b"\xff"
    as_float = canonical[:1] + canonical[1:].replace(
        cbor.encode(body.valid_until), b"\xfb" + struct.pack(">d", float(body.valid_until)), 1
    )
    assert len({canonical, stretched, indefinite, as_float}) == 4
    for encoded in (stretched, indefinite, as_float):
        history = encode([SignedChange(encoded, key.sign(encoded), None)])
        assert _reason(verify_history, history, now=NOW).reason is F.MALFORMED
    verify_history(encode([SignedChange(canonical, key.sign(canonical), None)]), now=NOW)


def test_time_backwards_and_ahead() -> None:
    """A rotation dated before its predecessor, or more than the skew ahead of the verifier;
    a history verified when its change was no longer ahead, re-checked at an earlier time."""
    line = honest_history(1, start=T)
    back = extend(line, T - 1)
    assert _reason(verify_history, encode(back.changes), now=NOW).reason is F.TIME_REVERSED
    skew = limits.MAX_CLOCK_SKEW_SECONDS
    ahead = extend(line, NOW + skew)
    verified = verify_history(encode(ahead.changes), now=NOW)
    beyond = extend(line, NOW + skew + 1)
    assert _reason(verify_history, encode(beyond.changes), now=NOW).reason is F.FUTURE_CHANGE
    assert _reason(verified.check_valid_at, NOW - 1).reason is F.FUTURE_CHANGE


def test_the_longest_histories() -> None:
    """64 changes verify, 65 are over the limit; a history from a checkpoint at the last
    index a change may have cannot add one after it."""
    line = honest_history(limits.MAX_IDENTITY_CHANGES, start=T - 100 * DAY)
    verify_history(encode(line.changes), now=NOW)
    longer = extend(line, NOW - DAY)
    assert _reason(verify_history, encode(longer.changes), now=NOW).reason is F.OVER_LIMIT

    last = limits.MAX_CHANGE_INDEX
    keys = [generate_private_key(KeyType.ED25519) for _ in range(4)]
    first = body_for(keys[1], b"\x01" * 32, T, commit=keys[2], index=last)
    signed = sign_change(first, keys[1], keys[0])
    after = body_for(keys[2], sha256(signed.body), T + 1, commit=keys[3], index=last + 1)
    identifier = b"\x02" * 32
    cut = encode_history(
        [signed, sign_change(after, keys[2], keys[1])], Checkpoint(identifier, identifier, last)
    )
    refused = _reason(verify_history, cut, now=NOW, checkpoints=lambda c, h: True)
    assert (refused.reason, refused.change) == (F.OVER_LIMIT, last + 1)
    alone = encode_history([signed], Checkpoint(identifier, identifier, last))
    assert verify_history(alone, now=NOW, checkpoints=lambda c, h: True).current.index == last
