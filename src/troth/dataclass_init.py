"""A faster `__init__` for frozen, slotted dataclasses made once per operation on a hot path
(a lease issue's `Lease`, `Grant`, `AuditEvent`; a node request's `AccessRequest` and
`RequestContext`): the one `dataclasses` writes stores each field with `object.__setattr__`
(the frozen class's own refuses), ~0.09 us a field; this one calls each slot's descriptor, as
`object.__setattr__` ends up doing, at about half that (secrets.token.issue: ~1.5 us of its
~110 us; benchmarks/README.md "Pass 51a" for the request records). Same signature, defaults
and behaviour: the instance stays frozen (assignment after `__init__` raises
`FrozenInstanceError`), and `dataclasses.replace` and keyword calls work.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["quick_init"]

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Replace the `__init__` of `cls` (a `@dataclass(frozen=True, slots=True)` without
    `__post_init__`, `InitVar` or `field(init=False)`) with one storing through its slots."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    params = cls.__dict__.get("__dataclass_params__")
    if (
        params is None
        or not params.frozen
        or "__slots__" not in cls.__dict__
        or hasattr(cls, "__post_init__")
        or any(
            not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING for f in fields
        )
    ):
        raise TypeError(f"quick_init: {cls.__name__} is not a plain frozen slotted dataclass")
    namespace: dict[str, Any] = {}
    arguments, body = [], []
    for index, field in enumerate(fields):
        namespace[f"_set{index}"] = cls.__dict__[field.name].__set__
        if field.default is dataclasses.MISSING:
            arguments.append(field.name)
        else:
            namespace[f"_default{index}"] = field.default
            arguments.append(f"{field.name}=_default{index}")
        body.append(f"    _set{index}(self, {field.name})")
    source = f"def __init__(self, {', '.join(arguments)}):\n" + "\n".join(body) + "\n"
    exec(source, namespace)  # noqa: S102 (built from the field names, as `dataclasses` does)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    setattr(cls, "__init__", init)  # noqa: B010 (mypy: no assignment to a method)
    return cls
