"""Review 54n: attacks on the public Python API's argument checks that the code refused as it
should (each a TrothError with a reason, not a bare Python error)."""

from __future__ import annotations

from typing import Any

import pytest

import troth


def _(value: object) -> Any:
    return value


@pytest.mark.parametrize(
    "value", ["", "a\x00b", "sup\ud800port", b"T" + b"0" * 64, 0, True, None, [], 2**70]
)
def test_verify_presenter_of_any_wrong_value_is_a_troth_error(value: object) -> None:
    """Text that is no identifier (a lone surrogate, a NUL) is MalformedText or an
    ArgumentError; another type an ArgumentError; before any chain is read."""
    with troth.Node.open("hub") as hub:
        acme = hub.create_authority()
        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme)
        with pytest.raises(troth.TrothError):
            verifier.verify(b"", presenter=_(value))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1.5, True, "5", None, b"5"])
def test_ticket_ttl_and_uses_of_wrong_values_are_argument_errors(value: object) -> None:
    """NaN, inf, a float, a bool (an int in Python), text or bytes as a ttl or a ticket's uses."""
    with troth.Node.open("hub") as hub:
        acme = hub.create_authority()
        with pytest.raises(troth.ArgumentError):
            acme.ticket({"a.b": "x"}, ttl=_(value))
        with pytest.raises(troth.ArgumentError):
            acme.ticket({"a.b": "x"}, uses=_(value))


WRONG: list[object] = [
    None,
    "",
    "a\x00b",
    "\ud800",
    b"x",
    0,
    -1,
    True,
    2**70,
    1.5,
    float("nan"),
    [],
    {},
    {1: "a"},
]


@pytest.mark.parametrize("value", WRONG, ids=repr)
def test_identifiers_and_attributes_of_wrong_values_are_troth_errors(value: object) -> None:
    """`Identifier(...)`, `Identifier.parse`, `Attributes(...)` (whole, as a value): MalformedText
    or ArgumentError for each; `Identifier.looks_like` False. (`Attributes(None)` and
    `Attributes({})` are empty attributes, and a value may hold a NUL: text, as CBOR and Cedar
    take it.)"""
    with pytest.raises(troth.TrothError):
        troth.Identifier(_(value))
    with pytest.raises(troth.TrothError):
        troth.Identifier.parse(_(value))
    if value is not None and value != {}:
        with pytest.raises(troth.TrothError):
            troth.Attributes(_(value))
    if value != "a\x00b":
        with pytest.raises(troth.TrothError):
            troth.Attributes({"a.b": _(value)})
    assert troth.Identifier.looks_like(_(value)) is False


def test_a_credential_made_by_hand_of_the_right_types_revokes_nothing_it_may_not() -> None:
    """A `Credential` of the right types whose `id` is not a link of its `chain`, or a link its
    revoker did not issue, or whose `authority` no node hosts: refused by the authority (or
    NotFound), and both chains still verify. Only `chain` is ever trusted, after checking."""
    import dataclasses

    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        support = agents.identities.create("support")
        sub = agents.identities.create("sub")
        member = agents.enroll(acme.ticket({"a.b": "x"}), identity=support)
        chain = agents.delegate(support, to=sub, attributes={"a.b": "x"}, ttl=60, purpose="p")
        forged = (
            dataclasses.replace(chain, id=b"\x07" * 32),
            dataclasses.replace(chain, id=member.id),
            dataclasses.replace(chain, chain=member.chain),
            dataclasses.replace(chain, authority=sub.identifier),
        )
        for credential in forged:
            with pytest.raises((troth.AuthorityError, troth.NotFound)):
                agents.revoke(credential, by=support)
        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme)
        assert verifier.verify(member, presenter=support).actor == support.identifier
        assert verifier.verify(chain, presenter=sub).actor == sub.identifier
