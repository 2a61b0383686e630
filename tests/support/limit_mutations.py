"""Mutations of valid CBOR encodings at troth's named limits (src/troth/limits/): a list grown
to a count limit and one past it, a value nested to the depth limit and one past it, a text or
byte string grown to a size limit and one past it — for the properties of
tests/test_decoders_mutated_*.py that check each decoder answers or raises its layer's typed
error (tests/support/mutations.py: the byte-level and value mutations, and `typed`)."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from tests.support.decoder_vectors import FUZZ
from tests.support.mutations import _paths, _substitute, cbor_mutation, mutated
from troth import limits
from troth.encoding import cbor

QUICK = settings(FUZZ, max_examples=100)
"""FUZZ with fewer examples: for the files of many properties, each a few seconds in all."""

# the count and size limits a decoder of a peer's, a file's or a member's bytes enforces (and
# the depths): each is drawn as it is and one past it
COUNTS = (
    limits.MAX_IDENTITY_CHANGES,
    limits.MAX_ROUTE_LENGTH,
    limits.MAX_LEASE_SCOPES,
    limits.MAX_INJECT_HEADERS,
    limits.MAX_CHANNEL_CREDENTIALS,
    limits.MAX_DELEGATION_LINKS,
    limits.MAX_CAVEATS,
    limits.MAX_ATTRIBUTES,
    limits.MAX_JWKS_KEYS,
    limits.MAX_TRACE_SUBMIT_KEYS,
    limits.MAX_TRACE_SUBMIT_CHAINS,
    limits.MAX_TRACE_SUBMIT_RECORDS,
    limits.MAX_TRACE_SUBMIT_WINDOWS,
)
SIZES = (
    limits.MAX_ADDRESS_TEXT,
    limits.MAX_NAME_LENGTH,
    limits.MAX_SECRET_NAME,
    limits.MAX_PURPOSE_TEXT,
    limits.MAX_ATTRIBUTE_TEXT,
    limits.MAX_CHANGE_BYTES,
    limits.MAX_ATTESTATION_BYTES,
)
DEPTHS = (limits.MAX_CBOR_DEPTH - 2, limits.MAX_CBOR_DEPTH - 1, limits.MAX_CBOR_DEPTH)


def _at_limit(limit: int) -> st.SearchStrategy[int]:
    return st.sampled_from((limit, limit + 1))


def _value_at(decoded: Any, path: tuple[Any, ...]) -> Any:
    current = decoded
    for step in path:
        current = cbor.decode(current) if step == "cbor" else current[step]
    return current


@st.composite
def limit_mutation(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` decoded, one place (maybe inside a nested body) changed at a limit: a list
    grown to a count (its last item repeated, or a drawn one), a text or byte string grown to a
    size, or the value wrapped in arrays to a depth; encoded again canonically."""
    decoded = cbor.decode(original)
    path = draw(st.sampled_from(_paths(decoded)))
    current = _value_at(decoded, path)
    shape = draw(st.sampled_from(("count", "size", "depth")))
    new: Any
    if shape == "count":
        count = draw(st.one_of(*map(_at_limit, COUNTS)))
        item = current[-1] if isinstance(current, list) and current else current
        new = [item] * count
    elif shape == "size" and isinstance(current, str | bytes):
        size = draw(st.one_of(*map(_at_limit, SIZES)))
        unit = current[-1:] or ("a" if isinstance(current, str) else b"a")
        new = (current + unit * size)[:size]
    else:
        new = current
        for _ in range(draw(st.sampled_from(DEPTHS))):
            new = [new]
    return cbor.encode(_substitute(decoded, path, new))


def hostile(original: bytes) -> st.SearchStrategy[bytes]:
    """The byte-level and value mutations of a CBOR encoding, and those at the limits."""
    return st.one_of(mutated(original, is_cbor=True), limit_mutation(original))


def values(original: bytes) -> st.SearchStrategy[bytes]:
    """Only the mutations that keep a CBOR encoding canonical: a value replaced, or one at the
    limits (the bytes of a value to sign again, or to decode as a peer sent it)."""
    return st.one_of(cbor_mutation(original), limit_mutation(original))
