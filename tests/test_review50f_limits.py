"""Review 50f, limits 4: `troth.limits` became a package (its one module was at the 800-line
cap); the gates' limits are named in `troth.limits.gates`, and `troth.limits` stays the one
place every hard limit is named: each limit a submodule names is `troth.limits`' own, the very
object, and in the submodule's `__all__` (what `troth.limits` takes)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import troth.limits
from troth import limits


def _named(module: Any) -> set[str]:
    """The upper-case names a module defines (its limits)."""
    return {name for name in vars(module) if name.isupper() and not name.startswith("_")}


def test_every_limit_of_a_submodule_is_troth_limits_own() -> None:
    submodules = [
        importlib.import_module(f"troth.limits.{info.name}")
        for info in pkgutil.iter_modules(troth.limits.__path__)
    ]
    assert [module.__name__ for module in submodules] == [
        "troth.limits.api_clock",  # review 59e, api 1
        "troth.limits.authority",  # review 56g, budgets 1
        "troth.limits.broker_clock",  # review 58d, secrets 3
        "troth.limits.closes",  # review 69p, flake 2
        "troth.limits.control",  # review 64z, formats 1
        "troth.limits.enrollment",  # review 61l, enrollment 1
        "troth.limits.feeds",  # review 62t, feeds 1
        "troth.limits.gates",
        "troth.limits.handshakes",  # review 57c, handshakes 1
        "troth.limits.leases",  # review 56j, chains 1 and forwards 2
        "troth.limits.mcp_sessions",  # review 58t, mcp 1 and 2
        "troth.limits.otel",  # review 57h, otel 4
        "troth.limits.postgres",  # review 60l, postgres 1
        "troth.limits.postgres_leases",  # review 61e, postgres 1
        "troth.limits.postgres_waits",  # review 72u, watcher 2
        "troth.limits.restore",  # review 60a, release 1
        "troth.limits.rotation",  # review 59m, rotation 1
        "troth.limits.routing",  # review 55a, budget 2
        "troth.limits.signatures",  # review 61b, identity 1
        "troth.limits.traces",  # review 55e, exports 1
        "troth.limits.upkeep",  # review 62s, upkeep 3
        "troth.limits.vc",  # review 61a, credentials 6
    ]
    for module in submodules:
        assert set(module.__all__) == _named(module), module.__name__
        for name in module.__all__:
            assert getattr(limits, name) is getattr(module, name), name


def test_the_gates_limits_are_read_where_they_always_were() -> None:
    """A few of those the gates read (`limits.X`, `from troth.limits import X`)."""
    from troth.limits import MAX_POLICY_BUNDLE_BYTES, MAX_TOOL_ARGUMENTS_BYTES

    assert MAX_POLICY_BUNDLE_BYTES == 768 * 1024 < limits.MAX_SERVICE_MESSAGE
    assert MAX_TOOL_ARGUMENTS_BYTES == limits.MAX_TOOL_ARGUMENTS_BYTES
    assert limits.MAX_MCP_FRAME == limits.MAX_SERVICE_MESSAGE - 2048
