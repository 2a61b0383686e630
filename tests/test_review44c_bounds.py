"""Review 44c, bounds: an authority's numbers were bounded only by literals in the CLI, or not
at all. A ticket's or member credential's TTL past a signed 64-bit time ended in SQLite's
OverflowError: a traceback from `troth authority ticket create --ttl 99999999999999999999d`
and `troth authority create --credential-ttl ...` (the authority's node was made, its
configuration not), and from the Python API (`Authority.ticket(ttl=...)`, `uses=...`);
`create_authority(credential_ttl=0)` was taken. The authority checks them now against limits
named in troth.limits (MAX_TTL, MAX_TICKET_USES, MAX_DELEGATION_LINKS, MAX_REVOCATION_QUOTA),
and the CLI's options use the same names: too large is a usage error (exit 2), never a
traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import troth
from troth.cli.main import cli

HUGE = "99999999999999999999d"


@pytest.mark.parametrize(
    "args",
    [
        ["authority", "ticket", "create", "--authority", "acme", "--ttl", HUGE],
        ["authority", "create", "big", "--credential-ttl", HUGE],
    ],
)
def test_a_huge_ttl_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    assert CliRunner().invoke(cli, ["authority", "create", "acme"]).exit_code == 0
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"] == "BadParameter"


@pytest.mark.parametrize(
    "make",
    [
        lambda authority, node: authority.ticket({"orders.access": "read"}, ttl=10**30),
        lambda authority, node: authority.ticket({"orders.access": "read"}, uses=10**30),
        lambda authority, node: troth.Node.open("other").create_authority(credential_ttl=0),
        lambda authority, node: troth.Node.open("more").create_authority(credential_ttl=10**30),
        lambda authority, node: troth.Node.open("deep").create_authority(delegation_depth=99),
    ],
)
def test_the_authority_refuses_numbers_out_of_bounds(make: object) -> None:
    with troth.Node.open("acme") as node:
        authority = node.create_authority()
        with pytest.raises(troth.TrothError):
            make(authority, node)  # type: ignore[operator]
