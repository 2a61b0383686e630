"""Mutation fuzzing of what the vault reads as text or bytes from its store and its callers:
key handles (`<vault>:<key type>:<key id>`, kept in node.db beside each identity), seal key
handles, and sealed blobs under a seal key the vault made (the sealed blob of the secrets
vectors: tests/test_decoders_mutated_channel.py). The KEK's text:
tests/test_decoders_mutated_node.py.

The mutations and the rule every property checks: tests/support/decoder_vectors.py. A handle's
text is its one spelling: what parses names the same key (its text again), or no key at all.
"""

from __future__ import annotations

from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from tests.support.limit_mutations import QUICK
from tests.support.mutations import as_text, mutated, typed
from troth.crypto import KeyType
from troth.vault import KeyHandle, KeyPurpose, SealKey, SoftwareVault


@cache
def vault() -> tuple[SoftwareVault, KeyHandle, SealKey, bytes]:
    """A software vault (in memory), a signing key, a seal key and a blob it sealed."""
    made = SoftwareVault()
    handle = made.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    seal_key = made.generate_seal_key()
    return made, handle, seal_key, made.seal(seal_key, b"sk_live_payments", b"payments-api")


@QUICK
@given(data=st.data())
def test_key_handle(data: st.DataObject) -> None:
    """A key handle's text mutated: MalformedText (a DecodeError and the ValueError it
    documents), or a handle whose text it is, naming the same key or no key (VaultError)."""
    made, handle, _, _ = vault()
    text = as_text(data.draw(mutated(str(handle).encode())))
    parsed = typed(lambda _: KeyHandle.parse(text), b"", valid_if=lambda h: str(h) == text)
    if isinstance(parsed, KeyHandle):
        key = made.public_key(handle)
        typed(lambda _: made.public_key(parsed), b"", valid_if=lambda k: k == key)
        typed(lambda _: made.sign(parsed, b"data"), b"", valid_if=lambda _: parsed == handle)


@QUICK
@given(data=st.data())
def test_seal_key_and_sealed_blob(data: st.DataObject) -> None:
    """A seal key's text, or a sealed blob, mutated: the plaintext from the blob as sealed
    under the key it was sealed with, else VaultError (or MalformedText for the text)."""
    made, _, seal_key, sealed = vault()
    text = as_text(data.draw(mutated(str(seal_key).encode())))
    parsed = typed(lambda _: SealKey.parse(text), b"", valid_if=lambda k: str(k) == text)
    if isinstance(parsed, SealKey):
        typed(
            lambda _: made.unseal(parsed, sealed, b"payments-api"),
            b"",
            valid_if=lambda _: parsed == seal_key,
        )
    mutant = data.draw(mutated(sealed))
    typed(
        lambda b: made.unseal(seal_key, b, b"payments-api"),
        mutant,
        valid_if=lambda _: mutant == sealed,
    )
