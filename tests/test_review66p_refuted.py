"""Review 66p: attacks on this session's MCP ends (66c), policy ask-back (66e) and software
vault deletion (66g) that did not work, each kept as a test of the defence it met."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import suppress
from pathlib import Path

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.shared.message import SessionMessage

from troth.integrations.mcp.upstream import upstream_stdio
from troth.node import init_node, open_node

_LAST_WORDS = """
import json, subprocess, sys, time
child = subprocess.Popen(  # holds stdout after the upstream exits (review 66c, mcp 3)
    [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
)
with open(sys.argv[1], "w") as pid:
    pid.write(str(child.pid))
time.sleep(0.4)  # the gate's reader waits for stdout longer than the idle close's 0.2 s
for n in range(3):  # 120 KB: more than the pipe holds, read in several chunks
    note = {"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "info", "data": str(n) * 40000}}
    sys.stdout.write(json.dumps(note) + "\\n")
sys.stdout.flush()
sys.exit(0)  # at once after its last write
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups")
def test_an_upstreams_last_words_after_a_long_wait_are_read_before_the_idle_close(
    tmp_path: Path,
) -> None:
    """66c's idle close of an exited upstream's stdout (MCP_UPSTREAM_EXIT_IDLE_SECONDS) counts
    from the reader's wait: an upstream quiet for longer, then writing more than a pipe holds
    and exiting at once, with a child outside its group holding stdout, is read to the end."""
    pid_file = tmp_path / "child.pid"
    upstream = StdioServerParameters(
        command=sys.executable, args=["-c", _LAST_WORDS, str(pid_file)]
    )
    got: list[SessionMessage | Exception] = []

    async def main() -> None:
        with anyio.fail_after(5):
            async with upstream_stdio(upstream) as (read, _write):
                async for item in read:
                    got.append(item)

    try:
        anyio.run(main)
    finally:
        if pid_file.exists():
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    data = [
        json.loads(item.message.model_dump_json())["params"]["data"][:1]
        if isinstance(item, SessionMessage)
        else item
        for item in got
    ]
    assert data == ["0", "1", "2"]


def test_no_two_requesters_ask_each_other_back() -> None:
    """66e's ask-back rule as a relation: X's `get` has Y ask X back when what X names would
    answer Y's own `get` (`_names_answer`), and every node names in its `get` what it asks
    (`_asked`). Over every kind of holding (none or out of force for good: revision 0; expired
    or held back: the revision below, no digest; in force: revision and digest), the relation
    is a strict order: never both ways (no two nodes asking each other back for good, 66e
    askback 1) nor round three nodes."""
    from troth.node.services.policy import _names_answer

    low, high = b"\x01" * 32, b"\xfe" * 32
    gets: list[tuple[int, bytes | None]] = [(0, None)]
    for revision in range(1, 4):
        gets += [(revision - 1, None), (revision, low), (revision, high)]

    def asks_back(x: tuple[int, bytes | None], y: tuple[int, bytes | None]) -> bool:
        asked: list[object] = [b"a", y[0]] if y[1] is None else [b"a", y[0], y[1]]
        return _names_answer(x[0], x[1], asked)

    for x in gets:
        for y in gets:
            assert not (asks_back(x, y) and asks_back(y, x)), (x, y)
            for z in gets:
                assert not (asks_back(x, y) and asks_back(y, z) and asks_back(z, x)), (x, y, z)


def _vault_rows(node_name: str) -> dict[int, int]:
    with open_node(node_name) as node:
        found = node.db.fetch_all("SELECT key_type, COUNT(*) FROM vault_keys GROUP BY key_type", ())
    return {int(key_type): int(count) for key_type, count in found}


def test_rotations_and_renewals_leave_no_vault_row_behind(troth_home: Path) -> None:
    """66g made the key type a condition of the software vault's deletion: a caller passing a
    type its row does not have would now leave the row for good. Identity rotations (routine,
    compromised), purpose keys renewed under each new change (X25519 channel keys, signing
    keys), and the broker's token keys (rotated, withdrawn, forgotten after their grace) keep
    the vault at the keys in use: nothing orphaned."""
    from troth import limits
    from troth.crypto import KeyType
    from troth.identity.service import PURPOSE_KEY_TTL
    from troth.secrets.keys import RETIRED_KEY_GRACE, BrokerKeys
    from troth.secrets.store import SqliteSecretStore
    from troth.vault import KeyPurpose, SealingVault

    init_node("n")
    now = int(time.time())
    with open_node("n") as node:
        node.identities.create(now=now, name="agent")
    start = _vault_rows("n")
    for compromised in (False, True, False, True):
        with open_node("n") as node:
            node.identities.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=now)
            node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=now)
            now += PURPOSE_KEY_TTL  # its purpose keys replaced at the next use
            node.identities.rotate("agent", now=now, compromised=compromised)
        assert _vault_rows("n") == start
    with open_node("n") as node:
        assert isinstance(node.vault, SealingVault)
        keys = BrokerKeys(SqliteSecretStore(node.db), node.vault, key_type=KeyType.P256, now=now)
        with_broker = _vault_rows("n")
        for _ in range(3):
            now += 10
            keys.rotate_signing_key(now)
        keys.rotate_signing_key(now + 1, compromised=True)  # the older ones withdrawn
        assert _vault_rows("n") == with_broker
        keys.rotate_signing_key(now + 2)
        now += limits.MAX_LEASE_TTL + RETIRED_KEY_GRACE + 10
        assert keys.forget_retired(now) == 1
    assert _vault_rows("n") == with_broker
    assert with_broker[int(KeyType.P256)] == 1
