"""Review 61b (adversarial, identity histories): attacks tried that the product refuses. Each
test is a real attempt that fails if the defence breaks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.histories import HonestHistory, encode, extend, honest_history
from troth import limits
from troth.crypto import KeyType, PublicKey, sha256
from troth.crypto.private import generate_private_key
from troth.errors import IdentityError, IdentityFailure, MalformedText
from troth.identity import (
    ChangeBody,
    Identifier,
    IdentityService,
    SignedChange,
    VerifiedIdentity,
    attest_purpose_key,
    did_document,
    encode_history,
    new_identity,
    next_key_digest,
    rotate_identity,
    verify_attestation,
    verify_history,
)
from troth.identity.change import Checkpoint
from troth.identity.did import ed25519_from_multikey, multikey
from troth.storage import SqliteDatabase, SqliteIdentityStore
from troth.vault import KeyPurpose, SoftwareVault

F = IdentityFailure
DAY = 86_400
T = NOW - 100 * DAY  # when the histories built here begin (their changes a day apart)
R = T + 10 * DAY  # after them: when the rotations built here are made


def _service(path: Path) -> IdentityService:
    return IdentityService(SoftwareVault(), SqliteIdentityStore(SqliteDatabase(path)))


def _verified(history: HonestHistory) -> VerifiedIdentity:
    return verify_history(encode(history.changes), now=NOW)


def _refused(
    reason: IdentityFailure, call: Callable[..., object], *args: object, **kwargs: object
) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        call(*args, **kwargs)
    assert caught.value.reason is reason, caught.value
    return caught.value


def _fork(base: HonestHistory, created: int) -> HonestHistory:
    """`base` rotated at `created`: the committed key revealed (a thief holding a copy of the
    vault holds it), a new next key of its own."""
    return extend(base, created)


# -- forks and rollbacks against a stored copy ---------------------------------------------------


def test_two_rotations_at_one_index_signed_with_the_stolen_keys_are_a_fork(tmp_path: Path) -> None:
    """The owner's rotation and a thief's (its stolen backup holds the current key and the
    committed next one), both valid alone: a node that stored either refuses the other as a
    FORK at that index, keeps it as evidence, and its copy is unchanged; so does the check of a
    requester not yet admitted."""
    base = honest_history(2, start=T)
    owner, thief = _verified(_fork(base, R)), _verified(_fork(base, R + 1))
    assert owner.identifier == thief.identifier
    assert owner.change_count == thief.change_count
    for first, second, name in ((owner, thief, "a.db"), (thief, owner, "b.db")):
        service = _service(tmp_path / name)
        service.observe(first)
        error = _refused(F.FORK, service.observe, second)
        assert error.change == 2
        _refused(F.FORK, service.check_known, second)
        store = SqliteIdentityStore(SqliteDatabase(tmp_path / name))
        assert store.get_history(first.identifier.digest) == (first.history, 3)
        kept = service.forks(first.identifier)
        assert [(k.index, k.change_hash) for k in kept] == [(2, second.current_change_hash)]


def test_a_history_cut_before_a_rotation_the_node_saw_is_a_rollback(tmp_path: Path) -> None:
    rotated = _fork(honest_history(2, start=T), R)
    service = _service(tmp_path / "v.db")
    service.observe(_verified(rotated))
    cut = verify_history(encode(rotated.changes[:2]), now=NOW)
    _refused(F.ROLLBACK, service.observe, cut)
    _refused(F.ROLLBACK, service.check_known, cut)
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    assert store.get_history(cut.identifier.digest) == (encode(rotated.changes), 3)


def test_forks_shown_again_and_again_keep_a_bounded_evidence(tmp_path: Path) -> None:
    """Ten different forks of a stored copy, each shown three times: the store keeps the copy
    and at most MAX_FORKS_PER_IDENTITY forks, one row each."""
    base = honest_history(1, start=T)
    service = _service(tmp_path / "v.db")
    stored = _verified(_fork(base, R))
    service.observe(stored)
    for offset in range(10):
        fork = _verified(_fork(base, R + 1 + offset))
        for _ in range(3):
            _refused(F.FORK, service.observe, fork)
    kept = service.forks(stored.identifier)
    assert len(kept) == limits.MAX_FORKS_PER_IDENTITY
    assert len({k.change_hash for k in kept}) == limits.MAX_FORKS_PER_IDENTITY
    assert service.stored_changes(stored.identifier) == 2


def test_a_history_only_checked_never_overwrites_the_stored_copy(tmp_path: Path) -> None:
    """A requester not yet admitted (an unauthenticated source) shows an extension: judged, not
    stored; the node's copy stays the one it verified, and a fork of that extension is judged
    against the stored copy alone."""
    base = honest_history(2, start=T)
    service = _service(tmp_path / "v.db")
    service.observe(_verified(base))
    extension = _verified(_fork(base, R))
    service.check_known(extension)
    assert service.stored_changes(extension.identifier) == 2
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    assert store.get_history(extension.identifier.digest) == (encode(base.changes), 2)


# -- pre-rotation, retired keys, key types -------------------------------------------------------


def test_a_rotation_revealing_another_key_than_committed_is_refused() -> None:
    """A thief holding only the current key signs a rotation to a key of its own (both
    signatures valid): not the key the current change committed to."""
    base = honest_history(2, start=T)
    for key_type in (KeyType.ED25519, KeyType.P256):
        forged = extend(base, R, new_key=generate_private_key(key_type))
        error = _refused(F.NEXT_KEY_MISMATCH, verify_history, encode(forged.changes), now=NOW)
        assert error.change == 2


def _verify_at_now(data: bytes) -> VerifiedIdentity:
    return verify_history(data, now=NOW)


def test_key_type_confusion_is_refused() -> None:
    """The commitment names the key's type: the committed Ed25519 key's bytes under another
    type never match it, and a channel (X25519) key is no primary key."""
    key = generate_private_key(KeyType.ED25519).public_key
    assert next_key_digest(key) != next_key_digest(PublicKey(KeyType.X25519, key.data))
    p256 = generate_private_key(KeyType.P256).public_key
    assert next_key_digest(p256) != sha256(b"troth.identity.next-key/1\x00" + p256.data)
    signer = generate_private_key(KeyType.ED25519)
    body = ChangeBody(
        0, None, PublicKey(KeyType.X25519, key.data), next_key_digest(key), T, T, T + 86_400
    ).encode()
    data = encode_history([SignedChange(body, signer.sign(body), None)])
    error = _refused(F.MALFORMED, _verify_at_now, data)
    assert "not allowed" in str(error)
    # a P-256 history whose rotation reveals an Ed25519 key (the committed P-256 key's
    # holder is not the thief): refused as not the committed key
    base = honest_history(1, KeyType.P256, start=T)
    forged = extend(base, R, new_key=generate_private_key(KeyType.ED25519))
    _refused(F.NEXT_KEY_MISMATCH, _verify_at_now, encode(forged.changes))


def test_a_retired_key_cannot_attest_for_its_identity_backdated_or_not() -> None:
    """A thief holding the primary key a rotation retired: its old attestation is stale under
    the rotated history, and one it signs naming the new change (dated before the rotation)
    does not verify under the current key, whatever time it is checked at."""
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=T, valid_for=86_400)
    signing = vault.public_key(vault.generate(KeyType.ED25519, KeyPurpose.SIGNING))

    def attest(primary: object, identity: VerifiedIdentity, created: int) -> bytes:
        return attest_purpose_key(
            vault, primary, identity, KeyPurpose.SIGNING, signing,  # type: ignore[arg-type]
            now=created, expires_at=created + 3600,
        )  # fmt: skip

    old = attest(held.primary, held.identity, T + 1)
    rotated = rotate_identity(
        vault, held.identity, held.primary, held.next_key, now=T + 100, valid_for=86_400
    ).identity
    backdated = attest(held.primary, rotated, T + 2)  # the retired key, the new change named
    for at in (T + 3, T + 200):
        at_ = {"purpose": KeyPurpose.SIGNING, "now": at}
        _refused(F.ATTESTATION_STALE, verify_attestation, rotated, old, **at_)
        error = _refused(F.ATTESTATION_INVALID, verify_attestation, rotated, backdated, **at_)
        assert "bad signature" in str(error)


# -- limits ---------------------------------------------------------------------------------------


def test_a_history_one_change_past_the_limit_is_refused_before_any_signature() -> None:
    at_limit = honest_history(limits.MAX_IDENTITY_CHANGES, start=T)
    assert len(_verify_at_now(encode(at_limit.changes)).changes) == limits.MAX_IDENTITY_CHANGES
    past = extend(at_limit, T + limits.MAX_IDENTITY_CHANGES * DAY)
    _refused(F.OVER_LIMIT, _verify_at_now, encode(past.changes))
    padded = encode(at_limit.changes) + bytes(limits.MAX_IDENTITY_HISTORY_BYTES)
    _refused(F.OVER_LIMIT, _verify_at_now, padded)


def test_a_history_re_encoded_non_canonically_is_malformed() -> None:
    """Anyone may re-encode the unsigned envelope: a non-shortest argument or an indefinite
    length is refused, so one history has one byte form (no cache-busting twins)."""
    data = encode(honest_history(2, start=T).changes)
    longer = data.replace(b"history\x02", b"history\x18\x02", 1)
    assert longer != data
    indefinite = b"\x9f" + data[1:] + b"\xff"
    for variant in (longer, indefinite):
        _refused(F.MALFORMED, _verify_at_now, variant)


# -- identifiers, DIDs, Multikeys -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "T" + "AB" * 32,  # upper-case hex
        "t" + "ab" * 32,  # lower-case prefix
        "T" + "ab" * 32 + "\n",  # a trailing newline (re's `$` would take it)
        " T" + "ab" * 32,
        "T" + "ab" * 31 + "a",  # 63 digits
        "T" + "ab" * 32 + "0",  # 65 digits
        "T" + "\u0661" * 64,  # Arabic-Indic digits (str.isdigit)
        "DID:troth:" + "ab" * 32,
        "did:TROTH:" + "ab" * 32,
        "did:troth:T" + "ab" * 32,
        "did:troth:" + "AB" * 32,
    ],
)
def test_identifier_text_in_a_non_canonical_form_is_refused(text: str) -> None:
    with pytest.raises(MalformedText):
        Identifier.parse(text)
    assert not Identifier.looks_like(text)


def test_the_did_document_round_trips_to_the_identity_and_its_key() -> None:
    history = honest_history(2, start=T)
    identity = _verified(history)
    document = did_document(identity)
    assert Identifier.parse(document["id"]) == identity.identifier
    assert Identifier.parse(str(identity.identifier)) == identity.identifier
    (method,) = document["verificationMethod"]
    assert method["controller"] == document["id"] == identity.identifier.did
    assert ed25519_from_multikey(method["publicKeyMultibase"]) == identity.current_key
    rotated = _verified(extend(history, R))
    assert did_document(rotated)["verificationMethod"][0]["id"] != method["id"]


@pytest.mark.parametrize(
    "variant",
    [
        lambda canonical: canonical + " ",  # base58 decoders strip trailing white space
        lambda canonical: canonical + "\n",
        lambda canonical: "z1" + canonical[1:],  # a leading zero byte
        lambda canonical: "Z" + canonical[1:],  # another multibase
        lambda canonical: canonical[:-1],
    ],
)
def test_a_multikey_in_a_non_canonical_form_is_refused(variant: object) -> None:
    key = generate_private_key(KeyType.ED25519).public_key
    canonical = multikey(key)
    assert ed25519_from_multikey(canonical) == key
    with pytest.raises(ValueError, match="Multikey"):
        ed25519_from_multikey(variant(canonical))  # type: ignore[operator]


def test_an_expired_key_alone_cannot_sign_a_rotation_even_backdated() -> None:
    """A thief holding only a primary key that expired dates a rotation back into its window,
    revealing a key of its own: not the committed key (pre-rotation), so refused; dated after
    the window, refused for the expired key too. (With the committed next key as well, a
    stolen vault backup, a rotation dated into the window verifies: the date is its signers'
    word, docs/formats.md, "Verification rules" 5.)"""
    short = honest_history(1, start=T)
    expired_at = T + 365 * DAY  # honest_history's keys are valid for a year
    backdated = extend(short, expired_at - 1, new_key=generate_private_key(KeyType.ED25519))
    late = NOW + 400 * DAY
    _refused(F.NEXT_KEY_MISMATCH, verify_history, encode(backdated.changes), now=late)
    after = extend(short, expired_at + 1)
    _refused(F.KEY_OUTSIDE_VALIDITY, verify_history, encode(after.changes), now=late)


def test_a_checkpointed_history_past_the_last_change_index_is_refused() -> None:
    """A history from a checkpoint at MAX_CHANGE_INDEX, its authority's word taken, with one
    more honest rotation: that change's supersession could not be written, so refused."""
    keys = [generate_private_key(KeyType.ED25519) for _ in range(3)]
    top = limits.MAX_CHANGE_INDEX
    first = ChangeBody(
        top, bytes(32), keys[0].public_key, next_key_digest(keys[1].public_key), R, R, R + DAY
    ).encode()
    second = ChangeBody(
        top + 1, sha256(first), keys[1].public_key, next_key_digest(keys[2].public_key),
        R + 1, R + 1, R + DAY,
    ).encode()  # fmt: skip
    changes = [
        SignedChange(first, keys[0].sign(first), bytes(64)),
        SignedChange(second, keys[1].sign(second), keys[0].sign(second)),
    ]
    digest = sha256(b"an identity")
    data = encode_history(changes, Checkpoint(digest, sha256(b"its authority"), top))
    assert verify_history(encode_history(changes[:1], Checkpoint(digest, digest, top)),
                          now=R + 2, checkpoints=lambda *_: True).current.index == top  # fmt: skip
    error = _refused(F.OVER_LIMIT, verify_history, data, now=R + 2, checkpoints=lambda *_: True)
    assert error.change == top + 1
