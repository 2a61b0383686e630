"""Review 71k (wave2d): attacks that worked on main before their fix.

wave2d 1 (medium): review 71c rows 11 made a rotation read a damaged `purpose_keys` row as no
   record, so that a node.db writer who stole a purpose key cannot keep it current by failing
   every rotation of its identity. The handle was still handed to Python as TEXT: one that is
   not UTF-8 (`CAST(x'ff' AS TEXT)`) failed the rotation's DELETE ... RETURNING ("Could not
   decode to UTF-8 column"), a compromised one too, for as long as the row stayed. And its
   bound (`length()`, characters) counted a lead byte followed by a MiB of continuation bytes
   as one character: such a handle was fetched whole. The handle is now read as the bytes of
   its text, bounded in bytes, and decoded in Python: one that is not UTF-8 is damaged (no
   record for the rotation, StorageError for a channel), like one of another type.

rows 10 (review 71c, closed here): the authority's enrollment rows (`members`, the `tickets`
   row a redemption RETURNs, `issued_credentials`, `redemptions`' chain, `pending_enrollments`,
   `announcements`, `authority_revoke_again`) were taken as `bytes()` / `int()` of what SQLite
   returned: TEXT failed bare (TypeError), an INTEGER n made n zero bytes (MemoryError for a
   large n), a REAL was truncated. They are read typed and bounded in SQL
   (`troth.storage.row_types`) and refused with StorageError saying node.db is damaged.
"""

from __future__ import annotations

import pytest

from tests.conftest import NOW
from troth.errors import StorageError
from troth.node import init_node, open_node
from troth.vault import KeyPurpose

_HANDLES = {  # the bytes of a TEXT handle
    "not utf-8": b"\xff",
    "one character of a MiB": b"\xc0" + b"\x80" * (1 << 20),  # length() counts lead bytes
}


@pytest.mark.parametrize("what", sorted(_HANDLES))
def test_a_purpose_key_handle_not_utf8_blocks_no_compromised_rotation(what: str) -> None:
    """71k wave2d 1: a purpose key row whose handle is TEXT that is not UTF-8 failed the
    compromised rotation of its identity (StorageError "Could not decode", for good); now the
    rotation commits, the row gone, and a channel's read of it says node.db is damaged."""
    init_node("n")
    with open_node("n") as node:
        service = node.identities
        local = service.create(now=NOW, name="a")
        service.purpose_key("a", KeyPurpose.SECURE_CHANNEL, now=NOW)
        node.db.execute("UPDATE purpose_keys SET key_handle = CAST(? AS TEXT)", (_HANDLES[what],))
        with pytest.raises(StorageError, match="is damaged: its"):
            service.store.get_purpose_key(local.identifier.digest, int(KeyPurpose.SECURE_CHANNEL))
        rotated = service.rotate("a", now=NOW + 10, compromised=True)
        assert rotated.identity.changes != local.identity.changes
        assert node.db.fetch_all("SELECT * FROM purpose_keys") == []
