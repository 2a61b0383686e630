"""A broker process for the crash tests: `python -m tests.support.lease_worker DB SEED`.

It recovers (as a node does at start), prints `ready`, then issues postgres leases and revokes
every other one forever, printing `issued <handle> <expires_at>` after each issue returned and
`revoked <handle>` after each revocation returned. The parent SIGKILLs it at a random moment; with
TROTH_CRASH_AT=<point> it also kills itself at that point of its next engine call (between the
PENDING write and the role, between the role and ACTIVE, between REVOKING and the engine's
revocation, between the engine's revocation and REVOKED)."""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.leases import make_world, open_broker
from troth.secrets import AllowListPolicy, LeaseBook, PostgresEngine

SECRET = "orders-db"


def _die(point: str) -> None:
    print(f"crash {point}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str, rng: random.Random) -> None:
    """Kill this process at `point`, at its first or second occurrence."""
    countdown = [rng.randrange(2)]

    def fire() -> None:
        if countdown[0] == 0:
            _die(point)
        countdown[0] -= 1

    def around(cls: Any, name: str, before: bool) -> None:
        original = getattr(cls, name)

        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            if before:
                fire()
            result = original(self, *args, **kwargs)
            if not before:
                fire()
            return result

        setattr(cls, name, wrapped)

    places = {
        "before-create": (PostgresEngine, "issue", True),
        "after-create": (PostgresEngine, "issue", False),
        "before-drop": (PostgresEngine, "revoke", True),
        "after-drop": (PostgresEngine, "revoke", False),
        "after-revoking": (LeaseBook, "revoke", False),
    }
    if point in places:
        around(*places[point])


def main(db_path: str, seed: str) -> None:
    rng = random.Random(int(seed))
    _arm(os.environ.get("TROTH_CRASH_AT", ""), rng)
    now = int(time.time())
    world = make_world(now)
    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    _db, broker = open_broker(Path(db_path), now=now, policy=policy, quota=10_000)
    broker.recover(now)
    print("ready", flush=True)
    credential = world.credential_a(now)
    count = 0
    while True:
        now = int(time.time())
        issued = broker.issue(credential, SECRET, ttl=rng.randint(1, 3), now=now)
        print(f"issued {issued.lease.handle} {issued.lease.expires_at}", flush=True)
        count += 1
        if count % 2 == 0:
            broker.revoke(credential, issued.lease_id, now=now)
            print(f"revoked {issued.lease.handle}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
