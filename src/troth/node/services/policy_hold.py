"""When a node may sign a bundle of an authority after a restore of its node.db (review 66b,
hold 1; review 66o, hold 1; review 66x, hold 1; review 66c2, hold 2; docs/policy.md, "A
restored node.db").

A restored copy's revision of a bundle is the copy's: one signed up from it may be one the
fleet holds, and of two bundles of one revision every node keeps the lower digest, so the new
policies replace the fleet's on about half of the restores (or the fleet's the new ones),
unseen. So once a restore was found in its `policy` scope (`troth.storage.rollback`), a node
signs no bundle of an authority until the operator says what the fleet holds: the copy lacks
what the node held, so it cannot know the fleet's revision. The hold has no time limit (deny
when in doubt): a window dated by the clock that found the restore was already closed on a
node booted before NTP set its clock (review 66x, hold 1). Nor does a bundle stored from a
pull end it: a stale member's older bundle is stored as well as the fleet's newest, and the
guard counts stores, not revisions, so the node cannot tell them apart (review 66c2, hold 2).
The way out is the operator's: the fleet's newest installed (`troth policy push`,
`clear_hold`, for the last restore found), or the word that the fleet holds no bundle of the
authority (`fleet_holds_none`), given for an authority this node holds none of: a bundle it
stored since the restore (a stale member's push) shows the fleet holds one (review 66e2, hold
1: the word let the node sign "one up" from the stale bundle, beside the fleet's).
"""

from __future__ import annotations

from troth.errors import PolicyError, PolicyFailure
from troth.gates import SqliteBundleTable
from troth.identity import Identifier
from troth.storage.rollback import restored_rows
from troth.storage.sqlite import SqliteDatabase

__all__ = ["FLEET_HOLDS_NONE", "SIGNING_HOLD_ENDED", "check_may_sign", "clear_hold"]

FLEET_HOLDS_NONE = "--fleet-holds-none"
"""`troth policy bundle create`'s option: the operator's word that no node holds a bundle of
the authority (a node restored from a copy holding none signs its first one)."""

SIGNING_HOLD_ENDED = (
    "node.db was restored from a copy: this push is your word that this bundle is the fleet's "
    "newest of its authority, and the node signs its bundles again: sign above this revision "
    "(if the fleet holds a newer one, push that one before signing)"
)
"""What a push ending the signing hold of a restore means (`clear_hold` True), told the
operator (review 67d, hold 2: it was not)."""

_TABLE = (
    "CREATE TABLE IF NOT EXISTS policy_sign_cleared (authority BLOB PRIMARY KEY, "
    "restore TEXT NOT NULL) STRICT"
)


def _last_restore(db: SqliteDatabase) -> str | None:
    """The `policy` scope's last restore found, as a key (None: none found)."""
    for row in restored_rows(db):
        if row.scope == "policy":
            return f"{row.counter}:{row.guard}:{row.voided}:{row.at}"
    return None


def clear_hold(db: SqliteDatabase, authority: Identifier) -> bool:
    """The operator installed a bundle of `authority` (`troth policy push`): its word
    that it is the fleet's newest ends the hold of the last restore found (module docstring),
    the bundle held back by the restore included (its revision may be the fleet's newest: the
    only way out on this node then); whether it ended one, for the operator to be told (review
    67d, hold 2: it was not, and confirming the copy's bundle gave the word unawares)."""
    restore = _last_restore(db)
    if restore is None:
        return False
    with db.transaction():
        if _cleared(db, authority, restore):
            return False
        db.execute(_TABLE)
        db.execute(
            "INSERT INTO policy_sign_cleared (authority, restore) VALUES (?, ?) "
            "ON CONFLICT (authority) DO UPDATE SET restore = excluded.restore",
            (authority.digest, restore),
        )
    return True


def _cleared(db: SqliteDatabase, authority: Identifier, restore: str) -> bool:
    """Whether the operator installed a bundle of `authority` since the restore `restore` (a
    read: the table is made by `clear_hold`, none yet is none cleared)."""
    if db.fetch_one("SELECT 1 FROM sqlite_master WHERE name = 'policy_sign_cleared'") is None:
        return False
    row = db.fetch_one(
        "SELECT restore FROM policy_sign_cleared WHERE authority = ?", (authority.digest,)
    )
    return row is not None and row[0] == restore


def check_may_sign(
    table: SqliteBundleTable,
    authority: Identifier,
    *,
    now: int,
    fleet_holds_none: bool = False,
) -> None:
    """PolicyError RESTORED unless this node may sign a bundle of `authority` now (module
    docstring); `fleet_holds_none`: the operator's word for an authority it holds none of."""
    del now  # no time limit: the clock that found the restore may have been behind
    if authority.digest in table.held_back():
        raise PolicyError(
            PolicyFailure.RESTORED,
            "this node's bundle of the authority came back with a restored node.db: install "
            "the fleet's newest (troth policy push), then sign above its revision",
        )
    held = table.load(authority.digest) is not None
    if fleet_holds_none and not held:  # a bundle held says otherwise (review 66e2, hold 1)
        return
    restore = _last_restore(table.db)
    if restore is None or _cleared(table.db, authority, restore):
        return
    if held:
        why = "the bundle of this authority it holds since may be older than the fleet's"
        way = (
            f" ({FLEET_HOLDS_NONE} does not hold: this node holds one)" if fleet_holds_none else ""
        )
    else:
        why = "it holds none of this authority"
        way = f"; if no node holds a bundle of it, sign with {FLEET_HOLDS_NONE}"
    raise PolicyError(
        PolicyFailure.RESTORED,
        f"node.db was restored from a copy that lacks bundles this node held, and {why}: the "
        "fleet may hold one of the revision you sign. Install the fleet's newest (troth "
        f"policy push), then sign above its revision{way}",
    )
