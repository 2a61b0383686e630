"""Review 34a, cli: what the identity commands print of a history a peer made."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.cli import run, run_json
from troth.crypto import KeyType
from troth.identity import ChangeBody, SignedChange, encode_history, next_key_digest
from troth.vault import KeyPurpose, SoftwareVault

FOREVER = (1 << 64) - 1  # the largest valid_until a change body carries


def _history_valid_until(valid_until: int) -> bytes:
    """A peer's own one-change history, validly signed, its key valid until `valid_until`."""
    vault = SoftwareVault()
    key = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    following = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    now = int(time.time())
    body = ChangeBody(
        0,
        None,
        vault.public_key(key),
        next_key_digest(vault.public_key(following)),
        now,
        0,
        valid_until,
    ).encode()
    return encode_history([SignedChange(body, vault.sign(key, body), None)])


def test_a_history_valid_past_year_9999_is_verified_and_imported(tmp_path: Path) -> None:
    """Review 34a, cli 1. A peer hands over its own history, validly signed, whose key is
    valid until 2^64 - 1 (any uint the format carries). `troth identity verify` found it valid,
    then crashed printing the date (OverflowError from datetime): a traceback and exit 1, which
    says "read, and invalid", for a valid history; `troth identity import` stored it, then
    crashed the same way, so the operator is told it failed although it is stored. Both must
    say what they did.

    Was a strict xfail until `troth.cli.text.timestamp` wrote a time past the year 9999 as
    `after 9999-12-31T23:59:59Z (epoch N)`."""
    history = tmp_path / "peer.id"
    history.write_bytes(_history_valid_until(FOREVER))
    verified = run("identity", "verify", str(history))
    assert verified.stdout.startswith("valid\n")
    assert f"after 9999-12-31T23:59:59Z (epoch {FOREVER})" in verified.stdout
    imported = run("identity", "import", str(history))
    assert f"valid until: after 9999-12-31T23:59:59Z (epoch {FOREVER})" in imported.stdout
    assert run_json("identity", "verify", str(history))["valid_until"] == FOREVER
