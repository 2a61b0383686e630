"""Routing: addresses, routes, routed messages, allow-sets, the router (default deny)."""

from troth.routing.address import KINDS, Address, Route, format_route, parse_route
from troth.routing.allow import AllowSet, AllowSetSource
from troth.routing.message import RoutedMessage
from troth.routing.router import Handler, Router, Source, Transport, new_worker_address

__all__ = [
    "KINDS",
    "Address",
    "AllowSet",
    "AllowSetSource",
    "Handler",
    "Route",
    "RoutedMessage",
    "Router",
    "Source",
    "Transport",
    "format_route",
    "new_worker_address",
    "parse_route",
]
