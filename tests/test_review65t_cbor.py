"""Review 65t (review of 65q's CBOR byte limit), findings in `troth.encoding.cbor`.

cbor 1. (low: a process abort where `encode` promises a DecodeError, from a value a caller
   builds) 65q bounds the bytes of text and byte strings `encode` writes
   (`MAX_CBOR_ENCODE_BYTES`), but not of the other leaves cbor2 writes at any length: an
   integer out of [-2**64, 2**64) (a bignum, tag 2 or 3, its bytes its magnitude's), a
   `Decimal`, a `Fraction`, a compiled regular expression (tag 35, its pattern's text). The
   general path (`_copied`) passed them through unread and cbor2 wrote every path to them
   before the scan refused the tag: one 1 MiB integer 17 times was written as 17 MiB, a
   million times (within the item limit) as 1 TiB, the same abort as 65q's cbor 1. Now such a
   leaf is written as its tag alone (what the scan refuses, named by its number, before its
   content): an integer out of range by its sign, anything else by encoding it once.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

import cbor2
import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError

_BITS = 1 << 20  # a 128 KiB integer, 20 paths to it over the limit, made 1 MiB


class _Int(int):
    """An integer of no exact int type."""


@pytest.mark.parametrize(
    ("leaf", "named"),
    [
        (1 << _BITS, "bignum, tag 2"),
        (-(1 << _BITS), "bignum, tag 3"),
        (_Int(1 << _BITS), "bignum, tag 2"),
        (Decimal((0, (1,) * (1 << 18), 0)), "a decimal"),
        (Fraction(1 << _BITS, 3), "tag 30"),
        (re.compile("x" * (1 << 17)), "tag 35"),
    ],
    ids=["bignum", "negative", "int-subclass", "decimal", "fraction", "regex"],
)
def test_cbor1_a_large_leaf_shared_by_many_paths_is_never_written_for_each(
    leaf: Any, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = [0]
    dumps = cbor2.dumps

    def counted(value: Any, **kwargs: Any) -> bytes:
        data: bytes = dumps(value, **kwargs)
        written[0] = max(written[0], len(data))
        return data

    monkeypatch.setattr(cbor2, "dumps", counted)
    monkeypatch.setattr(limits, "MAX_CBOR_ENCODE_BYTES", 1 << 20)
    with pytest.raises(DecodeError, match=re.escape(named)):
        cbor.encode([leaf] * 20)
    assert written[0] <= limits.MAX_CBOR_ENCODE_BYTES  # ~2.5 MiB before


def test_cbor1_what_the_decoder_reads_is_still_written() -> None:
    """Integers in range, of an int subclass too, and floats' refusal are as before."""
    assert cbor.encode([_Int(5), -(1 << 64), (1 << 64) - 1]) == cbor2.dumps(
        [5, -(1 << 64), (1 << 64) - 1], canonical=True
    )
    with pytest.raises(DecodeError, match="a float"):
        cbor.encode([_Int(1), 1.5])
