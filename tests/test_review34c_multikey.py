"""Review 34c, multikey: a did:key verification method is a peer's text; its base58 decoding
takes time quadratic in its length, so it is bounded before decoding."""

from __future__ import annotations

import base58
import pytest

from troth.credentials import vc
from troth.errors import CredentialError, CredentialFailure
from troth.identity import did

_LONG = "z" + "6Mk" * 20_000  # 60 KB: seconds of base58 decoding


def test_a_long_did_key_is_refused_before_it_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 34c, multikey 1 (reported by review 34a). A VC's proof names its verification
    method (`did:key:z...#z...`, the presenter's text); `did_key_resolver` base58-decoded the
    whole Multikey before checking it was one: about 3 s for 60 KB, quadratic beyond, per
    proof verified. An Ed25519 Multikey is at most 48 characters ("z" and the base58 of 34
    bytes), so anything longer is refused as malformed without being decoded.

    Was a strict xfail until `ed25519_from_multikey` refused more than 48 characters."""
    decoded: list[int] = []
    real = base58.b58decode

    def counting(value: str | bytes) -> bytes:
        decoded.append(len(value))
        return real(value)

    monkeypatch.setattr(base58, "b58decode", counting)  # the module did.py decodes with
    with pytest.raises(CredentialError) as refused:
        vc.did_key_resolver(f"did:key:{_LONG}#{_LONG}", {})
    assert refused.value.reason is CredentialFailure.MALFORMED
    assert decoded == []


def test_an_ed25519_multikey_still_resolves() -> None:
    """Review 34c, multikey 1 (the other side): a real did:key resolves as before."""
    key = "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"  # did:key test vector (W3C CCG)
    resolved = vc.did_key_resolver(f"did:key:{key}#{key}", {})
    assert did.multikey(resolved) == key
