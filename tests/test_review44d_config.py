"""Review 44d, config: two processes updating one node's `node.json` at once.

Config 1. `node.json` is rewritten whole (atomically: troth.node.home) by two read-modify-write
updates that take no lock: `troth node start N --tcp-listen H:P` records the address
(`troth.node.daemon.record_listen`), and the first `troth secrets put` on a node adds the
`broker` service (`troth.node.services.broker.enable_broker`). Run at once (a provisioning
script starting the node while another step stores its first secret), each reads the file,
then writes its own change over what it read: the later write drops the earlier one's change
— here the recorded address, so the node's tickets name the old address (or none) while it
listens on the new one; the other order drops `broker`, and the secret stored is served by no
node after its restart. The interleaving is made deterministic here: the whole `record_listen`
of the other process runs between `enable_broker`'s read and its write.

Fixed (was a strict xfail): both go through `troth.node.config.update_config`, one
read-modify-write under an flock on `node.json.lock` beside the file, held from the read to
the rename. The other process here runs in a thread of its own (flock locks of two open
descriptions exclude each other within one process too): it is started between
`enable_broker`'s read and its write and given two seconds — without the lock it writes in
that window and its change is overwritten; with it, it waits and then reads what
`enable_broker` wrote.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from troth.node import config as config_module
from troth.node import init_node, open_node
from troth.node.config import NodeConfig
from troth.node.daemon import record_listen
from troth.node.home import read_private_file
from troth.node.node import node_dir
from troth.node.services import broker

LISTEN = "127.0.0.1:4100"


def test_two_updates_of_node_json_at_once_keep_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 44d, config 1."""
    init_node("n", home=tmp_path)
    path = node_dir(tmp_path, "n") / "node.json"
    other: list[threading.Thread] = []

    def read_then_the_other_process_writes(target: Path) -> bytes:
        data = read_private_file(target)
        if target == path and not other:  # `troth node start n --tcp-listen` meanwhile
            other.append(threading.Thread(target=record_listen, args=(tmp_path, "n", LISTEN)))
            other[0].start()
            other[0].join(2.0)  # done by now unless it waits for the lock
        return data

    monkeypatch.setattr(config_module, "read_private_file", read_then_the_other_process_writes)
    with open_node("n", home=tmp_path) as node:
        assert broker.enable_broker(node)
    other[0].join()
    config = NodeConfig.from_json(path.read_bytes(), path)
    assert "broker" in config.services, "enable_broker's change was lost"
    assert config.listen == LISTEN, "the address recorded meanwhile was lost"
