"""Review 22c (credentials): the authority's ticket check (`check_fits`, d5479bd) weighs a
ticket's attributes alone, but a member that redeems a ticket has them merged into what it
already holds (`enroll`: `existing.attributes.merged(granted)`, test_reenroll_merges_attributes).
Two tickets that each fit make a member whose credential does not:

- 28 + 28 attributes of MAX_ATTRIBUTE_TEXT characters: each ticket's credential is ~7.6 KiB;
  the merged one 15 KiB, over MAX_CREDENTIAL_BYTES: `enroll` raises CredentialError (not an
  AuthorityError) at redemption — what the fix says is refused "when it is made, not when it
  is redeemed";
- 40 + 40 short attributes: the merge is over MAX_ATTRIBUTES and `Attributes` raises an
  untyped ValueError out of `Authority.enroll`.

The test asserts the correct behaviour (the second enrollment succeeds or is refused with an
AuthorityError); it was a strict xfail until its fix (troth/authority/core.py enroll: check the
merged attributes — count and `check_fits` — and refuse typed, REQUEST_INVALID).
"""

from __future__ import annotations

import contextlib

import pytest

from tests.test_authority import Setup, setup  # noqa: F401 - `setup` is a fixture
from troth import limits
from troth.credentials import Attributes
from troth.errors import AuthorityError

_CASES = {
    "bytes": (28, "x" * limits.MAX_ATTRIBUTE_TEXT),
    "count": (40, "x"),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_a_second_ticket_is_redeemed_or_refused_typed(
    setup: Setup,  # noqa: F811 - the fixture imported above
    case: str,
) -> None:
    count, value = _CASES[case]
    first = setup.ticket(attributes=Attributes({f"orders.a{n}": value for n in range(count)}))
    second = setup.ticket(attributes=Attributes({f"orders.b{n}": value for n in range(count)}))
    setup.enroll("alice", first)
    with contextlib.suppress(AuthorityError):  # refused, typed: fine
        setup.enroll("alice", second)
