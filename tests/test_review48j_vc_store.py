"""Review 48j, delegation 5: `troth credential verify --format vc` judged the VC's issuer
history and its feed file with no node store, so an authority key stolen before a rotation the
node had stored made VCs (and a fresh feed to go with them) that verified as valid there,
where the same thief's CBOR chain is refused."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json
from tests.support.parties import Party, empty_feed, make_party
from troth.credentials import Attributes
from troth.credentials.vc import export_credential_vc
from troth.encoding import cbor
from troth.identity import rotate_identity
from troth.node import init_node, open_node
from troth.vault import SoftwareVault


def _vc(acme: Party, member: Party, now: int, credential_id: bytes, access: str) -> dict[str, Any]:
    """acme's VC (made at now - 10, valid an hour) of `member`'s orders.access `access`."""
    return export_credential_vc(
        acme.signer,
        credential_id=credential_id,
        subject=member.identifier,
        attributes=Attributes({"orders.access": access}),
        valid_from=now - 10,
        valid_until=now + 3600,
        now=now - 10,
    )


def _thiefs_files(tmp_path: Path, now: int) -> tuple[Party, list[str]]:
    """An authority whose pre-rotation keys a thief holds: the thief's VC, a fresh feed signed
    with the old key, the old history; and the authority's rotation stored by node `desk`.
    Returns the authority and the files' paths (vc, feed, history)."""
    vault = SoftwareVault()
    acme, member = make_party(vault, now=now - 60), make_party(vault, now=now - 60)
    vc = _vc(acme, member, now, b"\x05" * 16, "write")
    files = {
        "vc.json": json.dumps(vc).encode(),
        "feed.cbor": cbor.encode(empty_feed(acme, now=now - 5)),  # a file of one page
        "old.history": acme.identity.history,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    _, rotated, _ = rotate_identity(
        vault, acme.identity, acme.primary, acme.next_primary, now=now - 30, valid_for=10**8
    )
    init_node("desk")
    with open_node("desk") as node:
        node.identities.import_history(rotated.history, now=now)
    return acme, [str(tmp_path / name) for name in files]


def test_a_vc_of_a_stolen_pre_rotation_key_is_refused_where_the_rotation_is_stored(
    tmp_path: Path,
) -> None:
    now = int(time.time())
    acme, (vc, feed, history) = _thiefs_files(tmp_path, now)
    args = ["credential", "verify", vc, "--format", "vc", "--trust", str(acme.identifier)]
    args += ["--feed", feed, "--issuer-history", history, "--node", "desk"]
    refused = run_json(*args, code=1)
    assert refused["valid"] is False
    assert refused["reason"] == "issuer identity invalid", refused
    assert "older than the stored copy" in refused["detail"], refused
    # without the store (--no-store), a stateless verifier has only the feed's word
    assert run_json(*args, "--no-store")["valid"] is True


@pytest.mark.parametrize("store", [True, False])
def test_a_vc_of_the_current_key_still_verifies_with_the_store(tmp_path: Path, store: bool) -> None:
    now = int(time.time())
    vault = SoftwareVault()
    acme, member = make_party(vault, now=now - 60), make_party(vault, now=now - 60)
    vc = _vc(acme, member, now, b"\x06" * 16, "read")
    (tmp_path / "vc.json").write_text(json.dumps(vc))
    (tmp_path / "feed.cbor").write_bytes(cbor.encode(empty_feed(acme, now=now - 5)))
    (tmp_path / "acme.history").write_bytes(acme.identity.history)
    init_node("desk")
    args = ["credential", "verify", str(tmp_path / "vc.json"), "--format", "vc"]
    args += ["--trust", str(acme.identifier), "--feed", str(tmp_path / "feed.cbor")]
    args += ["--issuer-history", str(tmp_path / "acme.history"), "--node", "desk"]
    if not store:
        args.append("--no-store")
    assert run_json(*args)["valid"] is True
    assert "valid" in run(*args).stdout
