"""Review 57b, restore 1: a copy of node.db taken before `troth identity rotate --compromised`,
put back (an operator's restore of last night's backup, a volume snapshot rolled back, node.db
copied alone as docs/storage.md, "Rollback guard", advises), brings back the keys the recovery
rotation deleted, and the node signs with them again, unseen. The rollback guard counts an
authority's, a broker's and the policy bundles' irreversible writes; the recovery rotation,
whose whole point is that no copy's keys sign for the identity again (docs/vault.md,
"Recovering from a stolen backup"), is not counted, where a broker's compromised token key
rotation is (review 52c, rollback 1). A routine rotation's retired keys come back the same way.
On a PKCS#11 node the token destroyed them: the copy names keys that are gone, and the
identity signs nothing (nor rotates), its new keys left in the token named by no row.
Fixed by review 57i: an `identity` scope of the guard counts each rotation (as the broker's
compromised rotation is counted), and a restored copy, once found, holds its identities (no
signer, no channel, no rotation: troth.identity.restored), reported by `troth node status`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, restore_db
from troth.errors import TrothError
from troth.identity import verify_signed_by
from troth.node import init_node, open_node

MESSAGE = b"pay the bearer"


@pytest.mark.parametrize("compromised", [True, False])
def test_a_copy_from_before_a_rotation_does_not_sign_with_the_keys_it_deleted(
    troth_home: Path, compromised: bool
) -> None:
    init_node("laptop")
    path = node_db(troth_home, "laptop")
    with open_node("laptop") as node:
        node.identities.create(now=NOW, name="courier")
        stolen = node.identities.signer("courier", now=NOW).handle  # a thief's copy holds it
    copy_db(path, troth_home / "copy.db")  # last night's backup, the guard left out
    with open_node("laptop") as node:  # the theft found: the recovery (or a routine rotation)
        node.identities.rotate("courier", now=NOW + 10, compromised=compromised)
    restore_db(path, troth_home / "copy.db")  # the disk failed; last night's backup restored
    with open_node("laptop") as node:
        try:
            signer = node.identities.signer("courier", now=NOW + 20)
            signature = signer.sign(MESSAGE)
        except TrothError:
            return  # refused, as a restored broker refuses its withdrawn token keys
        verify_signed_by(signer.identity, signer.attestation, MESSAGE, signature, at=NOW + 20)
        assert signer.handle != stolen, "signed with a key the recovery rotation deleted"
