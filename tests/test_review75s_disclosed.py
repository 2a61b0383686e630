"""Review 75s (disclosed): 75m's hashing of values holding integers past 2**53 - 1, and 75n's
budget of a record's policy ids against the bundles every path loads.

disclosed 1: a bundle whose `@id` is past MAX_POLICY_ID_TEXT (128) characters, signed by hand
(an older troth, a crafted push) is refused on every path that loads one (`verify_bundle` for
one received, `load_stored_bundle` for one from the holder's store: both compile it), so no
decision names an id the record's budget (MAX_TRACE_POLICY_BYTES, 64 ids of 128) would cut;
but the refusal said `@id '<the whole id>' is not [A-Za-z0-9_.:/-] or is positional`: not the
limit it broke, with an id of any length echoed into the error. Now it names the limit and
the id's length, and quotes at most its first characters.

disclosed 2: `_in_full` replaced each quoted `"<token>-<n>"` by the n-th integer's digits,
indexing without a bound: a string equal to the token and an index past those integers raised
IndexError from `disclosed()` (whose caller, a gate's recorder, must record whatever the
value) where a string equal to the token with an index in range fell back to `not_json`. The
token is random per call (2**-128 to hit), so by chance only; now the same fallback.
Each test failed on the code before its fix."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from tests.support.cotrust import forged_bundle
from tests.support.gates import GatesWorld, T, make_world
from troth import limits
from troth.errors import PolicyError
from troth.gates import verify_bundle
from troth.gates.bundles import VerifiedBundle, load_stored_bundle
from troth.trace.disclosure import disclosed

_LONG_ID = "p" * (limits.MAX_POLICY_ID_TEXT * 2)


def long_id_bundle(world: GatesWorld, policy_id: str) -> bytes:
    """A bundle of one policy named `policy_id`, signed by the world's authority however
    `create_bundle` would refuse it."""
    return forged_bundle(
        world.authority,
        authority=world.authority.identifier,
        policies=f'@id("{policy_id}")\npermit(principal, action, resource);\n',
        revision=1,
        chain=None,
    )


def test_a_bundle_with_an_over_long_id_is_refused_naming_the_limit_on_every_load() -> None:
    """75s disclosed 1: a signed bundle holding a 256-character `@id` (as an older troth or a
    crafted push would carry) is refused when received and when loaded from the store, the
    error naming MAX_POLICY_ID_TEXT and the id's length, not the whole id."""
    world = make_world()
    data = long_id_bundle(world, _LONG_ID)
    loads: tuple[Callable[[], VerifiedBundle], ...] = (
        lambda: verify_bundle(data, verifier=world.verifier, feeds=world.feeds(), now=T + 5),
        lambda: load_stored_bundle(data, verifier=world.verifier, now=T + 5),
    )
    for load in loads:
        with pytest.raises(PolicyError) as refused:
            load()
        detail = refused.value.detail
        assert str(limits.MAX_POLICY_ID_TEXT) in detail
        assert str(len(_LONG_ID)) in detail
        assert _LONG_ID not in detail


def test_a_string_holding_the_token_past_the_integers_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """75s disclosed 2: a string equal to `_in_full`'s token with an index past the value's
    integers (by chance only: the token is random per call) gives `not_json`, as one with an
    index in range does; it raised IndexError."""
    token = "ab" * 16
    monkeypatch.setattr(secrets, "token_hex", lambda size: token)
    for index in (0, 7):
        value = {"s": f"{token}-{index}", "n": 2**53}
        assert disclosed(value) == {"not_json": "dict"}
