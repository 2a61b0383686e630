"""Review 62l: attacks on this session's vault and Python API fixes (reviews 62d and 62h) that
did not work. Each test is a real attempt that fails if the defence breaks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import troth
from tests.conftest import SoftHsm
from tests.support.hsm import token_vault, vault_fixture
from troth.crypto import KeyType, PublicKey
from troth.errors import KeyNotFound, VaultError
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]


def test_a_probe_that_failed_once_is_not_kept_and_the_key_is_shown_after(
    vault: Pkcs11Vault, softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 62d, pkcs11 2 shows a key only once a probe signature verifies under its point. A
    probe the token fails once (a transient error, a busy network HSM) must not leave the key
    shown never again, nor have that failure kept: the next call probes again and shows it,
    then keeps the point (one probe)."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    own = vault.public_key(handle)  # recorded at generation
    with token_vault(softhsm) as fresh:  # nothing recorded here: a probe
        sign_with = fresh._sign_with
        signed: list[bytes] = []

        def failing_once(private: Any, key_type: KeyType, data: bytes) -> bytes:
            signed.append(data)
            if len(signed) == 1:
                raise VaultError("PKCS#11 sign failed: FunctionFailed (injected, once)")
            return sign_with(private, key_type, data)

        monkeypatch.setattr(fresh, "_sign_with", failing_once)
        with pytest.raises(VaultError):
            fresh.public_key(handle)
        assert [fresh.public_key(handle) for _ in range(3)] == [own] * 3
        assert len(signed) == 2  # the failed probe, then one that chose: kept after


def _public_beside(vault: Pkcs11Vault, key_id: str, *, replace: bool) -> PublicKey:
    """What a session with the PIN does: have the token generate an Ed25519 pair with `key_id`
    and troth's labels (both CKA_LOCAL), destroy its private key, and leave its public key
    object beside the key's own (or, `replace`, in place of it). The planted point."""
    from pkcs11.util.ec import encode_named_curve_parameters

    from troth.vault.pkcs11 import _point

    p11 = vault._p11
    attr = p11.Attribute
    query = {attr.ID: bytes.fromhex(key_id), attr.CLASS: p11.ObjectClass.PUBLIC_KEY}
    with vault._lock:
        (own,) = vault._session.get_objects(query)
        label = str(own[attr.LABEL])
        if replace:
            own.destroy()
        common = {attr.TOKEN: True, attr.PRIVATE: True, attr.ID: bytes.fromhex(key_id)}
        public, private = vault._session.generate_keypair(
            p11.KeyType.EC_EDWARDS,
            mechanism=p11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            public_template={
                **common,
                attr.LABEL: label,
                attr.EC_PARAMS: encode_named_curve_parameters("1.3.101.112"),
                attr.VERIFY: True,
            },
            private_template={**common, attr.LABEL: "planter's", attr.SIGN: True},
        )
        private.destroy()
        return PublicKey(KeyType.ED25519, _point(public[attr.EC_POINT]))


def test_a_public_object_swapped_after_the_point_was_recorded_is_not_shown(
    vault: Pkcs11Vault,
) -> None:
    """The race review 62d's recorded point opens: the point of a pair this vault made is kept
    (no probe), and a session with the PIN then puts another public key object (one the token
    generated, CKA_LOCAL) beside the key's own, or in place of it. Beside it, the key's own
    point is shown, never the planted one; in place of it, the recorded point is no longer in
    the token and the planted one fails the probe: nothing is shown."""
    beside = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    own = vault.public_key(beside)
    planted = _public_beside(vault, beside.key_id, replace=False)
    assert [vault.public_key(beside) for _ in range(2)] == [own] * 2
    assert planted != own
    replaced = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    vault.public_key(replaced)
    _public_beside(vault, replaced.key_id, replace=True)
    with pytest.raises(KeyNotFound):
        vault.public_key(replaced)


def test_a_key_needing_a_login_at_each_use_is_shown_never_and_the_others_sign_on(
    vault: Pkcs11Vault,
) -> None:
    """Review 62d's probe has a side effect a look did not have: a signature. A session with the
    PIN has the token generate, under a new CKA_ID with troth's label, a pair never let out
    whose private key needs a login at each use (CKA_ALWAYS_AUTHENTICATE: troth never makes
    one). Its probe fails (UserNotLoggedIn, which the vault takes for a session that ended:
    it logs in again), so its point is shown never (no point is shown unprobed), at every
    call again (nothing kept); the token's other keys sign on through the new session."""
    from pkcs11.util.ec import encode_named_curve_parameters

    from troth.vault import KeyHandle

    p11 = vault._p11
    attr = p11.Attribute
    key_id = os.urandom(16).hex()
    common = {
        attr.TOKEN: True,
        attr.PRIVATE: True,
        attr.ID: bytes.fromhex(key_id),
        attr.LABEL: f"troth:signing:{key_id}",
    }
    with vault._lock:
        vault._session.generate_keypair(
            p11.KeyType.EC_EDWARDS,
            mechanism=p11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            public_template={
                **common,
                attr.EC_PARAMS: encode_named_curve_parameters("1.3.101.112"),
                attr.VERIFY: True,
            },
            private_template={
                **common,
                attr.SENSITIVE: True,
                attr.EXTRACTABLE: False,
                attr.SIGN: True,
                attr.ALWAYS_AUTHENTICATE: True,
            },
        )
    other = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    planted = KeyHandle(vault.name, KeyType.ED25519, key_id)
    try:
        for _ in range(2):
            with pytest.raises(VaultError):
                vault.public_key(planted)
            vault.sign(other, b"the token's other keys sign on")
    finally:  # the token is the session's: no key left that other tests would sign with
        with vault._lock:
            for obj in vault._session.get_objects({attr.ID: bytes.fromhex(key_id)}):
                obj.destroy()


def test_the_legitimate_homes_review_62h_api_2_might_refuse_open(tmp_path: Path) -> None:
    """Review 62h (api 2) has `Node.open` refuse an existing home as every command does. Homes
    that are the user's own must still open: one in a sticky directory anyone writes in (as
    under /tmp), one reached through a link of this user's or root's (as /var/run -> /run),
    and one the user made 0755 (a umask of 022). Each would fail if the check looked at the
    parents' modes, refused every link, or wanted 0700."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103 - a sticky directory like /tmp (inside tmp_path)
    (shared / "home").mkdir(mode=0o700)
    run = tmp_path / "run"
    (run / "troth").mkdir(parents=True, mode=0o700)
    (tmp_path / "var-run").symlink_to(run)  # this user's (or root's) link, as /var/run
    made = tmp_path / "made"
    made.mkdir()
    os.chmod(made, 0o755)  # noqa: S103 - the user's own, others may read it
    for home in (shared / "home", tmp_path / "var-run" / "troth", made):  # each there already
        troth.Node.open("agents", home=home).close()
