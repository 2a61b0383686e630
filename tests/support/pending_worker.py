"""A broker process killed mid-issue: `python -m tests.support.pending_worker DB`.

It opens a broker over DB (holding the database's broker lock, as every open broker does),
stores secret `orders-db` of a remote engine (`RemoteStub`) and issues a lease of it; the engine
SIGKILLs the process between the PENDING write and the ACTIVE one, after printing `pending`."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from tests.support.leases import RemoteStub, make_world, open_broker
from troth.secrets import AllowListPolicy

SECRET = "orders-db"


def _killed() -> None:
    print("pending", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def main(db_path: str) -> None:
    now = int(time.time())
    world = make_world(now)
    policy = AllowListPolicy({world.agent_b.identifier: {SECRET: None}})
    _db, broker = open_broker(Path(db_path), now=now, policy=policy)
    engine = RemoteStub()
    engine.during_issue = _killed
    broker.engines[engine.kind] = engine
    broker.put_secret(SECRET, engine.kind, {"scopes": ["read"]}, b"admin-pw", now=now)
    broker.issue(world.credential_b(), SECRET, now=now)


if __name__ == "__main__":
    main(sys.argv[1])
