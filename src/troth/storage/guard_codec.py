"""The rollback guard file's records (docs/formats.md, "Rollback guard"): each slot's
encoding and decoding, which scopes a raise keeps, and which slot of a file is the guard
(troth.storage.rollback reads, raises and checks it)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Final

from troth import limits
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem

__all__ = [
    "GUARD_BOUND_SLOT_BYTES",
    "GUARD_BOUND_VERSION",
    "GUARD_RAISED_VERSION",
    "GUARD_SLOT_BYTES",
    "GUARD_TYPE",
    "GUARD_VERSION",
    "SCOPES",
    "V1_SCOPES",
    "decode_guard",
    "decode_raised",
    "decode_slot",
    "decode_store",
    "encode_guard",
    "encode_slot",
]

_log = logging.getLogger("troth.storage.rollback")

GUARD_TYPE: Final = "troth.rollback-guard"
GUARD_VERSION: Final = 2
"""The version a guard holding a scope version 1 does not know is written as (docs/formats.md,
"Rollback guard"); one holding only version 1's scopes is written as version 1, which every
troth since review 51d reads."""
GUARD_RAISED_VERSION: Final = 3
"""The version a guard holding when a scope was last raised is written as (review 60a, release
1: the `identity` scope's, which dates a restore's hold; docs/formats.md, "Rollback guard"); a
troth before it reads such a guard as none."""
GUARD_BOUND_VERSION: Final = 4
"""The version a guard naming the node.db it guards (its store id: review 64j, rollback 1) is
written as, in slots of `GUARD_BOUND_SLOT_BYTES` (docs/formats.md, "Rollback guard"); a troth
before it reads such a guard as none."""
GUARD_SLOT_BYTES: Final = limits.MAX_ROLLBACK_GUARD_BYTES // 2
"""A guard file of versions 1 to 3 is two slots of this size, written in place in turn
(docs/formats.md)."""
GUARD_BOUND_SLOT_BYTES: Final = limits.MAX_ROLLBACK_GUARD_BOUND_BYTES // 2
"""A guard file of version 4 is two slots of this size: its store id does not fit beside
four scopes' largest counts in one of `GUARD_SLOT_BYTES`."""
_CHECK: Final = 16  # bytes of a slot's SHA-256 kept
SCOPES: Final = ("authority", "broker", "policy", "identity")
"""The scopes a guard counts: each is checked, and fails closed, by its own owner."""
_OWN_SCOPES: Final = frozenset(SCOPES)
V1_SCOPES: Final = frozenset({"authority", "broker"})
"""The only scopes a version 1 slot holds (an older troth refuses any other, and any version
but 1: it reads such a guard as none)."""
_SCOPE_NAME: Final = re.compile(rf"[a-z][a-z0-9-]{{0,{limits.MAX_ROLLBACK_SCOPE_TEXT - 1}}}")


def encode_slot(
    seq: int,
    counters: Mapping[str, int],
    raised: Mapping[str, int] | None = None,
    store: bytes | None = None,
) -> bytes:
    """One slot of a guard file (`GUARD_SLOT_BYTES`): the length of the CBOR below (2 bytes,
    big-endian), `["troth.rollback-guard", version, seq, {scope: count}]` (canonical CBOR;
    version 1 while every scope is one of `V1_SCOPES`, else `GUARD_VERSION`; a scope with a
    time in `raised`, when it was last raised, maps to `[count, time]`, and the version is
    `GUARD_RAISED_VERSION`), the first 16 bytes of its SHA-256, zeros to the end. With a
    `store` id (`ROLLBACK_STORE_ID_BYTES`), the node.db it guards: version
    `GUARD_BOUND_VERSION`, the id a fifth element, in a slot of `GUARD_BOUND_SLOT_BYTES`."""
    return _framed(cbor.encode(_record(seq, counters, raised or {}, store)), store is not None)


def _record(
    seq: int, counters: Mapping[str, int], raised: Mapping[str, int], store: bytes | None
) -> list[object]:
    """A slot's record, to encode (canonical CBOR sorts its map)."""
    counts = dict(counters)
    if not raised.keys() <= counts.keys():
        raise ValueError("a rollback guard's raise time of a scope it does not count")
    if store is not None and len(store) != limits.ROLLBACK_STORE_ID_BYTES:
        raise ValueError("a rollback guard's store id of another size")
    record = [GUARD_TYPE, _version(counts, raised, store), seq, _entries(counts, raised)]
    return record if store is None else [*record, store]


def _version(
    counts: Mapping[str, int], raised: Mapping[str, int], store: bytes | None = None
) -> int:
    """The one version a record of `counts`, `raised` and `store` is written as."""
    if store is not None:
        return GUARD_BOUND_VERSION
    if raised:
        return GUARD_RAISED_VERSION
    return 1 if counts.keys() <= V1_SCOPES else GUARD_VERSION


def _entries(counts: Mapping[str, int], raised: Mapping[str, int]) -> dict[str, object]:
    """A record's map: each scope's count, `[count, time]` for one with a raise time."""
    if not raised:
        return dict(counts)
    return {s: c if s not in raised else [c, raised[s]] for s, c in counts.items()}


def _framed(body: bytes, bound: bool = False) -> bytes:
    """The slot holding the encoded record `body` (`encode_slot`; `bound`: of version 4)."""
    size = GUARD_BOUND_SLOT_BYTES if bound else GUARD_SLOT_BYTES
    slot = len(body).to_bytes(2, "big") + body + sha256(body)[:_CHECK]
    if len(slot) > size:
        raise ValueError("a rollback guard slot overflows")
    return slot.ljust(size, b"\0")


def decode_slot(slot: bytes) -> tuple[int, dict[str, int]]:
    """A slot's sequence number and counts (`_slot`, its raise times left out)."""
    return _slot(slot)[:2]


_State = tuple[int, dict[str, int], dict[str, int], bytes | None]
"""A guard record's sequence number, counts, raise times (a scope's, when it has one), and
store id (version 4; None before it)."""


def _slot(slot: bytes) -> _State:
    """A slot's sequence number, counts and raise times, else DecodeError: not
    `GUARD_SLOT_BYTES`, empty, its checksum wrong (a torn write), not the type above, a version
    but 1, 2 and 3, a number not
    in 0..MAX_ROLLBACK_COUNTER, not zeros after it. Version 1 holds `V1_SCOPES` only (as
    every troth since review 51d reads it); version 2 any scope named as `_SCOPE_NAME` says,
    at least one not in `V1_SCOPES` (else it is written as version 1: one encoding), and as
    many as still fit a slot at the largest counts: a scope this troth does not know (a newer
    troth's) is kept as read and written back as it is, never lowered, while it fits
    beside this troth's own (`_carried`; review 54p,
    rollback 1: version 1's decoder refused an unknown scope, so a newer troth's scope read
    the whole guard as none, a restore). Version 3 (review 60a, release 1) is version 2 with a
    time, when it was last raised (0..MAX_ROLLBACK_RAISED_AT), beside the count of at least
    one scope (`[count, time]`), of any scopes, fitting as version 2's at the largest.
    Version 4 (review 64j, rollback 1), in a slot of `GUARD_BOUND_SLOT_BYTES` (and no other
    version there), is version 3 with the store id of the node.db it guards as a fifth
    element (`ROLLBACK_STORE_ID_BYTES`), raise times optional, any scopes named as version 2's
    that fit its slot at the largest."""
    if len(slot) not in (GUARD_SLOT_BYTES, GUARD_BOUND_SLOT_BYTES):
        raise DecodeError(f"rollback guard slot of {len(slot)} bytes")
    size = int.from_bytes(slot[:2], "big")
    end = 2 + size + _CHECK
    if not size or end > len(slot):
        raise DecodeError("rollback guard slot empty")
    body = slot[2 : 2 + size]
    if slot[2 + size : end] != sha256(body)[:_CHECK] or slot[end:].strip(b"\0"):
        raise DecodeError("rollback guard slot damaged")
    try:
        return _decoded(body, len(slot) == GUARD_BOUND_SLOT_BYTES)
    except DecodeError as exc:  # written whole: by a writer whose records this troth cannot read
        raise _Unread(str(exc), exc.problem) from exc


def _decoded(body: bytes, bound: bool) -> _State:
    """`_slot` of a slot's body, its checksum right (`bound`: a slot of version 4's size)."""
    value = cbor.expect_array(
        cbor.decode(body, max_bytes=GUARD_BOUND_SLOT_BYTES), "rollback guard", 5 if bound else 4
    )
    found = value[1]
    later = type(found) is int and found in (GUARD_VERSION, GUARD_RAISED_VERSION)
    version = GUARD_BOUND_VERSION if bound else found if later else 1
    cbor.expect_header(value, GUARD_TYPE, version, "rollback guard")  # 1 to 4, else refused
    seq, counters = _bounded(value[2], "sequence number"), value[3]
    store = (
        cbor.expect_bytes(value[4], "rollback guard store id", limits.ROLLBACK_STORE_ID_BYTES)
        if bound
        else None
    )
    if type(counters) is not dict:
        raise DecodeError("rollback guard: expected a map of counts")
    decoded: dict[str, int] = {}
    raised: dict[str, int] = {}
    for scope, count in counters.items():
        name = cbor.expect_text(scope, "rollback guard scope")
        if name not in V1_SCOPES and (version == 1 or not _SCOPE_NAME.fullmatch(name)):
            raise DecodeError(f"rollback guard: unknown scope {name[:40]!r}")
        if version >= GUARD_RAISED_VERSION and type(count) is list:
            count, at = cbor.expect_array(count, "rollback guard count and raise time", 2)
            raised[name] = _raise_time(at)
        decoded[name] = _bounded(count, "count")
    if version == GUARD_RAISED_VERSION and not raised:  # else written as version 1 or 2
        raise DecodeError(
            "rollback guard: unknown version (3 holds a raise time)", DecodeProblem.UNKNOWN_VERSION
        )
    if version == GUARD_VERSION and set(decoded) <= V1_SCOPES:
        raise DecodeError("rollback guard: version 2 of version 1's scopes only")
    if version != 1 and not _fits(decoded, raised, bound):
        raise DecodeError("rollback guard: more scopes than a slot holds at their largest")
    return seq, decoded, raised, store


def _raise_time(value: object) -> int:
    at = cbor.expect_int(value, "rollback guard raise time")
    if at > limits.MAX_ROLLBACK_RAISED_AT:
        raise DecodeError("rollback guard: raise time over MAX_ROLLBACK_RAISED_AT")
    return at


class _Unread(DecodeError):
    """A slot whole (its checksum right) that this troth does not read (a later troth's: a
    later version, a scope named or a number past what this one allows), which
    `decode_guard` reads as no guard (review 58k, guard 2)."""


def _fits(scopes: Iterable[str], raised: Iterable[str] = (), bound: bool = False) -> bool:
    """Whether a slot holds `scopes`, each at the largest count (those in `raised` with the
    latest raise time), as the largest number (`bound`: a slot of version 4, with its id)."""
    largest = dict.fromkeys(scopes, limits.MAX_ROLLBACK_COUNTER)
    latest = dict.fromkeys(set(raised) & largest.keys(), limits.MAX_ROLLBACK_RAISED_AT)
    record = [GUARD_TYPE, GUARD_VERSION, limits.MAX_ROLLBACK_COUNTER, _entries(largest, latest)]
    if not bound:
        return 2 + len(cbor.encode(record)) + _CHECK <= GUARD_SLOT_BYTES
    record.append(bytes(limits.ROLLBACK_STORE_ID_BYTES))
    return 2 + len(cbor.encode(record)) + _CHECK <= GUARD_BOUND_SLOT_BYTES


def _carried(
    counters: Mapping[str, int], raised: Mapping[str, int], bound: bool = False
) -> tuple[dict[str, int], dict[str, int]]:
    """The counts a raise writes: every scope of this troth's (`SCOPES`: all fit a slot at
    their largest, with `identity`'s raise time, the one this troth dates), then each raise
    time of another of its scopes (a newer troth's), then each scope it does not know (a
    newer troth's, with its raise time), in canonical order (shorter first), while the slot
    still holds it at the largest counts and times; the rest are dropped (review 58a, guard 2:
    review 57v's guard 2, a newer troth's scopes that filled a slot left no room for this
    troth's `identity`, written in a slot no troth decodes, so every open found a restore
    that never happened; review 60h, guard 1: two raise times of a newer troth's beside this
    troth's three scopes, `identity` added, wrote a slot this troth itself read as none, every
    count lost). A scope dropped reads, to the newer troth that counts it, as a restored copy
    (its entry in node.db, none in the guard): it fails closed, once, as for any guard that
    lost the entry (docs/storage.md, "Versions, and a downgrade"); a raise time dropped, as
    undated. `bound`: in a slot of version 4 (`_fits`)."""
    kept = {scope: count for scope, count in counters.items() if scope in SCOPES}
    dated = {s: at for s, at in raised.items() if s == "identity" and s in kept}
    for scope in sorted((s for s in raised if s in kept and s not in dated), key=_canonical):
        if _fits(kept, {**dated, scope: raised[scope]}, bound):
            dated[scope] = raised[scope]
        else:
            _log.warning(
                "rollback guard: no room for the raise time of scope %r (a newer troth's) "
                "beside this troth's: dropped",
                scope,
            )
    for scope in sorted((s for s in counters if s not in SCOPES), key=_canonical):
        times = {**dated, scope: raised[scope]} if scope in raised else dated
        if _fits([*kept, scope], times, bound):
            kept[scope], dated = counters[scope], times
        else:
            _log.warning(
                "rollback guard: no room for scope %r (a newer troth's) beside this troth's "
                "scopes: dropped (that troth finds a restore of it once)",
                scope,
            )
    return kept, dated


def _canonical(scope: str) -> tuple[int, str]:
    """A scope's place in canonical CBOR's order of map keys (shorter first)."""
    return len(scope), scope


def _bounded(value: object, what: str) -> int:
    number = cbor.expect_int(value, f"rollback guard {what}")
    if number > limits.MAX_ROLLBACK_COUNTER:
        raise DecodeError(f"rollback guard: {what} over MAX_ROLLBACK_COUNTER")
    return number


def encode_guard(
    counters: Mapping[str, int],
    seq: int = 1,
    raised: Mapping[str, int] | None = None,
    store: bytes | None = None,
) -> bytes:
    """A whole guard file (`MAX_ROLLBACK_GUARD_BYTES`: two slots; with a `store` id,
    `MAX_ROLLBACK_GUARD_BOUND_BYTES`) holding `counters` (and `raised`, `store`:
    `encode_slot`) as number `seq`, in slot `seq % 2`, the other slot empty (zeros): what a
    guard is made as."""
    slots = [bytes(GUARD_SLOT_BYTES if store is None else GUARD_BOUND_SLOT_BYTES)] * 2
    slots[seq % 2] = encode_slot(seq, counters, raised, store)
    return b"".join(slots)


def decode_guard(data: bytes) -> tuple[int, dict[str, int]]:
    """A guard file's newest slot's sequence number and counts (`_guard_state`)."""
    return _guard_state(data)[:2]


def decode_raised(data: bytes) -> dict[str, int]:
    """When each scope of a guard file's newest slot was last raised, of those that say
    (version 3: review 60a, release 1); DecodeError as `decode_guard`."""
    return _guard_state(data)[2]


def decode_store(data: bytes) -> bytes | None:
    """The store id of the node.db a guard file's newest slot guards (version 4: review 64j,
    rollback 1), None before version 4; DecodeError as `decode_guard`."""
    return _guard_state(data)[3]


def _guard_state(data: bytes) -> _State:
    """A guard file's newest slot: the valid one of highest sequence number (the other may be
    torn, or older), else DecodeError (not `MAX_ROLLBACK_GUARD_BYTES`, no valid slot; a slot
    whole that this troth does not read, a later troth's: which record is the newest, and
    what it counts, is not known here, so the one beside it is never read as the newest:
    review 58k, guard 2, a copy of node.db taken between the two read as current, and the
    next raise wrote the older counts over the later record)."""
    if len(data) not in (limits.MAX_ROLLBACK_GUARD_BYTES, limits.MAX_ROLLBACK_GUARD_BOUND_BYTES):
        raise DecodeError(
            f"a rollback guard is {limits.MAX_ROLLBACK_GUARD_BYTES} bytes, or "
            f"{limits.MAX_ROLLBACK_GUARD_BOUND_BYTES} (version 4)"
        )
    found = []
    size = len(data) // 2
    for start in (0, size):
        try:
            found.append(_slot(data[start : start + size]))
        except _Unread:
            raise
        except DecodeError as exc:
            problem = exc
    if not found:
        raise problem
    return max(found, key=lambda slot: slot[0])
