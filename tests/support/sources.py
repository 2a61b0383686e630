"""Loopback addresses as many sources, for tests only. The node counts the whole of 127.0.0.0/8
as one source, `loopback` (`troth.transport.connection.source_host`; review 68b, transport 2:
a local user sends from whichever address of it it likes), but tests that meet the per-source
limits over real TCP need several clients on one machine: they bind each to a loopback address
of its own (127.0.<n>.<m>) and name them apart through this seam, never through the node's
rule. In the test process the `loopback_sources` fixture (tests/conftest.py) swaps
`source_host` for `each_loopback_address_a_source`; in a node process (`troth node start`,
tests/support/load.py) `node_environment` puts `loopback_site` (its sitecustomize runs
`install`) first on PYTHONPATH. Imports nothing but the standard library and troth (the
sitecustomize runs it in the node daemon)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from troth.transport import connection

__all__ = ["NODE_SITE", "each_loopback_address_a_source", "install", "node_environment"]

NODE_SITE = Path(__file__).resolve().parent / "loopback_site"
"""A directory whose sitecustomize.py installs the test naming in a node process."""

_production: Callable[[str], str] = connection.source_host


def each_loopback_address_a_source(host: str) -> str:
    """`source_host` with each IPv4 loopback address (127.0.0.0/8) a source of its own, as it
    is (and so of its own /24 network): every other host as the node's rule counts it."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return _production(host)
    if isinstance(address, ipaddress.IPv4Address) and address.is_loopback:
        return str(address)
    return _production(host)


def install() -> Callable[[str], str]:
    """Name loopback addresses apart in this process (`source_host` swapped); the rule it
    replaced."""
    replaced = connection.source_host
    connection.source_host = each_loopback_address_a_source
    return replaced


def node_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """`environment` with NODE_SITE first on its PYTHONPATH: a node started with it names
    loopback addresses apart."""
    path = [str(NODE_SITE), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    return {**environment, "PYTHONPATH": os.pathsep.join(path)}
