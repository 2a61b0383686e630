"""Review 55k, pkcs11 1: review 55d's `public_key` of a key pair with several public key objects
signed a probe at every call.

Review 55d (pkcs11 2) lets `Pkcs11Vault.public_key` of a pair made before review 34a (its public
key object public) pick, among several public key objects with its CKA_ID (one a session
without the PIN planted beside it), the one a signature of the key verifies under. It chose
again at every call: a token signature and a verification per candidate each time, and nothing
kept the choice. `public_key` is asked at every use of a purpose key (review 55d, lifecycle 1:
`IdentityService._purpose_key` checks the key under its record's handle), at every rotation and
retirement check: a session without the PIN, by planting one object, made each of those a
signing operation of the token (its audit log full of probes) and, planting many, a
verification each (every candidate parsed and tried). Now the point a signature chose is kept
for the key (key ids are not reused; its destruction forgets it) while the token holds it.

Was a strict xfail until `public_key` kept the point its probe chose."""

from __future__ import annotations

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture  # noqa: F401  (the fixture `vault`)
from tests.test_review55d_pkcs11 import _pair_made_before_review_34a, _plant_twins
from troth.errors import KeyNotFound
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault


def test_the_twin_a_signature_told_apart_is_not_probed_again(
    softhsm: SoftHsm, vault: Pkcs11Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pair made before review 34a and a planted twin: `public_key` asked six times (once
    before the twin) signs one probe, not one a call, and answers the pair's own point each
    time; once the pair is destroyed, it is gone (nothing kept answers for it)."""
    handle = _pair_made_before_review_34a(vault)
    signed: list[bytes] = []
    sign = vault.sign

    def counted(key: object, data: bytes) -> bytes:
        signed.append(data)
        return sign(key, data)  # type: ignore[arg-type]

    monkeypatch.setattr(vault, "sign", counted)
    (own,) = {vault.public_key(handle)}  # probed since review 62d (pkcs11 2), before the twins
    _plant_twins(softhsm, handle.key_id)
    assert [vault.public_key(handle) for _ in range(5)] == [own] * 5
    assert len(signed) == 1
    proof = vault.retire(handle, KeyPurpose.PRIMARY)
    vault.delete_retired(handle, proof)
    with pytest.raises(KeyNotFound):
        vault.public_key(handle)
