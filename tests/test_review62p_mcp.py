"""Review 62p, mcp: review of today's MCP gate fixes (review 62c).

1. The gate's defences of review 62c (mcp 2, 3 and 4) reach into the MCP SDK client's private
   names (`_absorb_tool_listing`, `_tool_output_schemas`) and replace its
   `validate_tool_result`; pyproject asks for `mcp>=2.3`, with no upper bound. An SDK that
   renamed one (its private names are free to change in any release) had each helper do
   nothing without a word (`getattr(..., None)`, `hasattr`): the gate kept serving, its
   client again growing with every paged listing, and running every upstream output schema's
   `pattern` in the node's event loop. Now a connected client without one fails the listing
   with ConfigError (the gate answers its own error, logs why); the suite's canary below fails
   as soon as the installed SDK lacks one.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.session import ClientSession

from tests.support.mcp_orders import orders_server
from troth.errors import ConfigError
from troth.integrations.mcp.listing import _PRIVATE, forget_grown, forget_unlisted, unchecked


@pytest.mark.parametrize(
    "helper",
    [unchecked, lambda upstream: forget_unlisted(upstream, ()), lambda u: forget_grown(u, ())],
)
def test_an_sdk_without_the_names_the_gate_reaches_into_fails_loudly(helper: Any) -> None:
    """A connected client (it has a session) whose SDK has none of the names: ConfigError,
    not nothing done (before: each returned, the defence silently gone)."""
    upstream = SimpleNamespace(session=SimpleNamespace())
    with pytest.raises(ConfigError, match="installed MCP SDK"):
        helper(upstream)


@pytest.mark.parametrize("gone", _PRIVATE)
def test_a_listing_fails_before_any_is_kept_when_one_name_is_gone(gone: str) -> None:
    """All but one name there (an SDK that renamed one): `unchecked`, which the gate calls
    before a listing, refuses at once, so no listing is kept for calls whose result a later
    helper would then lose."""
    session = SimpleNamespace(**{name: {} for name in _PRIVATE if name != gone})
    with pytest.raises(ConfigError, match=gone):
        unchecked(SimpleNamespace(session=session))


def test_the_installed_sdk_has_the_names_the_gate_reaches_into() -> None:
    """The canary: the installed SDK's connected client session has each name, of the kind
    the helpers use (an SDK that changed them fails here, in CI, first)."""
    found: list[object] = []

    async def main() -> None:
        async with Client(orders_server(), cache=None) as client:
            session = client.session
            assert isinstance(session, ClientSession)
            found.extend(getattr(session, name) for name in _PRIVATE)
            unchecked(client)
            forget_unlisted(client, ())
            assert session._tool_output_schemas == {}

    anyio.run(main)
    absorb, schemas, validate = found
    assert callable(absorb)
    assert callable(validate)
    assert isinstance(schemas, dict)
