"""The SoftHSM2 token's vault, opened and closed for the PKCS#11 reviews (48d, 48k, 48r)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import SoftHsm
from troth.vault.pkcs11 import Pkcs11Vault


@contextmanager
def token_vault(softhsm: SoftHsm) -> Iterator[Pkcs11Vault]:
    """A vault on the session's token, closed after."""
    vault = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    try:
        yield vault
    finally:
        vault.close()


@pytest.fixture(name="vault")
def vault_fixture(softhsm: SoftHsm) -> Iterator[Pkcs11Vault]:
    """A vault on the session's token (import this as `vault_fixture` and ask for `vault`)."""
    with token_vault(softhsm) as vault:
        yield vault
