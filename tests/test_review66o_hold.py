"""Review 66o, hold: the refusal to sign a bundle on a node restored from a copy (review 66b,
hold 1), attacked.

hold 1 (medium: a fleet's policy rolled back, as 66b hold 1) A hub's node.db restored from a
  copy taken before its authority's first bundle (revision 1, held by the whole fleet) holds
  no bundle of it, so nothing was held back (the hold marks the bundles the copy holds) and
  `sign_bundle_as` signed a new revision 1: a second bundle of the fleet's revision, of which
  every node keeps the lower digest, so on about half of such restores the new policies
  replaced the fleet's unseen (or the fleet's the new ones). Now, after a restore found in
  the `policy` scope, signing a bundle of an authority is refused (RESTORED) until the
  operator installs one (`troth policy push`, the fleet's newest) or gives her word that the
  fleet holds none (`troth policy bundle create --fleet-holds-none`) (policy_hold.py; review
  66c2 dropped the time limit and the end by any bundle stored).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run_json
from tests.support.gates import POLICIES, TOOLS
from tests.test_review45f_policy import bundles
from troth.clock import SystemClock
from troth.errors import PolicyError, PolicyFailure
from troth.node import open_node
from troth.node.services.policy import install_bundle, sign_bundle_as


def _sign(home: Path, revision: int) -> bytes:
    with open_node("acme", home=home) as node:
        authority = node.hosted_authority()
        assert authority is not None
        return sign_bundle_as(
            node,
            "acme",
            authority=authority.identifier,
            policies=POLICIES,
            schema="",
            tools=TOOLS,
            services={},
            revision=revision,
            now=SystemClock().now(),
            ttl=3600,
        )


def test_hold1_a_hub_restored_from_before_its_first_bundle_signs_none_of_its_revision(
    troth_home: Path, tmp_path: Path
) -> None:
    first, _ = bundles(troth_home, tmp_path)
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)  # before the authority's first bundle
    install_bundle(troth_home, "acme", first.read_bytes(), clock=SystemClock())  # the fleet's
    restore_db(path, copy)
    with pytest.raises(PolicyError) as caught:
        _sign(troth_home, 1)
    assert caught.value.reason is PolicyFailure.RESTORED


def test_hold1_the_way_out_the_fleets_bundle_installed_or_the_operators_word(
    troth_home: Path, tmp_path: Path
) -> None:
    first, second = bundles(troth_home, tmp_path)
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)
    install_bundle(troth_home, "acme", first.read_bytes(), clock=SystemClock())
    restore_db(path, copy)
    with pytest.raises(PolicyError):
        _sign(troth_home, 1)
    refused = run_json(  # the CLI names the way out
        "policy",
        "bundle",
        "create",
        "--policies",
        str(_policies(tmp_path)),
        "--tools",
        str(_tools(tmp_path)),
        "--revision",
        "1",
        "--as",
        "acme",
        "--authority",
        "acme",
        "--out",
        str(tmp_path / "new.bundle"),
        "--node",
        "acme",
        code=1,
    )
    assert "--fleet-holds-none" in refused["message"]
    made = run_json(  # the operator's word: no node holds one
        "policy",
        "bundle",
        "create",
        "--policies",
        str(_policies(tmp_path)),
        "--tools",
        str(_tools(tmp_path)),
        "--revision",
        "1",
        "--as",
        "acme",
        "--authority",
        "acme",
        "--out",
        str(tmp_path / "new.bundle"),
        "--node",
        "acme",
        "--fleet-holds-none",
    )
    assert made["revision"] == 1
    install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())  # the fleet's
    assert _sign(troth_home, 3)  # stored: no doubt left


def _policies(tmp: Path) -> Path:
    path = tmp / "policies.cedar"
    path.write_text(POLICIES)
    return path


def _tools(tmp: Path) -> Path:
    path = tmp / "tools.json"
    path.write_text(json.dumps(TOOLS))
    return path
