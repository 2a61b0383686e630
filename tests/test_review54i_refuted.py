"""Review 54i: attacks on identity change histories as peers see them that the code already
refuses (docs/formats.md, "Verification rules", "Pre-rotation and stored histories"). Each
test pins the defence it found."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import run
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
from troth.identity import IdentityService, VerifiedIdentity, verify_history
from troth.identity.attestation import ATTESTATION_TYPE, verify_attestation
from troth.identity.change import SignedChange, encode_history, encode_public_key
from troth.identity.known import KNOWN_CACHE_SIZE
from troth.node import init_node, open_node
from troth.storage import SqliteDatabase, SqliteIdentityStore
from troth.vault import KeyPurpose, SoftwareVault

F = IdentityFailure
T = 1_790_000_000  # when the histories built here begin
NOW = T + 10 * DAY  # the verifiers' clock


def _verifier(path: Path) -> IdentityService:
    """A verifier with a store of its own at `path` (a restart: another one on the same file)."""
    return IdentityService(SoftwareVault(), SqliteIdentityStore(SqliteDatabase(path)))


def _verified(history: HonestHistory | list[SignedChange]) -> VerifiedIdentity:
    changes = history.changes if isinstance(history, HonestHistory) else history
    return verify_history(encode(changes), now=NOW)


def _refused(
    reason: IdentityFailure,
    call: Callable[[VerifiedIdentity], object],
    shown: HonestHistory | list[SignedChange],
) -> IdentityError:
    """`call` of `shown` (verified first: `_identity` to refuse the history itself) refused
    for `reason`."""
    with pytest.raises(IdentityError) as caught:
        call(_verified(shown))
    assert caught.value.reason is reason, caught.value
    return caught.value


def _identity(identity: VerifiedIdentity) -> VerifiedIdentity:
    return identity


def _rotated(changes: int = 2) -> tuple[HonestHistory, HonestHistory]:
    """(before, after): a history and its owner's rotation a day after its last change."""
    before = honest_history(changes, start=T)
    return before, extend(before, T + changes * DAY)


def test_a_stolen_pre_rotation_key_is_refused_after_the_rotation_and_a_restart(
    tmp_path: Path,
) -> None:
    """Refuted: "a verifier that restarted has forgotten the rotation". The stored copy is in
    its database: the older history (the retired key's) is a rollback for a new process on
    the same file, and for every later showing of it."""
    before, after = _rotated()
    path = tmp_path / "verifier.db"
    _verifier(path).observe(_verified(after))
    for _ in range(3):
        restarted = _verifier(path)
        _refused(F.ROLLBACK, restarted.observe, before)
        _refused(F.ROLLBACK, restarted.check_known, before)
        assert restarted.stored_changes(_verified(after).identifier) == 3


def test_a_prefix_sent_again_and_again_writes_nothing(tmp_path: Path) -> None:
    """Refuted: "a prefix of the stored copy sent repeatedly wears the store or is kept as a
    fork": each is a rollback, the stored bytes stay as they were and no fork is kept (a
    rollback signs nothing new: no evidence)."""
    _, after = _rotated(3)
    verifier = _verifier(tmp_path / "verifier.db")
    newest = _verified(after)
    verifier.observe(newest)
    for cut in (1, 2, 3) * 20:
        _refused(F.ROLLBACK, verifier.observe, after.changes[:cut])
    stored = verifier.store.get_history(newest.identifier.digest)
    assert stored == (newest.history, 4)
    assert verifier.forks(newest.identifier) == []


def _fork(before: HonestHistory, created: int) -> HonestHistory:
    """The thief's rotation of `before` (it holds the whole backup: the current key and the
    committed next key) to a key of its own after that."""
    revealed = extend(before, created)  # the committed key, which the backup holds
    return extend(revealed, created + 1, new_key=revealed.next_key)


def test_a_fork_loses_to_what_a_verifier_saw_first_and_is_kept_as_evidence(
    tmp_path: Path,
) -> None:
    """Refuted: "two histories from one key: the later one wins, silently". Whichever a node
    sees first is stored (trust on first sight, docs/formats.md, "Pre-rotation and stored
    histories"); the other is refused as a fork at the first change that differs and kept as
    evidence (`IdentityService.forks`) that two rotations were signed with the identity's
    keys. A thief showing its fork first to a fresh node wins there, and the owner's history
    is then the reported fork: the evidence is the same either way round."""
    before = honest_history(2, start=T)
    owner = extend(before, T + 2 * DAY)
    thief = extend(before, T + 2 * DAY + 5, new_key=generate_private_key(KeyType.ED25519))
    # the thief's own key is not the committed one: no verifier takes that
    _refused(F.NEXT_KEY_MISMATCH, _identity, thief)
    thief = _fork(before, T + 2 * DAY + 5)
    for first, second in ((owner, thief), (thief, owner)):
        verifier = _verifier(tmp_path / f"{len(first.changes)}-{id(first)}.db")
        verifier.observe(_verified(first))
        error = _refused(F.FORK, verifier.observe, second)
        assert error.change == 2
        (kept,) = verifier.forks(_verified(first).identifier)
        assert kept.change_hash == sha256(second.changes[2].body)
        assert verifier.stored_changes(_verified(first).identifier) == len(first.changes)


def test_a_history_of_the_most_changes_verifies_and_one_more_is_refused(tmp_path: Path) -> None:
    """Refuted: "a history of MAX_IDENTITY_CHANGES + 1 changes is stored": 64 changes verify
    and are stored, 65 are over a limit before any signature is checked (the identity
    presents a checkpointed suffix past that)."""
    history = honest_history(limits.MAX_IDENTITY_CHANGES, start=T - 100 * DAY)
    verifier = _verifier(tmp_path / "verifier.db")
    longest = _verified(history)
    verifier.observe(longest)
    assert verifier.stored_changes(longest.identifier) == limits.MAX_IDENTITY_CHANGES
    one_more = extend(history, T - 100 * DAY + limits.MAX_IDENTITY_CHANGES * DAY)
    _refused(F.OVER_LIMIT, _identity, one_more)


def test_changes_out_of_order_or_with_a_gap_are_refused() -> None:
    """Refuted: "valid changes in another order, or with one left out, verify": each change
    names its index and the previous change's hash (`broken hash link`)."""
    changes = honest_history(4, start=T).changes
    swapped = [changes[0], changes[2], changes[1], changes[3]]
    gap = [changes[0], changes[1], changes[3]]
    repeated = [changes[0], changes[1], changes[1], changes[2]]
    for shown in (swapped, gap, repeated, changes[1:]):
        _refused(F.BROKEN_LINK, _identity, shown)


def _history(keys: list[PrivateKey], times: list[tuple[int, int, int]]) -> list[SignedChange]:
    """Changes revealing `keys` in turn (each committing to the next) at (created, valid
    from, valid until) `times`, each signed as a rotation must be."""
    signed: list[SignedChange] = []
    previous: bytes | None = None
    for index, (created, start, until) in enumerate(times):
        body = body_for(
            keys[index], previous, created, start, until, commit=keys[index + 1], index=index
        )
        signed.append(sign_change(body, keys[index], keys[index - 1] if index else None))
        previous = sha256(signed[-1].body)
    return signed


def test_changes_dated_far_in_the_future_or_the_past_are_refused() -> None:
    """Refuted: "a change dated far ahead, or a rotation dated before its predecessor or
    after the previous key expired, verifies": `change dated in the future` past the 300 s
    skew, `change dated before its predecessor`, `key used outside its validity` (the
    previous key's at the rotation, the current key's at now)."""
    keys = [generate_private_key(KeyType.ED25519) for _ in range(4)]
    year = 365 * DAY
    ok = _history(keys, [(T, T, T + year), (T + DAY, T + DAY, T + year)])
    assert _verified(ok).change_count == 2
    skew = limits.MAX_CLOCK_SKEW_SECONDS
    cases = {
        F.FUTURE_CHANGE: [(T, T, T + year), (NOW + skew + 1, T, NOW + year)],
        F.TIME_REVERSED: [(T, T, T + year), (T - 1, T - DAY, T + year)],
        F.KEY_OUTSIDE_VALIDITY: [(T - 3 * DAY, T - 3 * DAY, T - 2 * DAY), (T, T, T + year)],
    }
    for reason, times in cases.items():
        _refused(reason, _identity, _history(keys, times))
    expired = _history(keys, [(0, 0, 1), (1, 1, 2)])  # from the epoch, long expired
    _refused(F.KEY_OUTSIDE_VALIDITY, _identity, expired)
    far = _history(keys, [(T, T, 2**64 - 1)])  # the widest window is still a window
    assert _verified(far).current.body.valid_until == 2**64 - 1


def _attestation(identity: VerifiedIdentity, change: int, primary: PrivateKey) -> bytes:
    """A signing-key attestation made under change `change` of `identity` by `primary`."""
    signing = generate_private_key(KeyType.ED25519)
    body = cbor.encode(
        [
            ATTESTATION_TYPE,
            1,
            identity.identifier.digest,
            identity.changes[change].change_hash,
            int(KeyPurpose.SIGNING),
            encode_public_key(signing.public_key),
            T,
            NOW + DAY,
        ]
    )
    return cbor.encode([body, primary.sign(body)])


def test_a_rotation_back_to_an_earlier_key_revives_no_old_attestation() -> None:
    """Refuted: "a rotation to a key already used earlier makes the retired key speak again".
    Only the holder of the current key can commit to an earlier one (a thief holding only
    the retired key cannot: `key does not match the pre-rotation commitment`); and even then
    an attestation the retired key made under its own change is `made under an older change`:
    it names that change's hash, not the key."""
    k0, k1, k2 = (generate_private_key(KeyType.ED25519) for _ in range(3))
    year = 365 * DAY
    times = [(T, T, T + year), (T + DAY, T + DAY, T + year), (T + 2 * DAY, T + 2 * DAY, T + year)]
    back = _history([k0, k1, k0, k2], times)  # c1 commits to k0 again, c2 reveals it
    identity = _verified(back)
    assert identity.current_key == k0.public_key
    old = _attestation(identity, 0, k0)
    with pytest.raises(IdentityError) as caught:
        verify_attestation(identity, old, purpose=KeyPurpose.SIGNING, now=NOW)
    assert caught.value.reason is F.ATTESTATION_STALE
    verify_attestation(identity, _attestation(identity, 2, k0), purpose=KeyPurpose.SIGNING, now=NOW)
    real = _history([k0, k1, k2], times[:2])  # a thief holding only k0 (retired)
    mine = generate_private_key(KeyType.ED25519)
    forged_body = body_for(mine, sha256(real[0].body), T + DAY, commit=k0, index=1)
    forged = sign_change(forged_body, mine, k0)  # its own key where c0 committed to k1
    _refused(F.NEXT_KEY_MISMATCH, _identity, [real[0], forged])


def test_many_fresh_identities_from_one_source_evict_no_rotation(tmp_path: Path) -> None:
    """Refuted: "10,000 fresh identities shown to a verifier evict a victim's rotation, so
    her stale backup is accepted again". The store-or-extend record is the database
    (`KnownHistories`); its in-memory cache holds at most KNOWN_CACHE_SIZE identities and a
    copy it dropped is read again from the store: after the flood, the victim's older history
    is still a rollback. (The node's store itself stores only what it admits: a stranger at a
    handshake is judged, not kept; a member's delegates are the residual of review 23a.)"""
    before, after = _rotated()
    verifier = _verifier(tmp_path / "verifier.db")
    victim = _verified(after)
    verifier.observe(victim)
    flood = 10_000
    assert flood > 2 * KNOWN_CACHE_SIZE
    with verifier.store.transaction():  # one transaction: the flood's cost is not the point
        for _ in range(flood):
            verifier.observe(_verified(honest_history(1, start=T)))
    assert verifier.stored_changes(victim.identifier) == 3
    _refused(F.ROLLBACK, verifier.observe, before)
    _refused(F.ROLLBACK, verifier.check_known, before)


def test_the_cli_import_of_a_stale_backup_after_the_rotation_is_refused(
    tmp_path: Path, troth_home: Path
) -> None:
    """Refuted: "`troth identity import` takes a stolen backup's history once the node has
    the rotation": exit 1 (a rollback), and a fork is refused too, nothing stored."""
    before, after = _rotated()
    init_node("verifier")
    paths = {}
    for name, changes in (("before", before.changes), ("after", after.changes)):
        paths[name] = tmp_path / f"{name}.history"
        paths[name].write_bytes(encode_history(changes))
    fork = _fork(before, T + 2 * DAY + 5)
    paths["fork"] = tmp_path / "fork.history"
    paths["fork"].write_bytes(encode_history(fork.changes))
    run("identity", "import", str(paths["after"]), "--node", "verifier")
    run("identity", "import", str(paths["before"]), "--node", "verifier", code=1)
    run("identity", "import", str(paths["fork"]), "--node", "verifier", code=1)
    with open_node("verifier") as node:
        assert node.identities.stored_changes(_verified(after).identifier) == 3
