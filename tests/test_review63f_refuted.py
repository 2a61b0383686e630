"""Review 63f (adversarial, identities and their change histories): attacks that did not work.

Each test is a real attempt that fails if the defence it names breaks.

1. A stolen pre-rotation key signs a purpose-key attestation naming the identity's current
   change (a key valid at another index speaking for the current one): `bad signature`.
2. A stolen pre-rotation key signs an attestation under its own change, shown with the
   current history: `made under an older change`.
3. A checkpointed history whose attested first change is the owner's, followed by a change
   revealing a key of the thief's: the commitment is checked inside the suffix too.
4. A change's two signatures swapped (each a valid signature, remembered by `SeenSignatures`
   from an honest verification under the other key): refused, the memory is per key.
5. Two forks signed with a whole backup's keys, shown to a verifier again and again: kept as
   evidence at most `MAX_FORKS_PER_IDENTITY`, each once, and the owner's extension still stored.
6. An older full prefix shown to a verifier whose stored copy is a checkpointed suffix that
   starts after the prefix ends: refused (a gap), not accepted as an older prefix.
7. A history of `MAX_IDENTITY_CHANGES + 1` changes, and one from a checkpoint whose changes
   would pass `MAX_CHANGE_INDEX`: refused `over a limit` before any signature is checked.
8. Malformed identifiers and Multikeys (upper-case hex, a trailing newline, Arabic-Indic digits,
   bytes, a P-256 multicodec, an over-long value): MalformedText / ValueError, nothing else.
9. A purpose-key record of node.db pointed at the identity's committed next key (a writer of
   node.db): the rotation does not retire (delete) the key it is about to reveal.
10. A rotation with a stolen current key and a key of the thief's, the previous-key signature
    made by the current key: the next key's holder alone cannot be skipped (`does not match the
    pre-rotation commitment`), and the committed key alone lacks the previous-key signature.
"""

from __future__ import annotations

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
from troth.crypto.private import generate_private_key
from troth.encoding import cbor
from troth.errors import IdentityError, IdentityFailure, MalformedText
from troth.identity import (
    Checkpoint,
    Identifier,
    IdentityService,
    SeenSignatures,
    SignedChange,
    attest_purpose_key,
    ed25519_from_multikey,
    encode_history,
    new_identity,
    rotate_identity,
    verify_attestation,
    verify_history,
)
from troth.identity.attestation import ATTESTATION_TYPE
from troth.storage import PurposeKeyRecord, SqliteDatabase, SqliteIdentityStore
from troth.vault import KeyPurpose, SoftwareVault

F = IdentityFailure
START = NOW - 30 * DAY


def _refused(reason: IdentityFailure, data: bytes, **kwargs: object) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        verify_history(data, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason is reason, caught.value
    return caught.value


def _observer(path: Path) -> IdentityService:
    return IdentityService(SoftwareVault(), SqliteIdentityStore(SqliteDatabase(path)))


# -- 1, 2: a stolen pre-rotation key after the rotation ------------------------------------------


def _forged_attestation(old: HonestHistory, change_hash: bytes, identifier: bytes) -> bytes:
    """An attestation of a thief's channel key, signed with the pre-rotation key `old.keys[0]`."""
    key = generate_private_key(KeyType.X25519).public_key
    body = cbor.encode(
        [
            ATTESTATION_TYPE,
            1,
            identifier,
            change_hash,
            int(KeyPurpose.SECURE_CHANNEL),
            [int(key.key_type), key.data],
            NOW,
            NOW + 3600,
        ]
    )
    return cbor.encode([body, old.keys[0].sign(body)])


def test_1_pre_rotation_key_cannot_attest_under_the_current_change() -> None:
    history = honest_history(2, start=START)
    identity = verify_history(encode(history.changes), now=NOW)
    forged = _forged_attestation(history, identity.current_change_hash, identity.identifier.digest)
    with pytest.raises(IdentityError) as caught:
        verify_attestation(identity, forged, purpose=KeyPurpose.SECURE_CHANNEL, now=NOW)
    assert caught.value.reason is F.ATTESTATION_INVALID
    assert "bad signature" in str(caught.value)


def test_2_pre_rotation_key_attestation_under_its_own_change_is_stale() -> None:
    history = honest_history(2, start=START)
    identity = verify_history(encode(history.changes), now=NOW)
    forged = _forged_attestation(
        history, identity.changes[0].change_hash, identity.identifier.digest
    )
    with pytest.raises(IdentityError) as caught:
        verify_attestation(identity, forged, purpose=KeyPurpose.SECURE_CHANNEL, now=NOW)
    assert caught.value.reason is F.ATTESTATION_STALE


# -- 3: the commitment inside a checkpointed suffix ----------------------------------------------


def test_3_checkpointed_suffix_checks_the_commitment_after_its_first_change() -> None:
    history = honest_history(3, start=START)
    identifier = sha256(history.changes[0].body)
    thief = generate_private_key(KeyType.ED25519)
    forked = extend(history, START + 4 * DAY, new_key=thief)  # signed by key 2 and the thief's
    suffix = encode_history(forked.changes[2:], Checkpoint(identifier, b"\x07" * 32, 2))

    def attests(checkpoint: Checkpoint, change_hash: bytes) -> bool:
        return change_hash == sha256(history.changes[2].body)

    caught = _refused(F.NEXT_KEY_MISMATCH, suffix, checkpoints=attests)
    assert caught.change == 3


# -- 4: swapped signatures and the signature memory ----------------------------------------------


def test_4_swapped_signatures_are_refused_with_a_warm_signature_memory() -> None:
    history = honest_history(2, start=START)
    seen = SeenSignatures()
    verify_history(encode(history.changes), now=NOW, seen=seen)
    assert len(seen) == 3  # two change signatures and one previous-key signature remembered
    rotated = history.changes[1]
    swapped = SignedChange(rotated.body, rotated.previous_signature or b"", rotated.signature)
    caught = _refused(F.BAD_SIGNATURE, encode([history.changes[0], swapped]), seen=seen)
    assert caught.change == 1


# -- 5: forks shown again and again --------------------------------------------------------------


def test_5_forks_are_kept_once_each_and_bounded(tmp_path: Path) -> None:
    history = honest_history(2, start=START)
    owner = extend(history, START + 3 * DAY)
    observer = _observer(tmp_path / "observer.db")
    observer.observe(verify_history(encode(owner.changes), now=NOW))
    for offset in range(limits.MAX_FORKS_PER_IDENTITY + 2):
        # a whole backup (the current key and the committed next key): each fork commits to
        # another next key, so it is another change at index 2
        fork = extend(history, START + 3 * DAY + offset)
        for _ in range(2):  # each shown twice
            with pytest.raises(IdentityError) as caught:
                observer.observe(verify_history(encode(fork.changes), now=NOW))
            assert (caught.value.reason, caught.value.change) == (F.FORK, 2)
    identifier = Identifier(sha256(history.changes[0].body))
    kept = observer.forks(identifier)
    assert len(kept) == limits.MAX_FORKS_PER_IDENTITY
    assert len({k.change_hash for k in kept}) == len(kept)
    assert observer.stored_changes(identifier) == 3  # the owner's copy stands


def test_5b_the_first_extension_seen_is_stored_and_the_rest_are_forks(tmp_path: Path) -> None:
    history = honest_history(2, start=START)
    observer = _observer(tmp_path / "observer.db")
    owner = extend(history, START + 3 * DAY)
    thief = extend(history, START + 3 * DAY)
    observer.observe(verify_history(encode(owner.changes), now=NOW))
    with pytest.raises(IdentityError) as caught:
        observer.observe(verify_history(encode(thief.changes), now=NOW))
    assert (caught.value.reason, caught.value.change) == (F.FORK, 2)
    identifier = Identifier(sha256(history.changes[0].body))
    assert [k.change_hash for k in observer.forks(identifier)] == [sha256(thief.changes[2].body)]
    # the owner's next rotation still extends the stored copy
    observer.observe(verify_history(encode(extend(owner, START + 4 * DAY).changes), now=NOW))
    assert observer.stored_changes(identifier) == 4


# -- 6: an older prefix that ends before a checkpointed stored copy begins -----------------------


def test_6_prefix_before_a_checkpointed_copy_is_a_gap(tmp_path: Path) -> None:
    history = honest_history(5, start=START)
    identifier = sha256(history.changes[0].body)
    observer = _observer(tmp_path / "observer.db")
    suffix = encode_history(history.changes[3:], Checkpoint(identifier, b"\x07" * 32, 3))
    observer.import_history(suffix, now=NOW, checkpoints=lambda checkpoint, change_hash: True)
    stale = verify_history(encode(history.changes[:2]), now=NOW)  # a stolen backup's [c0, c1]
    with pytest.raises(IdentityError) as caught:
        observer.check_no_fork(stale)
    assert caught.value.reason is F.UNATTESTED_CHECKPOINT
    with pytest.raises(IdentityError) as caught:
        observer.observe(stale)
    assert caught.value.reason is F.ROLLBACK


# -- 7: a history grown past its limits ----------------------------------------------------------


def test_7_over_long_history_is_refused_before_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    import troth.identity.history as history_module

    calls: list[int] = []
    real = getattr(history_module, "verify_signature")  # noqa: B009 (not re-exported)

    def counted(*args: object) -> None:
        calls.append(1)
        real(*args)

    monkeypatch.setattr(history_module, "verify_signature", counted)
    history = honest_history(limits.MAX_IDENTITY_CHANGES, start=START)
    grown = extend(history, START + limits.MAX_IDENTITY_CHANGES * DAY)
    _refused(F.OVER_LIMIT, encode(grown.changes))
    assert calls == []
    # from a checkpoint so late that its last change would pass MAX_CHANGE_INDEX
    late = limits.MAX_CHANGE_INDEX
    keys = [generate_private_key(KeyType.ED25519) for _ in range(3)]
    first = body_for(keys[0], b"\x01" * 32, START, commit=keys[1], index=late)
    signed = sign_change(first, keys[0], keys[0])
    second = body_for(keys[1], sha256(signed.body), START + 1, commit=keys[2], index=late + 1)
    data = encode_history(
        [signed, sign_change(second, keys[1], keys[0])],
        Checkpoint(b"\x02" * 32, b"\x03" * 32, late),
    )
    caught = _refused(F.OVER_LIMIT, data, checkpoints=lambda checkpoint, change_hash: True)
    assert caught.change == late + 1
    assert calls == []


# -- 8: malformed identifiers and Multikeys ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "T" + "A" * 64,
        "T" + "a" * 64 + "\n",
        "did:troth:" + "a" * 63,
        "did:troth:" + "\u0660" * 64,
        "did:troth:did:troth:" + "a" * 64,
        "t" + "a" * 64,
        "",
    ],
)
def test_8_malformed_identifiers(text: str) -> None:
    with pytest.raises(MalformedText):
        Identifier.parse(text)
    assert not Identifier.looks_like(text)


def test_8_malformed_identifier_types() -> None:
    with pytest.raises(MalformedText):
        Identifier.parse(b"T" + b"a" * 64)  # type: ignore[arg-type]
    with pytest.raises(MalformedText):
        Identifier(b"\x00" * 31)


@pytest.mark.parametrize(
    "value",
    [
        "z",
        "z0OIl",
        "z\u00e9",
        "z" + "1" * 47,
        "zDnaeXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",  # P-256's multicodec prefix
        "z6Mk" + "a" * 60,  # over MAX_ED25519_MULTIKEY_CHARS
        "u6Mk" + "a" * 40,  # another multibase
    ],
)
def test_8_malformed_multikeys(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (base58's own messages for bad characters)
        ed25519_from_multikey(value)


# -- 9: a purpose-key record pointed at the committed next key -----------------------------------


def test_9_rotation_does_not_retire_the_next_key_a_record_points_at(tmp_path: Path) -> None:
    service = IdentityService(
        SoftwareVault(), SqliteIdentityStore(SqliteDatabase(tmp_path / "node.db"))
    )
    created = service.create(now=NOW, name="agent")
    local = service.get("agent", now=NOW)
    other = service.vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        service.vault,
        local.primary_key,
        local.identity,
        KeyPurpose.SIGNING,
        service.vault.public_key(other),
        now=NOW,
        expires_at=NOW + 3600,
    )
    digest = created.identifier.digest
    with service.store.transaction():  # a writer of node.db points the record at the next key
        service.store.put_purpose_key(
            PurposeKeyRecord(digest, int(KeyPurpose.SIGNING), str(local.next_key), attestation)
        )
    rotated = service.rotate("agent", now=NOW + 10)
    assert rotated.primary_key == local.next_key
    # the revealed key is still in the vault: the identity signs and rotates again
    service.signer("agent", now=NOW + 20).sign(b"still mine")
    service.rotate("agent", now=NOW + 30)


# -- 10: a stolen current key or a stolen next key alone -----------------------------------------


def test_10_stolen_current_key_alone_cannot_rotate_to_its_own_key() -> None:
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=START, valid_for=60 * DAY)
    thief = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    with pytest.raises(IdentityError) as caught:
        rotate_identity(vault, held.identity, held.primary, thief, now=START + DAY, valid_for=DAY)
    assert caught.value.reason is F.NEXT_KEY_MISMATCH
    # the next key alone: a rotation with no previous-key signature, or one by the next key
    rotated = rotate_identity(
        vault, held.identity, held.primary, held.next_key, now=START + DAY, valid_for=60 * DAY
    )
    first, change = rotated.identity.changes[0].signed, rotated.identity.changes[1].signed
    unsigned = encode([first, SignedChange(change.body, change.signature, None)])
    assert _refused(F.MISSING_PREVIOUS_SIGNATURE, unsigned).change == 1
    by_itself = SignedChange(change.body, change.signature, change.signature)
    assert _refused(F.BAD_PREVIOUS_SIGNATURE, encode([first, by_itself])).change == 1
