"""Review 38c, vault: a node whose `vault.key` is gone (a restore that copied `node.db` but was
killed before `vault.key`, a partial copy of the node directory, a file deleted by mistake)
while its database holds keys sealed under it.

The next open wrote a fresh random `vault.key` (the file is made on first use) and only then
found that it does not open the vault: the damage was reported as a wrong key, and the node
directory now held a key file opening nothing, which a restore with no-clobber copying (`cp
-n`, `rsync --ignore-existing`, the exclusive create troth itself uses) then kept in place of
the real one. A missing key file is damage to report, never to paper over with a new key.

Was a strict xfail until `open_node` refused, when the database holds a key check, to make a
new `vault.key` (ConfigError: the file is missing; restore it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.errors import ConfigError
from troth.node import init_node, open_node
from troth.node.node import node_dir

NOW = 1_800_000_000


def test_a_lost_vault_key_is_reported_missing_and_not_replaced(tmp_path: Path) -> None:
    init_node("agent", home=tmp_path)
    with open_node("agent", home=tmp_path) as node:
        node.identities.create(now=NOW, name="agent")
    key_file = node_dir(tmp_path, "agent") / "vault.key"
    original = key_file.read_bytes()
    key_file.unlink()  # the restore was killed before it copied the key file
    with pytest.raises(ConfigError, match=r"vault\.key.* is missing"):
        open_node("agent", home=tmp_path)
    assert not key_file.exists()
    key_file.write_bytes(original)  # restored: the node opens with its keys
    key_file.chmod(0o600)
    with open_node("agent", home=tmp_path) as node:
        assert node.identities.find("agent").name == "agent"
