"""The broker's upstream secrets as it stores and reaches them (split from
troth.secrets.broker): the stored configuration text, the seal's associated data
(docs/formats.md, "Sealed secrets"), a value's checks, and the engine calls' error rule."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from troth import limits
from troth.crypto import sha256
from troth.errors import SecretError, SecretFailure
from troth.secrets.engine import SecretSpec
from troth.secrets.engines.http_inject import check_secret_header

__all__ = ["check_value", "config_text", "engine_call", "release", "secret_aad"]

_F = SecretFailure
_T = TypeVar("_T")
_SECRET_AAD: Final = b"troth.secret/2\x00"


def engine_call(call: Callable[[], _T]) -> _T:
    """Run an engine call; anything but a SecretError becomes ENGINE_FAILED (class name only:
    an engine's exception text may quote what it was given)."""
    try:
        return call()
    except SecretError:
        raise
    except Exception as exc:
        raise SecretError(_F.ENGINE_FAILED, type(exc).__name__) from None


def release(engines: Mapping[str, object], *kinds: str) -> None:
    """Have the engines of `kinds` that keep connections to their servers (`release`:
    postgres) close them: a secret stored anew or removed no longer needs what its old
    configuration reached (review 54f, postgres 2: a removed secret's database could not be
    dropped while the broker ran, its admin session open there)."""
    for kind in dict.fromkeys(kinds):
        drop = getattr(engines.get(kind), "release", None)
        if drop is not None:
            drop()


def config_text(spec: SecretSpec) -> str:
    """A secret's configuration as stored (and bound into its seal)."""
    return json.dumps(spec.to_json(), sort_keys=True, separators=(",", ":"))


def secret_aad(name: str, engine: str, config: str) -> bytes:
    """docs/formats.md: the name, the engine and the SHA-256 of the stored configuration."""
    return (
        _SECRET_AAD + name.encode() + b"\x00" + engine.encode() + b"\x00" + sha256(config.encode())
    )


def check_value(engine: str, value: bytes) -> None:
    """SecretError CONFIG_INVALID unless `value` is one engine `engine`'s secrets take: none for
    a token secret (the broker signs its tokens: a value given was sealed into the store and
    never read, for `Broker.put_secret` as for `Secrets.put` before review 66j, api 1: review
    66s, secrets 1); an admin password for postgres; a header value for http-inject."""
    if len(value) > limits.MAX_SECRET_VALUE_BYTES:
        raise SecretError(_F.CONFIG_INVALID, "the secret value is over the limit")
    if engine == "token" and value:
        raise SecretError(
            _F.CONFIG_INVALID, "a token secret has no upstream value (the broker signs its tokens)"
        )
    if engine == "http-inject":
        check_secret_header(value)
    elif engine == "postgres" and (not value or b"\x00" in value):
        raise SecretError(_F.CONFIG_INVALID, "a postgres admin password is non-empty, no NUL")
    elif engine == "postgres":
        try:
            value.decode()
        except UnicodeDecodeError:
            raise SecretError(_F.CONFIG_INVALID, "a postgres password is UTF-8") from None
