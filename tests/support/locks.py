"""A node's `node.db.revoking` held alone by this process, as a settling sync holds it (and a
stopped one would: reviews 50j, 50l), while another piece of work runs."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from troth import limits
from troth.storage.peers import PeerLock


def finishes_while_held_alone(node: str, target: Callable[[], None]) -> bool:
    """Run `target` in a thread while this process holds node `node`'s `node.db.revoking`
    alone: whether it finished within 10 x MARK_BUSY_SECONDS + 20 s (it is joined either way,
    once the lock is let go)."""
    lock = PeerLock(Path(os.environ["TROTH_HOME"]) / "nodes" / node / "node.db.revoking")
    try:
        with lock.alone() as alone:
            assert alone
            worker = threading.Thread(target=target, daemon=True)
            worker.start()
            worker.join(timeout=10 * limits.MARK_BUSY_SECONDS + 20)
            finished = not worker.is_alive()
        worker.join()
    finally:
        lock.close()
    return finished
