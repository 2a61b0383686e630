"""Review 44c, API: `Node.delegate` with a ttl that is not a positive whole number of seconds
failed deep inside, with words about something else: ttl=-1 "not_before is after expires_at",
ttl="5m" and None a TypeError about `+`, ttl=1.5 a DecodeError about a float at byte 134. It
is refused first now, a ValueError naming ttl (what `Node.open` raises for a bad name).
"""

from __future__ import annotations

import pytest

import troth


@pytest.mark.parametrize("ttl", [-1, 0, "5m", 1.5, None, True])
def test_delegate_refuses_a_ttl_that_is_not_positive_seconds(ttl: object) -> None:
    with (
        troth.Node.open("acme") as hub,
        troth.Node.open("customer") as customer,
        troth.Node.open("support") as support,
    ):
        acme = hub.create_authority()
        customer.enroll(acme.ticket({"orders.access": "read"}))
        with pytest.raises(ValueError, match="ttl"):
            customer.delegate(
                customer.identity,
                to=support.identity,
                ttl=ttl,  # type: ignore[arg-type]
                purpose="p",
                attributes={"orders.access": "read"},
            )
