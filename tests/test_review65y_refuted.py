"""Review 65y (the CBOR encoder's byte bound made cheap): attacks on the bounded writer that
did not work.

`encode`/`encode_counted` no longer count strings' lengths in their walks (a quarter of the
hot path's bytecodes): cbor2 writes into `cbor._Bounded`, which refuses past
`limits.MAX_CBOR_ENCODE_BYTES` bytes. That is sound only if cbor2 streams: a value repeating
one 1 MiB string a million times (1 TiB written) must be refused holding a few tens of MiB,
on the fast path, `encode_counted`'s, the general path and inside canonical maps (cbor2 sorts a
map's keys by their encodings: it must not encode whole entries apart). Run under a 1 GiB
address-space limit in a child, where cbor2's failed allocation aborted the process (65q).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import cbor2
import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem

_CHILD = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from troth.encoding import cbor
from troth.errors import DecodeError
m = b"x" * (1 << 20)
class T(tuple): pass
cases = [([m] * 1000000, cbor.encode), ([1, [m] * 1000000], cbor.encode_counted),
         (T([m] * 300000), cbor.encode), ([{m.decode(): 1}] * 300000, cbor.encode),
         ([{"a": m.decode(), "b": [m] * 3}] * 100000, cbor.encode)]
for v, f in cases:
    try:
        f(v)
        print("WRITTEN")
    except DecodeError as e:
        print(e.problem.name)
with open("/proc/self/status") as status:  # this process's peak (ru_maxrss has the parent's)
    print([int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM")][0])
"""


def test_a_string_shared_a_million_times_is_refused_holding_little() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, env=env
    )
    assert child.returncode == 0, child.stderr
    *problems, most_mib = child.stdout.split()
    assert problems == ["OVER_LIMIT"] * 5
    assert int(most_mib) < 256  # ~100 MiB measured, most of it the lists of references


class _Writes:
    """A check on cbor2's streaming: the largest single write it makes of a value."""

    def __init__(self) -> None:
        self.largest = 0

    def writable(self) -> bool:
        return True

    def write(self, chunk: bytes) -> int:
        self.largest = max(self.largest, len(chunk))
        return len(chunk)


@pytest.mark.parametrize(
    "value",
    [[b"x" * 100] * 10_000, {str(n): [n, "y" * 50] for n in range(5_000)}],
    ids=["array", "map"],
)
def test_cbor2_writes_in_small_chunks(value: Any) -> None:
    """The bound holds only if cbor2 hands its output over as it goes, not at the end."""
    writes = _Writes()
    cbor2.dump(value, writes, canonical=True)  # type: ignore[arg-type]
    assert writes.largest <= 64 * 1024 < len(cbor2.dumps(value, canonical=True))


def test_the_writer_refuses_from_the_first_byte_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_CBOR_ENCODE_BYTES", 1000)
    assert len(cbor.encode([b"x" * 996])) == 1000
    with pytest.raises(DecodeError, match="longer than 1000 bytes") as refused:
        cbor.encode([b"x" * 997])
    assert refused.value.problem is DecodeProblem.OVER_LIMIT
