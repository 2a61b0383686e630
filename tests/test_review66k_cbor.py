"""Review 66k (second review of the CBOR encoder's bounds, 65b/65q/65t/65y): findings.

cbor 1 — `encode` promises `DecodeError` (over a limit) for a value of more than
`MAX_CBOR_ENCODE_ITEMS` data items, but its general path (`_copied`, for every container not of
the subset's exact types) copied each container whole before counting it: `range(10**12)`
raised MemoryError, a `Sequence` whose `__len__` said 10**15 did too (the copy preallocated
that), `range(10**8)` took some 4 GB before being refused, and a sequence that never ends grew
until the memory ran out. Now a container is read up to one item past what is left of the limit
(`itertools.islice`), so each is refused holding at most the limit's worth. Checked in a child
under a 1 GiB address-space limit, where the unbounded copy fails with MemoryError.
"""

from __future__ import annotations

import os
import subprocess
import sys

_CHILD = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from collections.abc import Mapping, Sequence
from troth.encoding import cbor
from troth.errors import DecodeError

class Lying(Sequence):
    def __len__(self):
        return 10**15
    def __getitem__(self, index):
        if index >= 3:
            raise IndexError(index)
        return index

class Endless(Sequence):
    def __len__(self):
        return 1
    def __getitem__(self, index):
        return 0
    def __iter__(self):
        while True:
            yield 0

class Huge(Mapping):
    def __len__(self):
        return 10**15
    def __getitem__(self, key):
        return 0
    def __iter__(self):
        return (str(n) for n in range(10**15))

for value in (range(10**12), range(10**8), Endless(), Huge(), [[0, range(10**12)]], {range(9)}):
    try:
        cbor.encode(value)
        print("WRITTEN")
    except DecodeError as e:
        print(e.problem.name)
    except MemoryError:
        print("MemoryError")
print(cbor.encode(Lying()).hex())
"""


def test_cbor1_containers_past_the_item_limit_are_refused_before_they_are_copied() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, env=env
    )
    assert child.returncode == 0, child.stderr
    *problems, lying = child.stdout.split()
    assert problems == ["OVER_LIMIT"] * 5 + ["MALFORMED"]  # the set: a tag, refused as such
    assert lying == "83000102"  # what its iteration yields is what is written, as before
