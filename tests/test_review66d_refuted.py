"""Review 66d, identity core: attacks on change histories, their decoding, identifiers and
the store of known histories that did NOT work. Each test is a real attempt and fails if the
defence it names breaks.

1. a change whose previous hash is right, signed by the pre-rotation key (a stolen old key):
   the key it reveals is not the one committed to;
2. a stolen old key signing a change that reveals the committed key: the new key's own
   signature is missing;
3. two changes at one index in one history (a fork inside the history);
4. reordered, duplicated, dropped changes;
5. a history that rotates back to a key it already used verifies (the owner's own choice),
   but an attestation made under the old change with that key does not speak under the new
   one: attestations name their change's hash;
6. a history rotating to the key of another identity: that identity's attestations name
   their identifier, so the key speaks for neither in the other's name;
7. non-canonical encodings of one change body, each signed validly by its key: refused, so
   one change has one identifier;
8. unknown version / type tag, extra elements, floats, tags, negative times inside the signed
   body: refused before any signature;
9. the history limit end to end: 64 changes (P-256, the largest keys and times) verify,
   65 are refused as over a limit;
10. a P-256 change signature malleated to (r, n - s), which plain ECDSA accepts (a second copy
    of the same change in other bytes): refused (troth.crypto rejects high s), and the stored
    copy is not rewritten;
11. store-or-extend against a peer: an older prefix (ROLLBACK), a fork at one index (FORK),
    and a fork made with the stolen committed key leave the stored copy as it was;
12. property: any one byte of a valid history changed makes verification raise IdentityError
    (never another exception, never a verified identity);
13. a P-256 primary key in its X9.62 hybrid form (0x06 / 0x07 || x || y, the same 65 bytes'
    length as the uncompressed form troth uses): a second encoding of one key would be a
    second pre-rotation commitment to it; refused (malformed) inside the signed body;
14. a peer vouching (its `checkpoints` says yes to anything) for a checkpointed history of a
    stored identity, from a change of its own after the stored copy's: `import_history`
    refuses it (not attested by the stored copy, which no one's word overrides) and the stored
    copy is untouched;
15. random sequences of `import_history` (one store, no cache) of slices of one identity's
    honest history and of forks a stolen backup made at each change, from change 0 or from a
    checkpoint an authority attesting only the honest changes vouches for: once the store holds
    a change at an index it never holds another there, and its last change never moves back;
16. a stranger claiming another identity's public key (committing to it costs only its
    digest): a first change naming it, or a rotation revealing it, needs that key's own
    signature over the change (bad signature, before the previous key's).
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.histories import (
    DAY,
    T0,
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
    Checkpoint,
    IdentityService,
    SignedChange,
    VerifiedIdentity,
    encode_history,
    verify_attestation,
    verify_history,
)
from troth.identity.attestation import ATTESTATION_TYPE
from troth.identity.change import CHANGE_TYPE, FORMAT_VERSION, UnverifiedHistory
from troth.storage import SqliteDatabase, SqliteIdentityStore
from troth.vault import KeyPurpose, SoftwareVault

F = IdentityFailure
NOW = T0 + 10 * DAY
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def refused(data: bytes, reason: IdentityFailure, change: int | None = None) -> None:
    with pytest.raises(IdentityError) as caught:
        verify_history(data, now=NOW)
    assert caught.value.reason is reason, caught.value
    assert caught.value.change == change, caught.value


def chain(keys: list[PrivateKey], commits: list[PrivateKey]) -> list[SignedChange]:
    """Changes revealing keys[i] and committing to commits[i], one day apart."""
    signed: list[SignedChange] = []
    previous: bytes | None = None
    for index, key in enumerate(keys):
        body = body_for(key, previous, T0 + index * DAY, commit=commits[index], index=index)
        signed.append(sign_change(body, key, keys[index - 1] if index else None))
        previous = sha256(signed[-1].body)
    return signed


def attestation(key: PrivateKey, identity: VerifiedIdentity, change_hash: bytes) -> bytes:
    """A signing-key attestation for `identity` under `change_hash`, signed by `key`."""
    signing = generate_private_key(KeyType.ED25519).public_key
    body = cbor.encode(
        [
            ATTESTATION_TYPE,
            1,
            identity.identifier.digest,
            change_hash,
            int(KeyPurpose.SIGNING),
            [int(signing.key_type), signing.data],
            T0 + 2 * DAY,
            NOW + DAY,
        ]
    )
    return cbor.encode([body, key.sign(body)])


# 1, 2 -------------------------------------------------------------------------------------------


def test_66d_refuted_1_stolen_old_key_cannot_sign_a_rotation() -> None:
    history = honest_history(2)
    k0, k1 = history.keys
    # the thief holds k0 (rotated away from) and even k1: change 2 reveals k0 again
    body = body_for(k0, sha256(history.changes[1].body), T0 + 3 * DAY, index=2)
    refused(encode([*history.changes, sign_change(body, k0, k1)]), F.NEXT_KEY_MISMATCH, 2)


def test_66d_refuted_2_old_key_cannot_sign_for_the_committed_key() -> None:
    history = honest_history(2)
    body = body_for(history.next_key, sha256(history.changes[1].body), T0 + 3 * DAY, index=2)
    encoded = body.encode()
    thief = history.keys[0]  # signs in the committed key's place
    forged = SignedChange(encoded, thief.sign(encoded), history.keys[1].sign(encoded))
    refused(encode([*history.changes, forged]), F.BAD_SIGNATURE, 2)


# 3, 4 -------------------------------------------------------------------------------------------


def test_66d_refuted_3_two_changes_at_one_index() -> None:
    history = honest_history(2)
    # a second change 1, made by the holder of both keys (a stolen backup)
    other = body_for(history.keys[1], sha256(history.changes[0].body), T0 + 2 * DAY, index=1)
    twin = sign_change(other, history.keys[1], history.keys[0])
    refused(encode([*history.changes, twin]), F.BROKEN_LINK, 2)


def test_66d_refuted_4_reordered_duplicated_dropped_changes() -> None:
    c0, c1, c2 = honest_history(3).changes
    refused(encode([c1, c0, c2]), F.BROKEN_LINK, 0)
    refused(encode([c0, c0, c1, c2]), F.BROKEN_LINK, 1)
    refused(encode([c0, c1, c1, c2]), F.BROKEN_LINK, 2)
    refused(encode([c0, c2]), F.BROKEN_LINK, 1)


# 5, 6 -------------------------------------------------------------------------------------------


def test_66d_refuted_5_a_reused_key_speaks_only_under_its_newest_change() -> None:
    k0, k1 = generate_private_key(KeyType.ED25519), generate_private_key(KeyType.ED25519)
    changes = chain([k0, k1, k0], [k1, k0, k1])  # rotates back to k0
    old = verify_history(encode(changes[:1]), now=NOW)
    made_then = attestation(k0, old, old.current_change_hash)
    assert verify_attestation(old, made_then, purpose=KeyPurpose.SIGNING, now=NOW)
    identity = verify_history(encode(changes), now=NOW)
    assert identity.current_key == k0.public_key  # the owner's choice: it verifies
    with pytest.raises(IdentityError) as caught:
        verify_attestation(identity, made_then, purpose=KeyPurpose.SIGNING, now=NOW)
    assert caught.value.reason is F.ATTESTATION_STALE


def test_66d_refuted_6_a_key_of_another_identity_speaks_for_neither_in_the_other() -> None:
    shared, k1 = generate_private_key(KeyType.ED25519), generate_private_key(KeyType.ED25519)
    other = verify_history(encode(chain([shared], [k1])), now=NOW)
    # identity A rotates to B's primary key (it holds it: the only way to sign the reveal)
    a0 = generate_private_key(KeyType.ED25519)
    a = verify_history(encode(chain([a0, shared], [shared, k1])), now=NOW)
    b_says = attestation(shared, other, other.current_change_hash)
    with pytest.raises(IdentityError) as caught:
        verify_attestation(a, b_says, purpose=KeyPurpose.SIGNING, now=NOW)
    assert caught.value.reason is F.IDENTIFIER_MISMATCH
    a_says = attestation(shared, a, a.current_change_hash)
    with pytest.raises(IdentityError) as caught:
        verify_attestation(other, a_says, purpose=KeyPurpose.SIGNING, now=NOW)
    assert caught.value.reason is F.IDENTIFIER_MISMATCH


# 7, 8 -------------------------------------------------------------------------------------------


def _signed_first(key: PrivateKey, body: bytes) -> bytes:
    return encode_history([SignedChange(body, key.sign(body), None)])


def test_66d_refuted_7_one_change_one_encoding() -> None:
    key = generate_private_key(KeyType.ED25519)
    canonical = body_for(key, None, T0, index=0).encode()
    assert verify_history(_signed_first(key, canonical), now=NOW)
    header = cbor.encode([CHANGE_TYPE, FORMAT_VERSION])[:-1]  # up to the version
    assert canonical.startswith(header[1:], 1)
    assert canonical[len(header)] == 0x02
    index_at = len(header) + 1  # the index, 0: one byte 0x00
    assert canonical[index_at] == 0x00
    variants = {
        "index in two bytes": canonical[:index_at] + b"\x18\x00" + canonical[index_at + 1 :],
        "indefinite array": b"\x9f" + canonical[1:] + b"\xff",
        "version in two bytes": canonical[: len(header)] + b"\x18\x02" + canonical[index_at:],
    }
    for name, variant in variants.items():
        with pytest.raises(IdentityError) as caught:
            verify_history(_signed_first(key, variant), now=NOW)
        assert caught.value.reason is F.MALFORMED, name
        assert "shortest" in str(caught.value) or "indefinite" in str(caught.value), name


@pytest.mark.parametrize(
    ("name", "edit", "reason"),
    [
        ("version 3", lambda f: [f[0], 3, *f[2:]], F.UNKNOWN_VERSION),
        ("version 1", lambda f: [f[0], 1, *f[2:]], F.UNKNOWN_VERSION),
        ("other tag", lambda f: ["troth.identity.purpose-key", *f[1:]], F.UNKNOWN_TYPE),
        ("extra element", lambda f: [*f, 0], F.MALFORMED),
        ("map", lambda f: {"body": f}, F.MALFORMED),
        ("float time", lambda f: [*f[:6], float(f[6]), *f[7:]], F.MALFORMED),
        ("tagged time", lambda f: [*f[:6], cbor2.CBORTag(1, f[6]), *f[7:]], F.MALFORMED),
        ("negative time", lambda f: [*f[:6], -1, -5, f[8]], F.MALFORMED),
        ("key type bool", lambda f: [*f[:4], [True, f[4][1]], *f[5:]], F.MALFORMED),
        ("x25519 primary", lambda f: [*f[:4], [3, f[4][1]], *f[5:]], F.MALFORMED),
    ],
)
def test_66d_refuted_8_foreign_fields_inside_the_signed_body(
    name: str, edit: object, reason: IdentityFailure
) -> None:

    key = generate_private_key(KeyType.ED25519)
    fields = cbor2.loads(body_for(key, None, T0, index=0).encode())
    assert callable(edit)
    refused(_signed_first(key, cbor2.dumps(edit(fields))), reason, 0)


# 9 ----------------------------------------------------------------------------------------------


def test_66d_refuted_9_the_history_limit_at_its_boundary() -> None:
    latest = (1 << 64) - 1  # the longest times a body may carry
    keys = [generate_private_key(KeyType.P256) for _ in range(limits.MAX_IDENTITY_CHANGES + 2)]
    signed: list[SignedChange] = []
    previous: bytes | None = None
    for index in range(limits.MAX_IDENTITY_CHANGES + 1):
        created = (1 << 32) + index
        body = body_for(
            keys[index], previous, created, created, latest, commit=keys[index + 1], index=index
        )
        signed.append(sign_change(body, keys[index], keys[index - 1] if index else None))
        previous = sha256(signed[-1].body)
    at_limit = encode(signed[: limits.MAX_IDENTITY_CHANGES])
    assert len(at_limit) <= limits.MAX_IDENTITY_HISTORY_BYTES
    late = (1 << 32) + 100
    assert verify_history(at_limit, now=late).change_count == limits.MAX_IDENTITY_CHANGES
    with pytest.raises(IdentityError) as caught:
        verify_history(encode(signed), now=late)
    assert caught.value.reason is F.OVER_LIMIT


# 10, 11 -----------------------------------------------------------------------------------------


@pytest.fixture
def observer(tmp_path: Path) -> IdentityService:
    return IdentityService(SoftwareVault(), SqliteIdentityStore(SqliteDatabase(tmp_path / "k.db")))


def _high_s(signature: bytes) -> bytes:
    s = int.from_bytes(signature[32:], "big")
    assert s <= P256_ORDER // 2  # troth signs low s
    return signature[:32] + (P256_ORDER - s).to_bytes(32, "big")


def test_66d_refuted_10_malleated_p256_signature_is_refused(observer: IdentityService) -> None:
    history = honest_history(2, KeyType.P256)
    identity = verify_history(encode(history.changes), now=NOW)
    observer.observe(identity)
    c0, c1 = history.changes
    refused(encode([c0, c1._replace(signature=_high_s(c1.signature))]), F.BAD_SIGNATURE, 1)
    assert c1.previous_signature is not None
    mangled = c1._replace(previous_signature=_high_s(c1.previous_signature))
    refused(encode([c0, mangled]), F.BAD_PREVIOUS_SIGNATURE, 1)
    refused(encode([c0._replace(signature=_high_s(c0.signature)), c1]), F.BAD_SIGNATURE, 0)
    assert observer.store.get_history(identity.identifier.digest)[0] == identity.history  # type: ignore[index]


def test_66d_refuted_11_a_peer_cannot_roll_back_or_fork_the_stored_copy(
    observer: IdentityService,
) -> None:
    history = extend(honest_history(2), T0 + 3 * DAY)
    full = verify_history(encode(history.changes), now=NOW)
    observer.observe(full)
    digest = full.identifier.digest
    older = verify_history(encode(history.changes[:2]), now=NOW)
    with pytest.raises(IdentityError) as caught:
        observer.observe(older)
    assert caught.value.reason is F.ROLLBACK
    # a stolen backup holding k1 and the committed k2: its own change 2
    thief = honest_history(2)._replace(keys=history.keys[:2], changes=history.changes[:2])
    thief = thief._replace(next_key=history.keys[2])
    forked = verify_history(encode(extend(thief, T0 + 2 * DAY).changes), now=NOW)
    with pytest.raises(IdentityError) as caught:
        observer.observe(forked)
    assert caught.value.reason is F.FORK
    assert caught.value.change == 2
    assert observer.store.get_history(digest)[0] == full.history  # type: ignore[index]
    assert [f.index for f in observer.forks(full.identifier)] == [2]


# 12 ---------------------------------------------------------------------------------------------

_TAMPERED = encode(honest_history(2).changes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(at=st.integers(0, len(_TAMPERED) - 1), flip=st.integers(1, 255))
def test_66d_refuted_12_one_byte_changed_never_verifies(at: int, flip: int) -> None:
    tampered = bytearray(_TAMPERED)
    tampered[at] ^= flip
    with pytest.raises(IdentityError):
        verify_history(bytes(tampered), now=NOW)


# 13, 14 -----------------------------------------------------------------------------------------


def test_66d_refuted_13_a_p256_key_has_one_encoding() -> None:

    key = generate_private_key(KeyType.P256)
    fields = cbor2.loads(body_for(key, None, T0, index=0).encode())
    data = fields[4][1]
    assert data[0] == 0x04
    hybrid = bytes([0x06 | (data[-1] & 1)]) + data[1:]  # the hybrid form of the same point
    refused(
        _signed_first(key, cbor2.dumps([*fields[:4], [2, hybrid], *fields[5:]])), F.MALFORMED, 0
    )


def test_66d_refuted_14_no_vouching_overrides_the_stored_copy(observer: IdentityService) -> None:
    history = honest_history(3)
    full = verify_history(encode(history.changes), now=NOW)
    observer.observe(full)
    digest = full.identifier.digest
    mine = generate_private_key(KeyType.ED25519)  # the peer's own key, at change 3
    body = body_for(mine, full.current_change_hash, T0 + 4 * DAY, index=3)
    suffix = encode_history([sign_change(body, mine, mine)], Checkpoint(digest, b"\x01" * 32, 3))
    with pytest.raises(IdentityError) as caught:
        observer.import_history(suffix, now=NOW, checkpoints=lambda *_: True)
    assert caught.value.reason is F.UNATTESTED_CHECKPOINT
    assert observer.store.get_history(digest)[0] == full.history  # type: ignore[index]


def _slices(history: HonestHistory, rng: random.Random) -> list[SignedChange]:
    first = rng.randint(0, len(history.changes) - 1)
    return history.changes[first : rng.randint(first, len(history.changes) - 1) + 1]


@pytest.mark.parametrize("seed", [1, 2])
def test_66d_refuted_15_a_stored_change_is_never_replaced(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    honest = honest_history(1)
    for day in range(1, 8):
        honest = extend(honest, T0 + day * DAY)
    hashes = [sha256(c.body) for c in honest.changes]
    digest = hashes[0]

    def forked(at: int) -> HonestHistory:  # a stolen backup's keys up to change `at`'s
        stolen = HonestHistory(honest.keys[:at], honest.changes[:at], honest.keys[at])
        return extend(extend(stolen, T0 + at * DAY + 3600), T0 + at * DAY + 7200)

    def attests(checkpoint: Checkpoint, change_hash: bytes) -> bool:
        return checkpoint.index < len(hashes) and hashes[checkpoint.index] == change_hash

    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "k.db"))
    service = IdentityService(SoftwareVault(), store, known_cache_seconds=0)
    start = rng.randint(1, len(hashes))
    service.observe(verify_history(encode(honest.changes[:start]), now=NOW + 30 * DAY))
    held = dict(enumerate(hashes[:start]))
    last = start - 1
    for _ in range(25):
        source = honest if rng.random() < 0.3 else forked(rng.randint(1, len(hashes) - 1))
        changes = _slices(source, rng)
        first = source.changes.index(changes[0])
        data = encode_history(changes, Checkpoint(digest, b"\x05" * 32, first) if first else None)
        with contextlib.suppress(IdentityError):
            service.import_history(data, now=NOW + 30 * DAY, checkpoints=attests)
        stored = service.store.get_history(digest)
        assert stored is not None
        copy = UnverifiedHistory.decode(stored[0])
        for at, change in enumerate(copy.changes, copy.first_index):
            assert held.setdefault(at, sha256(change.body)) == sha256(change.body), at
        assert copy.first_index + len(copy.changes) - 1 >= last
        last = copy.first_index + len(copy.changes) - 1


def test_66d_refuted_16_a_strangers_key_cannot_be_claimed() -> None:
    victim = generate_private_key(KeyType.ED25519)
    mine = generate_private_key(KeyType.ED25519)
    claim = body_for(victim, None, T0, index=0).encode()
    refused(encode_history([SignedChange(claim, mine.sign(claim), None)]), F.BAD_SIGNATURE, 0)
    own = sign_change(body_for(mine, None, T0, commit=victim, index=0), mine, None)
    reveal = body_for(victim, sha256(own.body), T0 + DAY, index=1).encode()
    forged = SignedChange(reveal, mine.sign(reveal), mine.sign(reveal))
    refused(encode([own, forged]), F.BAD_SIGNATURE, 1)
