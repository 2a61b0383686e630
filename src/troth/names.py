"""Names of nodes and identities: lowercase, so they never look like identifiers ("T<hex>")."""

from __future__ import annotations

import re

from troth import limits

__all__ = ["check_name"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def check_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a valid name, else raise ValueError saying why."""
    if not 0 < len(name) <= limits.MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid {what} {name!r}: use 1-{limits.MAX_NAME_LENGTH} characters a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    return name
