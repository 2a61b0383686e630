"""The text forms a user types (identifiers, key handles, seal keys) refuse bad text with
troth's own error, DecodeError (MalformedText), which is also the ValueError it was."""

from __future__ import annotations

import pytest

from troth.errors import DecodeError, DecodeProblem, MalformedText, TrothError
from troth.identity import Identifier
from troth.vault import KeyHandle, SealKey

BAD = ("", "T", "T" + "0" * 63, "t" + "0" * 64, "d" + "0" * 64, "did:troth:" + "g" * 64)


@pytest.mark.parametrize("text", BAD)
def test_a_bad_identifier_is_a_typed_decode_error(text: str) -> None:
    with pytest.raises(MalformedText, match="not an identifier") as raised:
        Identifier.parse(text)
    assert isinstance(raised.value, DecodeError)
    assert isinstance(raised.value, ValueError)
    assert raised.value.problem is DecodeProblem.MALFORMED


@pytest.mark.parametrize("text", ["", "software", "software:rsa:1", "software:ed25519"])
def test_a_bad_key_handle_is_a_typed_decode_error(text: str) -> None:
    with pytest.raises(TrothError, match="not a key handle") as raised:
        KeyHandle.parse(text)
    assert isinstance(raised.value, MalformedText)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("text", ["", "software", "software:ed25519:00", "software:aes256gcm:"])
def test_a_bad_seal_key_is_a_typed_decode_error(text: str) -> None:
    with pytest.raises(TrothError, match="not a seal key") as raised:
        SealKey.parse(text)
    assert isinstance(raised.value, MalformedText)


def test_good_forms_still_parse() -> None:
    identifier = Identifier(bytes(range(32)))
    assert Identifier.parse(str(identifier)) == identifier
    handle = KeyHandle.parse("software:ed25519:00ff")
    assert str(handle) == "software:ed25519:00ff"
    assert str(SealKey.parse("software:aes256gcm:0a")) == "software:aes256gcm:0a"
