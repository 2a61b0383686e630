"""When a node may sign a bundle of an authority after a restore of its node.db (review 66b,
hold 1; review 66o, hold 1; review 66x, hold 1; docs/policy.md, "A restored node.db").

A restored copy's revision of a bundle is the copy's: one signed up from it may be one the
fleet holds, and of two bundles of one revision every node keeps the lower digest, so the new
policies replace the fleet's on about half of the restores (or the fleet's the new ones),
unseen. So a node signs no bundle of an authority whose bundle it holds back, nor, once a
restore was found in its `policy` scope (`troth.storage.rollback`), of an authority it holds no
bundle of: the copy lacks what the node held, so it cannot know the fleet's revision. The hold
has no time limit (deny when in doubt): a window dated by the clock that found the restore was
already closed on a node booted before NTP set its clock (review 66x, hold 1). The way out is the fleet's newest installed (`troth policy bundle
install`, or pulled: it is stored, which ends the doubt), or the operator's word that the
fleet holds no bundle of the authority (`fleet_holds_none`).
"""

from __future__ import annotations

from troth.errors import PolicyError, PolicyFailure
from troth.gates import SqliteBundleTable
from troth.identity import Identifier
from troth.storage.rollback import restored_rows

__all__ = ["FLEET_HOLDS_NONE", "check_may_sign"]

FLEET_HOLDS_NONE = "--fleet-holds-none"
"""`troth policy bundle create`'s option: the operator's word that no node holds a bundle of
the authority (a node restored from a copy holding none signs its first one)."""


def check_may_sign(
    table: SqliteBundleTable,
    authority: Identifier,
    *,
    now: int,
    fleet_holds_none: bool = False,
) -> None:
    """PolicyError RESTORED unless this node may sign a bundle of `authority` now (module
    docstring); `fleet_holds_none`: the operator's word for an authority it holds none of."""
    if authority.digest in table.held_back():
        raise PolicyError(
            PolicyFailure.RESTORED,
            "this node's bundle of the authority came back with a restored node.db: install "
            "the fleet's newest (troth policy bundle install), then sign above its revision",
        )
    if fleet_holds_none or table.load(authority.digest) is not None:
        return
    del now  # no time limit: the clock that found the restore may have been behind
    if any(r.scope == "policy" for r in restored_rows(table.db)):
        raise PolicyError(
            PolicyFailure.RESTORED,
            "node.db was restored from a copy that lacks bundles this node held, and it holds "
            "none of this authority: the fleet may hold one of the revision you sign. Install "
            "the fleet's newest (troth policy bundle install), then sign above its revision; "
            f"if no node holds a bundle of it, sign with {FLEET_HOLDS_NONE}",
        )
