"""Review 64b2 of 64v's and 64n's fixes: findings in `troth.encoding.cbor`.

cbor 1: `encode`'s general path walked the value (`_check_nesting`) and then handed the same
value to cbor2's C encoder, which walked it again, recursing on the C stack unchecked: what
the encoder saw was not what was checked. A list or dict subclass whose second iteration
yields a value 200,000 deep, a `cbor2.CBORTag` whose content the check never entered, and a
`collections.deque` 200,000 deep (cbor2 writes any sequence as an array; the check walked
only lists, tuples, sets and mappings) crashed the process with a segfault where `encode`
promises a DecodeError. The general path now encodes a copy, made by the one walk that checks
its depth, whose containers (every sequence, set and mapping) are exact lists and dicts, and
a tag without its content (every tag is refused by its number). Left: a value of exact types
only (the fast path) is walked, then encoded as it is; another thread must not change it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cbor2
import pytest

from troth.encoding import cbor
from troth.errors import DecodeError

SRC = Path(__file__).resolve().parent.parent / "src"

_SECOND_LOOK_DEEPER = """
import collections
import os
import sys
import cbor2
from troth.encoding import cbor
from troth.errors import DecodeError

deep = []
for _ in range(200_000):
    deep = [deep]

class Shifty(list):
    looks = 0
    def __iter__(self):
        Shifty.looks += 1
        return iter([1] if Shifty.looks == 1 else [deep])

class ShiftyMap(dict):
    looks = 0
    def values(self):
        ShiftyMap.looks += 1
        return iter([1] if ShiftyMap.looks == 1 else [deep])
    def items(self):
        ShiftyMap.looks += 1
        return iter([("a", 1)] if ShiftyMap.looks == 1 else [("a", deep)])

for value in (Shifty([1]), ShiftyMap(a=1), cbor2.CBORTag(6, deep)):
    try:
        print(cbor.encode(value).hex())
    except DecodeError as exc:
        print("refused:", "tag" in str(exc))

queued = collections.deque()
for _ in range(200_000):
    queued = collections.deque([queued])
try:
    cbor.encode(queued)
except DecodeError as exc:
    print("refused:", "nested deeper than" in str(exc))
sys.stdout.flush()
os._exit(0)  # freeing a deque 200,000 deep overflows CPython's own stack
"""


def test_cbor1_what_cbor2_encodes_is_what_was_checked() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SECOND_LOOK_DEEPER],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # -11: a segfault
    # each container as its one walk read it; the tag refused
    assert done.stdout.split("\n")[:4] == ["8101", "a1616101", "refused: True", "refused: True"]


def test_cbor1_the_copy_keeps_what_the_scan_refuses() -> None:
    class Keys(dict[Any, Any]):
        pass

    with pytest.raises(DecodeError, match="a set"):
        cbor.encode(Keys(a={1, 2}))
    with pytest.raises(DecodeError, match="map keys must be text"):
        cbor.encode(Keys({b"k": 1}))
    with pytest.raises(DecodeError, match="tag"):
        cbor.encode([cbor2.CBORTag(1, 0)])
    with pytest.raises(DecodeError, match="nested deeper than"):
        nested: list[Any] = []
        nested.append(nested)
        cbor.encode(Keys(a=nested))

    class Text(str):
        __slots__ = ()

    assert cbor.encode(Keys({Text("b"): (1,), "a": Keys(c=[])})) == cbor.encode(
        {"a": {"c": []}, "b": [1]}
    )
