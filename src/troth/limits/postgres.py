"""The hard limits of the postgres lease engine's GRANTs and REVOKEs
(troth.secrets.engines.postgres_grants).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module is near the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = ["POSTGRES_GRANT_TRIES"]

POSTGRES_GRANT_TRIES: Final = 8
"""Times the postgres engine runs one transaction of GRANTs or REVOKEs that PostgreSQL failed as
concurrently updated (XX000: it updates an object's ACL row unlocked, so two sessions' GRANTs on
one table at once fail one; review 60z, postgres 1) before the call fails. No lock serialises
them: an advisory lock is open to every role that may connect, and a lease's holder that kept it
failed every issue and revocation in its database (review 60l, postgres 1)."""
