"""Review 62q, verify: the lead's fixes of today (review 62n bench 3, the admission re-check
taking up the handshake verifier's byte checks: no finding, tests/test_review62q_refuted.py;
review 62h api 5, `PolicyBundle.from_row`).

api 1: `PolicyBundle.from_row` raised ArgumentError for a mapping lacking a row's keys only: one
with every key and fields of other types was taken as a row, the bundle then saying what the
row does not: `in_force` "false" (a text) read as in force, `tools` "read_orders" (a text, not
a list) as its 11 letters, a `revision` "7" or True left as it was (its type a lie). Was a
strict xfail until `from_row` checked the fields' types (`_is_row`).
"""

from __future__ import annotations

from typing import Any

import pytest

import troth
from troth.errors import ArgumentError
from troth.identity import Identifier

ROW: dict[str, Any] = {
    "authority": str(Identifier(bytes(32))),
    "signer": None,
    "revision": 7,
    "issued_at": 1_780_000_000,
    "expires_at": 1_780_086_400,
    "tools": ["read_orders"],
    "services": {"secrets": ["get"]},
    "policies": ["read"],
    "digest": "ab" * 32,
    "in_force": False,
    "not_in_force": "expired",
}


def test_a_row_of_stored_bundles_is_taken() -> None:
    bundle = troth.PolicyBundle.from_row(ROW)
    assert bundle.tools == ("read_orders",)
    assert bundle.services == {"secrets": ("get",)}
    assert bundle.in_force is False


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("in_force", "false"),
        ("tools", "read_orders"),
        ("policies", "read"),
        ("services", {"secrets": "get"}),
        ("revision", "7"),
        ("revision", True),
        ("expires_at", 1.5),
        ("digest", 5),
        ("not_in_force", 3),
    ],
)
def test_api1_a_mapping_whose_fields_are_not_a_rows_is_an_argument_error(
    key: str, value: object
) -> None:
    with pytest.raises(ArgumentError):
        troth.PolicyBundle.from_row({**ROW, key: value})
