"""What the public entries of troth.gates are given, checked before anything beneath sees it:
the types (an ArgumentError naming the call and the parameter); the values are the policies'
to judge (PolicyError). Review 54n, api 11-12: `services` of another type (review 54b found
it: the CLI checks them, the library did not), `tools`, `policies` or `schema` of another
type, a `signer` that is not one, a `revision`, `now` or `ttl` that is not a whole number, each
failed deep inside with an AttributeError, TypeError or IndexError (a bool was taken as 1,
methods given as one str letter by letter)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from troth import limits
from troth.errors import ArgumentError
from troth.identity import Signer
from troth.kinds import check_kind, got

__all__ = ["check_bundle_inputs", "check_policy_inputs"]

_SERVICES: Final = "a mapping of service names to lists of method names, or None"


def check_policy_inputs(
    call: str, policies: object, schema: object, tools: object, services: object
) -> None:
    """`compile_policies`' arguments (and `create_bundle`'s): text, text, a mapping, and a
    mapping of str to iterables (not one str) or None. A mapping of more services than
    MAX_SERVICES is not read here: compiling refuses it (OVER_LIMIT)."""
    check_kind(call, "policies", policies, str, "Cedar policy text (a str)")
    check_kind(call, "schema", schema, str, "Cedar schema text (a str)")
    if not isinstance(tools, Mapping):
        raise ArgumentError(call, "tools", "a mapping of tool names to JSON schemas", got(tools))
    if services is None:
        return
    if not isinstance(services, Mapping):
        raise ArgumentError(call, "services", _SERVICES, got(services))
    if len(services) > limits.MAX_SERVICES:
        return
    for name, methods in services.items():
        if not isinstance(name, str):
            raise ArgumentError(call, "services", _SERVICES, f"a name of type {got(name)}")
        if isinstance(methods, str | bytes | Mapping) or not isinstance(methods, Iterable):
            raise ArgumentError(call, "services", _SERVICES, f"{name}: {got(methods)}")


def check_bundle_inputs(signer: object, revision: object, now: object, ttl: object) -> None:
    """`create_bundle`'s signer (a `Signer`) and its whole numbers (not a bool)."""
    if not isinstance(signer, Signer):
        raise ArgumentError("create_bundle", "signer", "a Signer", got(signer))
    for parameter, value in (("revision", revision), ("now", now), ("ttl", ttl)):
        check_kind("create_bundle", parameter, value, int, "a whole number")
