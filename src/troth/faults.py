"""Crash points for fault-injection tests (docs/storage.md, "Recovery rules").

`crash_point(name)` ends the process at once (`os._exit(137)`, as a SIGKILL would: no cleanup,
no flush, no rollback beyond what the database does on its next open) when the environment
variable TROTH_CRASH_AT equals `name`. The variable is read once, when this module is imported;
without it a crash point is one comparison with None.

Crash points sit before and after each commit of a multi-step operation (enrollment on both
sides, batch creation, identity rotation: review 38c; revocation, tickets, the trace log,
policy bundles and the node's private files: review 45f; a vault's rekey; a member
credential's refresh: review 47f), so that tests can prove what a crash at each step leaves
and how it is resumed. Names:
`<side>.<operation>.<step>`, e.g. `authority.enroll.after-commit`.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["CRASH_ENV", "CRASH_EXIT_CODE", "CRASH_POINTS", "crash_point"]

CRASH_ENV: Final = "TROTH_CRASH_AT"
CRASH_EXIT_CODE: Final = 137  # what a shell reports for a process killed by SIGKILL (128 + 9)
CRASH_POINTS: Final = (
    "authority.enroll.before-commit",
    "authority.enroll.after-commit",
    "holder.enroll.before-pending",
    "holder.enroll.after-pending",
    "holder.enroll.before-commit",
    "holder.enroll.after-commit",
    "identity.create.before-commit",
    "identity.create.after-commit",
    "identity.rotate.before-commit",
    "identity.rotate.after-commit",
    # review 47f: a token's retired keys recorded and committed, not yet deleted from it
    "identity.retired-keys.before-delete",
    "node.mcp-grantors.before-commit",
    # review 45f: the other operations whose steps span a commit and another effect
    "authority.revoke.before-commit",
    "authority.revoke.after-commit",
    "authority.ticket.before-commit",
    "authority.ticket.after-commit",
    "trace.append.before-commit",
    "trace.append.after-commit",
    "trace.checkpoint.before-commit",
    "trace.checkpoint.after-commit",
    "trace.redact.before-commit",
    "trace.redact.after-commit",
    "trace.redact.after-checkpoint",  # review 46c: the WAL truncated, the redaction's mark kept
    "trace.outbox-redact.before-commit",  # review 46e: a queued record's value redacted
    "trace.outbox-redact.after-commit",  # (node.db's WAL not truncated yet)
    # review 54c, crash 2: a node's log identity reserved in trace.db, not yet in node.db;
    # in node.db, not yet bound (troth.trace.log_identity)
    "trace.log-identity.after-reserve",
    "trace.log-identity.before-bind",
    # review 47f: a member credential's refresh at the authority (issued, the answer lost)
    "authority.refresh.before-commit",
    "authority.refresh.after-commit",
    # review 47f: a broker's token key rotation (a compromised one withdraws the older keys)
    "secrets.rotate-key.before-commit",
    "secrets.rotate-key.after-commit",
    "node.policy-bundle.before-commit",
    "node.policy-bundle.after-commit",
    "node.file.before-rename",
    "node.file.after-rename",
    # troth vault rekey (troth.node.rekey): the new KEK pending, the rows re-sealed (and the
    # scrub marked owed), node.db vacuumed, the mark cleared (review 47c), the key file switched;
    # an open finishing a killed rekey passes after-vacuum and after-scrub too
    "vault.rekey.before-pending",
    "vault.rekey.after-pending",
    "vault.rekey.before-commit",
    "vault.rekey.after-commit",
    "vault.rekey.after-vacuum",
    "vault.rekey.after-scrub",
    "vault.rekey.after-rename",
    # review 51d: the rollback guard beside node.db raised after an irreversible write's
    # commit (troth.storage.rollback: the store ahead of its guard until the slot is written)
    "storage.rollback-guard.before-write",
    "storage.rollback-guard.after-write",
)
"""Every crash point the library has (tests iterate over them)."""

_ARMED: Final = os.environ.get(CRASH_ENV) or None


def crash_point(name: str) -> None:
    """End the process with exit code 137 if TROTH_CRASH_AT names this point."""
    if name == _ARMED:
        os._exit(CRASH_EXIT_CODE)
