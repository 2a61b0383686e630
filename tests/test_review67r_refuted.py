"""Review 67r: attacks on review 67j's recorded token serial and fork handling that did not
work; each test fails if the defence it names breaks.

- node.json's `token_serial` spelled otherwise than the vault records it (upper case, blank
  padded as CK_TOKEN_INFO carries it, empty, more than 16 bytes, odd digits): refused when
  node.json is read (`_TOKEN_SERIAL`), never compared loosely nor taken as "none recorded".
- Two processes recording at a node's first open: the later finds the earlier's serial under
  the flock (`update_config`), is refused if it is another token's, and leaves it in place.
- A software-vault node gets no `token_serial` (`_open_pkcs11` only): its node.json stays
  one a troth before 67j reads.
- Two threads forking at once while a third signs: no lock-order deadlock (`hold_sessions`
  takes the locks in the table's order, and no operation holds two), and each child exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

import troth
from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from troth.errors import ConfigError
from troth.node import node as node_module
from troth.node.config import NodeConfig, update_config
from troth.node.node import init_node, open_node
from troth.vault.pkcs11 import Pkcs11Vault
from troth.vault.pkcs11_session import module_spelling

__all__ = ["vault_fixture"]

_SOURCE: Final = str(Path(troth.__file__).parents[1])  # the troth a subprocess imports


@pytest.mark.parametrize(
    "spelled", ["ABCDEF0123456789", "6162636465666768  ", "", "00" * 17, "abc", " 00"]
)
def test_a_token_serial_spelled_otherwise_is_refused_when_node_json_is_read(
    spelled: str, tmp_path: Path
) -> None:
    """`_TOKEN_SERIAL`: only the lower-case hex of at most 16 bytes the vault writes."""
    data = {"name": "n", "vault": "pkcs11", "pkcs11_module": "/m.so", "token_label": "t"}
    data["pin_env"] = "PIN"
    data["token_serial"] = spelled
    with pytest.raises(ConfigError, match="token_serial is up to 32 hex digits"):
        NodeConfig.from_json(json.dumps(data).encode(), tmp_path / "node.json")
    data["token_serial"] = "6162636465666768"
    config = NodeConfig.from_json(json.dumps(data).encode(), tmp_path / "node.json")
    assert config.token_serial == "6162636465666768"


def test_a_serial_another_process_recorded_first_is_kept_and_refuses_this_token(
    vault: Pkcs11Vault,
    softhsm: SoftHsm,
    troth_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two first opens at once: the other process records its token's serial between this
    one's read of node.json and its update; this open is refused and keeps that record."""
    softhsm.init_node("hsm", monkeypatch)
    path = troth_home / "nodes" / "hsm" / "node.json"
    data = json.loads(path.read_text())
    del data["token_serial"]
    path.write_text(json.dumps(data))
    update = update_config

    def other_process_first(config_path: Path, change: object) -> NodeConfig:
        other = json.loads(path.read_text()) | {"token_serial": "00" * 16}
        path.write_text(json.dumps(other))
        return update(config_path, change)  # type: ignore[arg-type]

    monkeypatch.setattr(node_module, "update_config", other_process_first)
    with pytest.raises(ConfigError, match=r"another token .* than the node.s"):
        open_node("hsm")
    assert json.loads(path.read_text())["token_serial"] == "00" * 16
    monkeypatch.setattr(node_module, "update_config", update)
    with pytest.raises(ConfigError, match=r"another token .* than the node.s"):
        open_node("hsm")  # and so is every later open of the node


def test_a_software_vault_node_records_no_token_serial(troth_home: Path) -> None:
    """`_open_pkcs11` only: a software node's node.json gets no `token_serial`."""
    init_node("soft")
    with open_node("soft") as node:
        assert node.config.token_serial is None
    path = troth_home / "nodes" / "soft" / "node.json"
    assert "token_serial" not in json.loads(path.read_text())


_TWO_FORKERS: Final = """
import faulthandler
import os
import sys
import threading

faulthandler.dump_traceback_later(20, exit=True)  # hung: exit 1, the traceback on stderr
from troth.crypto import KeyType
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

module, label, pin = sys.argv[1:]
first = Pkcs11Vault(module, label, pin)
handle = first.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
exits = []


def signing():
    for _ in range(60):
        first.sign(handle, b"data")


def forking():
    for _ in range(15):
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        exits.append(os.waitpid(pid, 0)[1])


threads = [threading.Thread(target=t) for t in (signing, forking, forking)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
first.delete(handle)
first.close()
print(len(exits), set(os.waitstatus_to_exitcode(status) for status in exits))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_two_threads_forking_while_a_third_signs_all_finish(softhsm: SoftHsm) -> None:
    """`hold_sessions` from two threads at once, a signature in flight: no deadlock."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _TWO_FORKERS,
            module_spelling(softhsm.module),
            softhsm.token_label,
            softhsm.pin,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": _SOURCE},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "30 {7}"
