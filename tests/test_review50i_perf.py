"""Review 50i, secrets.token.issue: what its speed-ups must keep.

- The audit HMAC (`AuditHasher`: `hmac`'s keyed state, copied per value) equals
  `hmac.new(key, domain || value, sha256)` for every key and value length that matters (a key
  over the block size is hashed first).
- `quick_init` keeps a dataclass's constructor as `dataclasses` writes it: the signature, the
  defaults, keyword calls, `replace`, equality and hashing, and the instance stays frozen;
  a class it cannot speed up faithfully is refused.
- `ByteBudgets.take` of one source is `take_all` of it.
"""

from __future__ import annotations

import dataclasses
import hmac
import inspect
import os

import pytest

from troth.dataclass_init import quick_init
from troth.rates import ByteBudgets
from troth.secrets.audit import _HMAC_DOMAIN, AuditEvent, AuditHasher
from troth.secrets.book import Granted
from troth.secrets.broker import IssuedLease
from troth.secrets.engine import Grant
from troth.secrets.lease import Lease
from troth.secrets.policy import LeaseQuestion


@pytest.mark.parametrize("key_size", [0, 1, 31, 32, 63, 64, 65, 128, 200])
def test_the_audit_hmac_is_rfc_2104(key_size: int) -> None:
    key = os.urandom(key_size)
    hasher = AuditHasher(key)
    for size in (0, 1, 55, 56, 64, 300, 5000):
        value = os.urandom(size)
        expected = hmac.new(key, _HMAC_DOMAIN + value, "sha256").digest()
        assert hasher.digest(value) == expected
        assert hasher.digest(value) == expected  # the keyed states are copied, never spent


@dataclasses.dataclass(frozen=True, slots=True)
class _Plain:
    a: int
    b: str
    c: tuple[int, ...] = ()
    d: int | None = None


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Quick:
    a: int
    b: str
    c: tuple[int, ...] = ()
    d: int | None = None


def test_quick_init_keeps_the_dataclass_constructor() -> None:
    assert inspect.signature(_Quick.__init__) == inspect.signature(_Plain.__init__)
    for cls in (Lease, Grant, AuditEvent, Granted, LeaseQuestion, IssuedLease):
        names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        assert names == [f.name for f in dataclasses.fields(cls)]
    quick = _Quick(1, "x", d=4)
    assert (quick.a, quick.b, quick.c, quick.d) == (1, "x", (), 4)
    assert quick == _Quick(a=1, b="x", c=(), d=4)
    assert hash(quick) == hash(_Quick(1, "x", (), 4))
    assert dataclasses.replace(quick, b="y") == _Quick(1, "y", (), 4)
    assert repr(quick) == repr(_Plain(1, "x", d=4)).replace("_Plain", "_Quick")
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.a = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Quick(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Quick(1, "x", e=3)  # type: ignore[call-arg]


def test_quick_init_refuses_what_it_cannot_keep() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            raise ValueError

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        a: int

    for cls in (Mutable, Checked, Factory, Unslotted):
        with pytest.raises(TypeError):
            quick_init(cls)


def test_take_of_one_source_is_take_all_of_it() -> None:
    one, many = (ByteBudgets(rate=2, burst=5, max_sources=2) for _ in range(2))
    for now, source, amount in [
        (0, "a", 3), (0, "a", 3), (0, "a", 2), (1, "a", 2), (1, "b", 5), (1, "c", 1),
        (2, "a", 9), (4, "a", 4), (9, "c", 1), (9, "b", 5),
    ]:  # fmt: skip
        assert one.take(source, amount, now=now) == many.take_all((source,), amount, now=now)
        assert one._buckets == many._buckets
