"""Review 53f: attacks on layer 1 (identity, vault) and its CLI that found the code right,
pinned so that they stay refuted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.histories import (
    DAY,
    T0,
    body_for,
    encode,
    extend,
    honest_history,
    raw_history,
    sign_change,
)
from troth import limits
from troth.crypto import KeyType, sha256
from troth.crypto.private import generate_private_key
from troth.errors import IdentityError, IdentityFailure
from troth.identity import SignedChange, verify_history
from troth.identity.attestation import attest_purpose_key, verify_attestation
from troth.identity.create import new_identity, rotate_identity
from troth.node.node import init_node
from troth.vault import KeyPurpose, SoftwareVault


def _reason(data: bytes, now: int) -> IdentityFailure:
    with pytest.raises(IdentityError) as caught:
        verify_history(data, now=now)
    return caught.value.reason


def test_a_thief_of_the_committed_next_key_alone_cannot_rotate() -> None:
    """Refuted 1: the pre-rotation key stolen (not the current one). Its rotation needs the
    current key's signature too: left out, it is missing; made with the stolen key itself in
    its place, it does not verify."""
    history = honest_history(1)
    stolen = history.next_key
    own = generate_private_key(KeyType.ED25519)
    body = body_for(stolen, sha256(history.changes[0].body), T0 + DAY, commit=own, index=1)
    encoded = body.encode()
    bare = SignedChange(encoded, stolen.sign(encoded), None)
    forged = SignedChange(encoded, stolen.sign(encoded), stolen.sign(encoded))
    now = T0 + 2 * DAY
    assert _reason(encode([history.changes[0], bare]), now) is (
        IdentityFailure.MISSING_PREVIOUS_SIGNATURE
    )
    assert _reason(encode([history.changes[0], forged]), now) is (
        IdentityFailure.BAD_PREVIOUS_SIGNATURE
    )


def test_a_retired_key_cannot_fork_the_history_it_left() -> None:
    """Refuted 2: the owner rotated; a thief of her retired key signs a change at the index
    the rotation took (a fork), introducing a key of its own: the change before committed to
    another key, whichever history a verifier sees first."""
    history = extend(honest_history(1), T0 + DAY)
    retired = history.keys[0]
    own = generate_private_key(KeyType.ED25519)
    body = body_for(own, sha256(history.changes[0].body), T0 + DAY, index=1)
    fork = sign_change(body, own, retired)
    assert _reason(encode([history.changes[0], fork]), T0 + 2 * DAY) is (
        IdentityFailure.NEXT_KEY_MISMATCH
    )


def test_an_attestation_replays_across_no_identity_purpose_or_change() -> None:
    """Refuted 3: a signing key attested by one identity, shown for another identity (which
    holds the same key in its vault), for another purpose, or after its identity rotated."""
    vault = SoftwareVault()
    alice = new_identity(vault, KeyType.ED25519, now=T0, valid_for=365 * DAY)
    bob = new_identity(vault, KeyType.ED25519, now=T0, valid_for=365 * DAY)
    signing = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        vault,
        alice.primary,
        alice.identity,
        KeyPurpose.SIGNING,
        vault.public_key(signing),
        now=T0,
        expires_at=T0 + DAY,
    )
    now = T0 + 60
    verify_attestation(alice.identity, attestation, purpose=KeyPurpose.SIGNING, now=now)
    cases = [
        (bob.identity, KeyPurpose.SIGNING, IdentityFailure.IDENTIFIER_MISMATCH),
        (alice.identity, KeyPurpose.SECURE_CHANNEL, IdentityFailure.WRONG_PURPOSE),
    ]
    rotated = rotate_identity(
        vault, alice.identity, alice.primary, alice.next_key, now=now, valid_for=365 * DAY
    )
    cases.append((rotated.identity, KeyPurpose.SIGNING, IdentityFailure.ATTESTATION_STALE))
    for identity, purpose, reason in cases:
        with pytest.raises(IdentityError) as caught:
            verify_attestation(identity, attestation, purpose=purpose, now=now)
        assert caught.value.reason is reason


def test_a_history_longer_than_the_limit_is_refused_before_its_signatures() -> None:
    """Refuted 4: a long history (65 changes) is over the limit at decoding, whatever its
    signatures (each entry here a change whose signatures are zeros)."""
    history = honest_history(1)
    entries = [[history.changes[0].body, bytes(64), None]] * (limits.MAX_IDENTITY_CHANGES + 1)
    assert _reason(raw_history(entries), T0) is IdentityFailure.OVER_LIMIT
    assert _reason(raw_history(entries[:1], checkpoint=[bytes(32), bytes(32), 0]), T0) is (
        IdentityFailure.MALFORMED  # a checkpoint at change 0: a history from 0 has none
    )


def test_the_cli_judges_hostile_history_files_with_typed_errors(
    troth_home: Path, tmp_path: Path
) -> None:
    """Refuted 5: `troth identity verify` and `import` of a file nested as deep as its size
    allows, of an endless file, of an empty one: exit 1 (read, invalid) or 4 (not read), one
    line, never a traceback."""
    init_node("n1")
    deep = tmp_path / "deep"
    deep.write_bytes(b"\x81" * (limits.MAX_IDENTITY_HISTORY_BYTES - 1))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for file, code in ((deep, 1), (empty, 1), (Path("/dev/zero"), 4)):
        for command in (("identity", "verify", str(file)), ("identity", "import", str(file))):
            result = run(*command, "--node", "n1", code=code)
            assert "Traceback" not in result.stderr
    assert run_json("identity", "verify", str(empty), code=1)["reason"] == "malformed"
