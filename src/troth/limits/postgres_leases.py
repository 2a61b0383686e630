"""The hard limits of a postgres lease's role (troth.secrets.engines.postgres).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["POSTGRES_LEASE_CONNECTIONS", "POSTGRES_MAX_LEASE_CONNECTIONS"]

POSTGRES_LEASE_CONNECTIONS: Final = 10
"""Sessions a postgres lease's role may hold at once (its `CONNECTION LIMIT`) unless its secret's
`connection_limit` setting says otherwise: without one, the holder of one lease took every slot
of the server and no other agent's lease could log in (review 61e, postgres 1)."""
POSTGRES_MAX_LEASE_CONNECTIONS: Final = 1000
"""The largest `connection_limit` a postgres secret may set (its smallest is 1)."""
