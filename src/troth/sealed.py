"""Verified types stay made by verifying: no pickle, no state set from outside.

A verified type (`VerifiedCredential`, `VerifiedIdentity`, `VerifiedFeed`, `VerifiedBundle`,
`VerifiedRecord`) refuses a caller's constructor call with a module-private token, and
`dataclasses.replace` with it. Python has two more doors, which the dataclass of a frozen,
slotted class opens itself: `__setstate__` sets every field (`cls.__new__(cls)` then
`__setstate__(fields)`: a `VerifiedCredential` of any attributes), and pickling keeps an object
verified forever, across processes and past a revocation, or makes one from a pickle stream
that names only troth's classes (review 64n, api 4). `sealed` closes both: what a verifier
returns is kept by its bytes (a chain, a history, a feed) and verified again, as the project's
private keys are (review 48d). A copy is the object itself: it is immutable.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

__all__ = ["sealed"]

T = TypeVar("T")


def sealed(cls: type[T]) -> type[T]:
    """`cls` (a frozen verified dataclass, decorated after `@dataclass`) refusing pickling and
    `__setstate__` with a TypeError, and copied as itself."""
    name = cls.__name__

    def __reduce_ex__(self: object, protocol: object) -> NoReturn:
        raise TypeError(
            f"cannot pickle a {name}: keep the bytes it was verified from and verify them again"
        )

    def __setstate__(self: object, state: object) -> NoReturn:
        raise TypeError(f"a {name} is made by verifying, not by setting its state")

    def __copy__(self: T) -> T:
        return self

    def __deepcopy__(self: T, memo: dict[int, Any]) -> T:
        return self

    for method in (__reduce_ex__, __setstate__, __copy__, __deepcopy__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        setattr(cls, method.__name__, method)
    return cls
